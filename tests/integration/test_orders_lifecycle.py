"""The order lifecycle service on real parts: Azurite, the Service Bus stand-in, the ERP
simulator over HTTP. What the e2e test cannot force: concurrent refreshes, a late (stale) read
arriving after a newer one, an order deleted in the ERP (a ``deleted`` notification), a
"collection" notification, and the stock read-back that hands the units back."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx

from devtools.erp_sim.testing import standard_api
from shared.adapters.erp.documents import read_order_documents
from shared.adapters.stores import order_lifecycle as store
from shared.adapters.stores.orders import load_order
from shared.domain.orders import Order
from shared.domain.orders.lifecycle import LifecycleStatus, fold
from shared.services.orders import lifecycle
from shared.services.orders.booking import handle_booking_message
from shared.services.orders.context import utc_now
from shared.services.orders.lifecycle import LifecycleDeps, Outcome
from shared.services.orders.messages import OrderMessage
from tests.support.orders_harness import Harness, drain, sim_post

SKU = "IT-000001"


async def _booked(harness: Harness, quantity: int = 4) -> Order:
    await harness.stock(SKU, MAIN=50)
    answer = await harness.submit(
        {
            "customerId": "C00001",
            "externalOrderId": "shop-life",
            "channel": "web",
            "lines": [{"sku": SKU, "quantity": quantity}],
        }
    )
    assert answer.status == 202, answer.body
    order_id = str(json.loads(answer.body)["orderId"])
    await handle_booking_message(harness.ctx, OrderMessage(order_id=order_id), 1)
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None and stored.order.erp_order_id
    return stored.order


def _deps(harness: Harness) -> LifecycleDeps:
    ctx = harness.ctx

    async def load(order_id: str) -> Order | None:
        stored = await load_order(ctx.tables, order_id)
        return None if stored is None else stored.order

    return LifecycleDeps(
        tables=ctx.tables,
        bus=ctx.bus,
        erp=ctx.erp,
        load_order=load,
        stock_read_back=lifecycle.erp_stock_read_back(ctx.erp, ctx.bus, utc_now),
        clock=utc_now,
        republish_after=timedelta(hours=1),
    )


async def _events(harness: Harness, order_id: str) -> list[dict[str, Any]]:
    got = await drain(harness.bus_connection, "order-status", "storefront")
    return [
        body
        for body in (json.loads(str(message)) for message in got)
        if body["orderId"] == order_id
    ]


async def test_concurrent_refreshes_publish_a_change_once_and_a_stale_read_never(
    harness: Harness,
) -> None:
    await drain(harness.bus_connection, "order-status", "storefront")
    deps = _deps(harness)
    order = await _booked(harness)
    assert order.erp_order_id and order.erp_order_number
    first = await lifecycle.refresh(deps, order.order_id)
    assert first.outcome is Outcome.BASELINE and first.sequence == 1
    # A read taken now, before the shipment, and applied only after a newer one.
    early_at = utc_now()
    early = await read_order_documents(harness.ctx.erp, UUID(order.erp_order_id),
                                       order.erp_order_number)  # fmt: skip
    sim_post(harness.sim, f"/_sim/salesOrders/{order.erp_order_number}/ship", {})

    results = await asyncio.gather(*(lifecycle.refresh(deps, order.order_id) for _ in range(3)))
    outcomes = sorted(str(r.outcome) for r in results)
    assert outcomes == ["published", "unchanged", "unchanged"], outcomes
    record = await store.load(harness.ctx.tables, order.order_id)
    assert record is not None and record.sequence == 2 and not record.unpublished
    assert record.lifecycle.status is LifecycleStatus.SHIPPED

    stale_life = fold(lifecycle.booked_lines(order), lifecycle.snapshot_of(early))
    stale = await lifecycle._apply(deps, order, record, stale_life, early_at)
    assert stale is not None and stale.outcome is Outcome.STALE
    events = await _events(harness, order.order_id)
    assert [(e["status"], e["sequence"]) for e in events] == [("booked", 1), ("shipped", 2)]
    # The shipment handed the units over: the item's ERP rows went to inventory-events.
    snapshots = [
        json.loads(str(m)) for m in await drain(harness.bus_connection, "inventory-events")
    ]
    assert any(s["sku"] == SKU and s["source"] == "erp-snapshot" for s in snapshots)


async def test_an_order_deleted_in_the_erp_is_cancelled_through_its_notification(
    harness: Harness,
) -> None:
    await drain(harness.bus_connection, "order-status", "storefront")
    deps = _deps(harness)
    order = await _booked(harness, quantity=2)
    assert order.erp_order_id
    erp = httpx.get(
        f"{standard_api(harness.sim)}/salesOrders({order.erp_order_id})", timeout=10
    ).json()
    deleted = httpx.delete(
        f"{standard_api(harness.sim)}/salesOrders({order.erp_order_id})",
        headers={"If-Match": erp["@odata.etag"]},
        timeout=10,
    )
    assert deleted.status_code == 204
    # Only its id is left: the followed orders say whose it was.
    result = await lifecycle.on_notification(
        deps, "salesOrders", order.erp_order_id, "deleted", None
    )
    assert [(r.order_id, r.outcome, r.status) for r in result.refreshed] == [
        (order.order_id, Outcome.PUBLISHED, "cancelled")
    ]
    assert await store.tracked_by_erp_id(harness.ctx.tables, order.erp_order_id) is None
    again = await lifecycle.on_notification(
        deps, "salesOrders", order.erp_order_id, "deleted", None
    )
    assert again.refreshed == [] and "not one this product follows" in again.note
    events = await _events(harness, order.order_id)
    assert [(e["status"], e["sequence"]) for e in events] == [("booked", 1), ("cancelled", 2)]
    assert events[-1]["lines"][0]["cancelled"] == 2


async def test_a_collection_notification_refreshes_every_order_it_covers(
    harness: Harness,
) -> None:
    deps = _deps(harness)
    orders = [await _booked(harness, quantity=1) for _ in range(2)]
    since = utc_now() - timedelta(milliseconds=50)
    for order in orders:
        sim_post(harness.sim, f"/_sim/salesOrders/{order.erp_order_number}/ship", {})
    result = await lifecycle.on_notification(deps, "salesShipments", None, "collection", since)
    refreshed = {r.order_id: r for r in result.refreshed}
    ours = {o.order_id for o in orders}
    assert ours <= set(refreshed)
    assert {refreshed[order_id].status for order_id in ours} == {"shipped"}
    # The read reaches back by the client's overlap, so documents of earlier tests' orders may
    # be read too: unknown to this test's tables, or unchanged; nothing is published for them.
    others = [r.outcome for order_id, r in refreshed.items() if order_id not in ours]
    assert set(others) <= {Outcome.UNCHANGED, Outcome.NOT_OURS}
    # The same collection again: nothing new.
    again = await lifecycle.on_notification(deps, "salesShipments", None, "collection", since)
    again_ours = {r.outcome for r in again.refreshed if r.order_id in ours}
    assert again_ours == {Outcome.UNCHANGED}
    assert {r.outcome for r in again.refreshed} <= {Outcome.UNCHANGED, Outcome.NOT_OURS}


async def test_a_credit_memo_on_the_orders_invoice_is_one_more_event(harness: Harness) -> None:
    await drain(harness.bus_connection, "order-status", "storefront")
    deps = _deps(harness)
    order = await _booked(harness, quantity=3)
    posted = sim_post(
        harness.sim, f"/_sim/salesOrders/{order.erp_order_number}/ship", {"invoice": True}
    )
    invoice = posted["invoice"]
    shipped = await lifecycle.refresh(deps, order.order_id)
    assert (shipped.outcome, shipped.status) == (Outcome.PUBLISHED, "invoiced")
    memo = sim_post(
        harness.sim,
        f"/_sim/salesInvoices/{invoice['number']}/creditMemo",
        {"lines": [{"sequence": 10000, "quantity": 1}]},
    )["creditMemo"]
    result = await lifecycle.on_notification(deps, "salesCreditMemos", memo["id"], "created", None)
    assert [(r.order_id, r.outcome) for r in result.refreshed] == [
        (order.order_id, Outcome.PUBLISHED)
    ]
    events = await _events(harness, order.order_id)
    last = events[-1]
    assert last["sequence"] == 3 and last["status"] == "invoiced"
    assert last["creditMemos"] == [
        {
            "number": memo["number"],
            "postedAt": memo["postingDate"],
            "amount": format(Decimal(str(memo["totalAmountIncludingTax"])), "f"),
            "invoiceNumber": invoice["number"],
        }
    ]
    assert last["lines"][0]["credited"] == 1
