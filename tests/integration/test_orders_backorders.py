"""Backorders (issue 19) on real parts: Azurite, the ERP simulator over HTTP, the Service Bus
stand-in. With ``insufficient-stock: backorder`` for an item category, a short order is
accepted holding what there is; it is booked once with its full quantities; the units held
are never sold twice, the backordered units never make availability negative nor free another
order's hold, and once an ERP read shows the order its figures alone count it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import httpx

from devtools.erp_sim.testing import custom_api, standard_api
from shared.adapters.stores import stock as stock_store
from shared.adapters.stores.credit_holds import load_pending
from shared.adapters.stores.orders import load_order
from shared.domain.orders import ApprovalAction, BackorderPolicy, OrderStatus
from shared.domain.stock import (
    ErpStockFigures,
    StockPosition,
    apply_correction,
    available_to_sell,
    reconcile,
    reserve,
)
from shared.services.orders.context import utc_now
from tests.support.orders_harness import Harness, drain, erp_orders

CUSTOMER = "C00001"
SKU = "IT-000001"


def backorder(harness: Harness, *, otherwise: ApprovalAction = ApprovalAction.REJECT) -> str:
    """Backorder the category of ``SKU`` (as the published item data has it); return it."""
    category = harness.ctx.price_book.items[SKU].category
    assert category, "the published items carry the ERP's itemCategoryCode"
    harness.ctx.settings = replace(
        harness.ctx.settings,
        approval_actions=MappingProxyType({"insufficient-stock": otherwise}),
        backorders=BackorderPolicy(item_categories=frozenset({category})),
    )
    return category


def order_body(lines: list[dict[str, Any]], external: str = "shop-backorder") -> dict[str, Any]:
    return {"customerId": CUSTOMER, "externalOrderId": external, "channel": "web", "lines": lines}


async def main(harness: Harness) -> StockPosition:
    return (await stock_store.load_position(harness.ctx.tables, SKU, "MAIN")).position


def booked(harness: Harness, order_id: str) -> Any:
    async def check() -> bool:
        stored = await load_order(harness.ctx.tables, order_id)
        return stored is not None and stored.order.status is OrderStatus.BOOKED

    return check


def erp_demand(sim: str, sku: str, location: str) -> Decimal:
    """The ERP's outstanding sales-order quantity of an item at a location (custom page)."""
    response = httpx.get(
        f"{custom_api(sim)}/itemAvailabilityByLocation",
        params={"$filter": f"itemNumber eq '{sku}' and locationCode eq '{location}'"},
        timeout=10,
    )
    response.raise_for_status()
    return Decimal(str(response.json()["value"][0]["qtyOnSalesOrders"]))


async def test_ten_ordered_with_four_there_holds_four_backorders_six_and_books_ten_once(
    harness: Harness,
) -> None:
    backorder(harness)
    await drain(harness.bus_connection, "order-status", "storefront")
    # 7 on hand; another accepted order, not booked yet, holds 3 first: 4 are left to sell.
    await harness.stock(SKU, MAIN=7)
    other_id = harness.ctx.new_order_id()

    def hold_three(position: StockPosition) -> tuple[StockPosition, None]:
        return reserve(position, Decimal(3), other_id).position, None

    await stock_store.change_position(harness.ctx.tables, SKU, "MAIN", hold_three)
    demand_before = erp_demand(harness.sim, SKU, "MAIN")

    body = order_body([{"sku": SKU, "quantity": 10}])
    answer = await harness.submit(body, key="k-backorder")
    assert answer.status == 202, answer.body
    accepted = json.loads(answer.body)
    order_id = accepted["orderId"]
    assert accepted["status"] == "accepted"
    line = accepted["lines"][0]
    assert (line["quantity"], line["reserved"], line["backordered"]) == (10, 4, 6)
    assert line["allocations"] == [{"location": "MAIN", "quantity": 4}]
    # The same key and body answer byte for byte as the first time, and take nothing more.
    again = await harness.submit(json.loads(json.dumps(body)), key="k-backorder")
    assert again.replayed and (again.status, again.body) == (answer.status, answer.body)

    assert (await main(harness)).reservations == {other_id: Decimal(3), order_id: Decimal(4)}
    assert available_to_sell(await main(harness)) == 0
    # Credit is held for the whole order: the backordered six are invoiced too.
    pending = await load_pending(harness.ctx.tables, CUSTOMER)
    total = Decimal(accepted["totalAmount"])
    gross = Decimal(line["unitPrice"]) * 10
    ten = gross - (gross * Decimal(line["lineDiscountPercent"]) / 100).quantize(Decimal("0.01"))
    assert pending.pending.holds[order_id] == total == Decimal(line["lineAmount"]) == ten
    # A second shopper cannot buy the four held units: backordered too, or refused without the
    # backorder policy; either way the held units stay held.
    late = await harness.submit(order_body([{"sku": SKU, "quantity": 1}], "shop-late"))
    assert late.status == 202, late.body
    late_line = json.loads(late.body)["lines"][0]
    assert (late_line["reserved"], late_line["backordered"]) == (0, 1)
    policy = harness.ctx.settings
    harness.ctx.settings = replace(policy, backorders=None)
    refused = await harness.submit(order_body([{"sku": SKU, "quantity": 1}], "shop-refused"))
    harness.ctx.settings = policy
    assert refused.status == 422
    assert [v["rule"] for v in json.loads(refused.body)["violations"]] == ["insufficient-stock"]
    assert (await main(harness)).reservations == {other_id: Decimal(3), order_id: Decimal(4)}

    await harness.deliver(until=booked(harness, order_id))
    erp = erp_orders(harness.sim, order_id)
    assert len(erp) == 1, erp
    erp_lines = httpx.get(
        f"{standard_api(harness.sim)}/salesOrders({erp[0]['id']})/salesOrderLines", timeout=10
    ).json()["value"]
    # Booked with the full quantity (BC keeps a line above inventory: a warning, no error).
    assert sum(Decimal(str(li["quantity"])) for li in erp_lines) == 10
    assert {li["lineObjectNumber"] for li in erp_lines} == {SKU}
    assert Decimal(str(erp[0]["totalAmountExcludingTax"])) == total
    assert erp_demand(harness.sim, SKU, "MAIN") - demand_before >= 10
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None and stored.order.lines[0].backordered == Decimal(6)
    assert (stored.order.history[0].event, stored.order.history[0].detail) == (
        "accepted",
        f"backordered: {SKU} 6",
    )
    events = [
        json.loads(str(e))
        for e in await drain(harness.bus_connection, "order-status", "storefront")
    ]
    booked_event = next(e for e in events if e["orderId"] == order_id)
    assert booked_event["status"] == "booked"
    assert [(li["ordered"], li["backorderedAtIntake"]) for li in booked_event["lines"]] == [(10, 6)]

    # Booking handed the four held units over as booked demand: availability stays 0, and the
    # other shopper's hold is untouched.
    after = await main(harness)
    assert after.reservations == {other_id: Decimal(3)}
    assert after.booked[order_id].quantity == Decimal(4)
    assert available_to_sell(after) == 0

    # An ERP read taken after the booking: its demand carries all ten, the booked entry goes,
    # and availability stays 0 (never negative) with the other order still held.
    read_at = utc_now() + timedelta(seconds=1)
    figures = ErpStockFigures(
        on_hand=Decimal(7), reserved=Decimal(0), demand=erp_demand(harness.sim, SKU, "MAIN")
    )

    def take_read(position: StockPosition) -> tuple[StockPosition, None]:
        found = reconcile(position, figures, read_at)
        assert found.correction is not None and order_id in found.correction.confirmed_orders
        return apply_correction(position, found.correction), None

    await stock_store.change_position(harness.ctx.tables, SKU, "MAIN", take_read)
    read = await main(harness)
    assert order_id not in read.booked and read.erp_demand >= 10
    assert read.reservations == {other_id: Decimal(3)}
    assert available_to_sell(read) == 0


async def test_a_mixed_order_follows_the_rule_for_the_line_that_may_not_be_backordered(
    harness: Harness,
) -> None:
    category = backorder(harness)
    other = next(
        sku
        for sku, item in sorted(harness.ctx.price_book.items.items())
        if item.category and item.category != category and not item.blocked
    )
    await harness.stock(SKU, MAIN=4)
    await harness.stock(other, MAIN=1)
    body = order_body([{"sku": SKU, "quantity": 10}, {"sku": other, "quantity": 3}])
    answer = await harness.submit(body)
    assert answer.status == 422, answer.body
    problem = json.loads(answer.body)
    assert [(v["rule"], v["sku"]) for v in problem["violations"]] == [("insufficient-stock", other)]
    for sku in (SKU, other):
        assert all(not held for held in (await harness.reservations(sku)).values())
    assert (
        problem["orderId"] not in (await load_pending(harness.ctx.tables, CUSTOMER)).pending.holds
    )

    # With the fallback at hold the same order waits for a person, holding what there is.
    backorder(harness, otherwise=ApprovalAction.HOLD)
    held = await harness.submit(order_body(body["lines"], "shop-mixed-held"))
    assert held.status == 202, held.body
    waiting = json.loads(held.body)
    assert waiting["status"] == "pending-approval"
    assert [(li["sku"], li["reserved"], li["backordered"]) for li in waiting["lines"]] == [
        (SKU, 4, 6),
        (other, 1, 0),
    ]
    assert erp_orders(harness.sim, waiting["orderId"]) == []
