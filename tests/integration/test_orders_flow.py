"""Order intake and booking on real parts: ERP simulator, Service Bus stand-in, Azurite."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.adapters.bus import BusSendFailed
from shared.adapters.stores.credit_holds import load_pending
from shared.adapters.stores.idempotency_keys import (
    IDEMPOTENCY_TABLE,
    StoredResponse,
    claim_key,
    request_hash,
)
from shared.adapters.stores.orders import add_to_outbox, create_order, load_order, outbox_entries
from shared.domain.orders import Order, OrderStatus
from shared.services.errors import Conflict, Unavailable
from shared.services.orders.booking import Outcome
from shared.services.orders.context import utc_now
from shared.services.orders.holds import take_holds
from shared.services.orders.outbox import purge_idempotency_keys, sweep
from tests.support.orders_harness import (
    Harness,
    credit_summary,
    drain,
    erp_orders,
    set_faults,
    sim_post,
    sim_price,
)

CUSTOMER = "C00001"
SKU = "IT-000001"


def order_body(lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "customerId": CUSTOMER,
        "externalOrderId": "shop-1",
        "channel": "web",
        "lines": lines,
        **extra,
    }


def booked(harness: Harness, order_id: str) -> Any:
    async def check() -> bool:
        stored = await load_order(harness.ctx.tables, order_id)
        return stored is not None and stored.order.settled

    return check


async def test_an_accepted_order_is_booked_once_and_its_holds_pass_to_the_erp(
    harness: Harness,
) -> None:
    await drain(harness.bus_connection, "order-status", "storefront")
    await harness.stock(SKU, MAIN=10, EAST=3)
    price = sim_price(harness.sim, CUSTOMER, SKU, 2)
    answer = await harness.submit(
        order_body(
            [{"sku": SKU, "quantity": 2, "expectedUnitPrice": str(price)}],
            shipTo={"name": "Ada Lovelace", "city": "Köln", "postCode": "50667", "country": "DE"},
        )
    )
    assert answer.status == 202, answer.body
    body = json.loads(answer.body)
    assert body["creditStale"] is False and body["pricesAsOf"]
    order_id = body["orderId"]
    assert body["status"] == "accepted" and body["lines"][0]["unitPrice"] == format(price, "f")
    total = Decimal(body["totalAmount"])
    assert (await harness.reservations(SKU))["MAIN"] == {order_id: Decimal(2)}
    pending = await load_pending(harness.ctx.tables, CUSTOMER)
    assert pending.pending.holds == {order_id: total}

    outcomes = await harness.deliver(until=booked(harness, order_id))
    erp = erp_orders(harness.sim, order_id)
    assert len(erp) == 1, erp
    assert Decimal(str(erp[0]["totalAmountExcludingTax"])) == total
    assert (erp[0]["shipToName"], erp[0]["shipToCity"], erp[0]["shipToPostCode"]) == (
        "Ada Lovelace",
        "Köln",
        "50667",
    )
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None
    assert stored.order.status is OrderStatus.BOOKED
    assert stored.order.erp_order_number == erp[0]["number"]
    assert [str(h.event) for h in stored.order.history] == [
        "accepted",
        "booking-started",
        "booked",
    ]
    assert all(h.correlation_id == "corr-test" for h in stored.order.history)
    # The ERP's own reservation counts now: ours are released, credit remembered as booked.
    assert (await harness.reservations(SKU))["MAIN"] == {}
    after = await load_pending(harness.ctx.tables, CUSTOMER)
    assert after.pending.holds == {} and order_id in after.pending.released
    assert [o.outcome for o in outcomes if not isinstance(o, str)] == [Outcome.BOOKED]
    events = await drain(harness.bus_connection, "order-status", "storefront")
    bodies = [json.loads(str(e)) for e in events]
    assert [(b["orderId"], b["status"]) for b in bodies] == [(order_id, "booked")]
    assert bodies[0]["erpOrderNumber"] == erp[0]["number"]
    assert events[0].correlation_id == "corr-test"


async def test_the_same_key_and_body_return_the_first_answer_and_another_body_is_refused(
    harness: Harness,
) -> None:
    await harness.stock(SKU, MAIN=10)
    body = order_body([{"sku": SKU, "quantity": 1}])
    first = await harness.submit(body, key="k-same")
    again = await harness.submit(json.loads(json.dumps(body)), key="k-same")
    assert first.status == again.status == 202
    assert again.body == first.body and again.replayed
    with pytest.raises(Conflict, match="first used with a different body") as refused:
        await harness.submit(order_body([{"sku": SKU, "quantity": 2}]), key="k-same")
    assert (refused.value.title, refused.value.retry_after_seconds) == (
        "Idempotency-Key reused",
        None,
    )
    reservations = await harness.reservations(SKU)
    assert reservations["MAIN"] == {json.loads(first.body)["orderId"]: Decimal(1)}


async def test_concurrent_duplicates_get_the_first_answer_and_make_one_order(
    harness: Harness,
) -> None:
    await harness.stock(SKU, MAIN=10)
    body = order_body([{"sku": SKU, "quantity": 1}])
    answers = await asyncio.gather(*(harness.submit(body, key="k-race") for _ in range(5)))
    assert {a.status for a in answers} == {202}
    assert len({a.body for a in answers}) == 1
    assert sum(1 for a in answers if not a.replayed) == 1
    reservations = await harness.reservations(SKU)
    assert len(reservations["MAIN"]) == 1


async def test_a_rejection_lists_every_violation_and_reserves_nothing(harness: Harness) -> None:
    await harness.stock(SKU, MAIN=1)
    await harness.stock("IT-000016", MAIN=30)
    price = sim_price(harness.sim, CUSTOMER, SKU, 5)
    wrong = price + Decimal("0.01")
    body = order_body(
        [
            {"sku": SKU, "quantity": 5, "expectedUnitPrice": str(wrong)},
            {"sku": "IT-000015", "quantity": 1},
            {"sku": "NO-SUCH-ITEM", "quantity": 1},
            {"sku": "IT-000016", "quantity": 3, "unitOfMeasure": "BOX"},
        ]
    )
    answer = await harness.submit(body, key="k-reject")
    assert answer.status == 422 and answer.content_type == "application/problem+json"
    problem = json.loads(answer.body)
    found = {(v["rule"], v.get("line")) for v in problem["violations"]}
    assert found == {
        ("price-mismatch", 0),
        ("insufficient-stock", 0),
        ("item-blocked", 1),
        ("unknown-item", 2),
        ("insufficient-stock", 3),
    }
    mismatch = next(v for v in problem["violations"] if v["rule"] == "price-mismatch")
    assert Decimal(mismatch["expectedUnitPrice"]) == wrong
    assert Decimal(mismatch["unitPrice"]) == price
    short = next(v for v in problem["violations"] if v.get("line") == 3)
    assert (short["requested"], short["available"]) == ("3", "2")  # 30 pieces = 2 boxes
    assert (await harness.reservations(SKU))["MAIN"] == {}
    assert (await load_pending(harness.ctx.tables, CUSTOMER)).etag is None
    stored = await load_order(harness.ctx.tables, problem["orderId"])
    assert stored is not None and stored.order.status is OrderStatus.REJECTED
    again = await harness.submit(body, key="k-reject")
    assert (again.status, again.body) == (422, answer.body)


async def test_parallel_orders_for_the_last_units_never_oversell(harness: Harness) -> None:
    await harness.stock(SKU, MAIN=3, EAST=2)
    answers = await asyncio.gather(
        *(
            harness.submit(order_body([{"sku": SKU, "quantity": 1}], externalOrderId=f"p{n}"))
            for n in range(12)
        )
    )
    accepted = [json.loads(a.body)["orderId"] for a in answers if a.status == 202]
    rejected = [json.loads(a.body) for a in answers if a.status == 422]
    assert len(accepted) == 5 and len(rejected) == 7
    assert all(
        [v["rule"] for v in problem["violations"]] == ["insufficient-stock"] for problem in rejected
    )
    reservations = await harness.reservations(SKU)
    held = {order: qty for location in reservations.values() for order, qty in location.items()}
    assert sorted(held) == sorted(accepted) and sum(held.values()) == 5
    assert len(reservations["MAIN"]) == 3 and len(reservations["EAST"]) == 2


async def test_parallel_orders_cannot_together_exceed_the_credit_limit(harness: Harness) -> None:
    customer = "C00005"  # the fixture with a credit limit of 5,000
    price = sim_price(harness.sim, customer, SKU, 1)
    summary = credit_summary(harness.sim, customer)
    limit = Decimal(str(summary["creditLimit"]))
    # Leave room for three and a half orders of one unit.
    room = (price * Decimal("3.5")).quantize(Decimal("0.01"))
    sim_post(
        harness.sim,
        f"/_sim/customers/{customer}/financials",
        {"balance": str(limit - room), "outstandingOrdersAmount": "0", "overdueAmount": "0"},
    )
    await harness.stock(SKU, MAIN=1000)
    try:
        answers = await asyncio.gather(
            *(
                harness.submit(
                    order_body(
                        [{"sku": SKU, "quantity": 1}], customerId=customer, externalOrderId=f"c{n}"
                    )
                )
                for n in range(8)
            )
        )
    finally:
        sim_post(
            harness.sim,
            f"/_sim/customers/{customer}/financials",
            {"balance": str(summary["balance"]), "outstandingOrdersAmount": "0"},
        )
    accepted = [json.loads(a.body) for a in answers if a.status == 202]
    rejected = [json.loads(a.body) for a in answers if a.status == 422]
    assert len(accepted) == 3 and len(rejected) == 5
    assert sum(Decimal(a["totalAmount"]) for a in accepted) <= room
    assert all(
        [v["rule"] for v in problem["violations"]] == ["credit-over-limit"] for problem in rejected
    )
    pending = await load_pending(harness.ctx.tables, customer)
    assert pending.pending.held == sum(Decimal(a["totalAmount"]) for a in accepted)
    held_stock = (await harness.reservations(SKU))["MAIN"]
    assert sorted(held_stock) == sorted(a["orderId"] for a in accepted)


async def test_with_the_erp_down_orders_are_accepted_only_on_recent_figures(
    harness: Harness,
) -> None:
    await harness.stock(SKU, MAIN=10)
    first = await harness.submit(order_body([{"sku": SKU, "quantity": 1}]))
    assert first.status == 202 and json.loads(first.body)["creditStale"] is False
    set_faults(harness.sim, outage=True)
    try:
        # C00001's figures were read a moment ago: accepted, and said to be stale.
        second = await harness.submit(order_body([{"sku": SKU, "quantity": 1}]))
        assert second.status == 202 and json.loads(second.body)["creditStale"] is True
        # Nobody ever read C00008's figures: no guess, and the key stays usable.
        unknown_body = order_body([{"sku": SKU, "quantity": 1}], customerId="C00008")
        with pytest.raises(Unavailable, match="credit cannot be verified"):
            await harness.submit(unknown_body, key="k-down")
        # Figures older than the bound are not used either.
        harness.ctx.clock = lambda: utc_now() + timedelta(minutes=6)
        with pytest.raises(Unavailable, match="s old"):
            await harness.submit(order_body([{"sku": SKU, "quantity": 1}]))
        harness.ctx.clock = utc_now
    finally:
        set_faults(harness.sim)
    retried = await harness.submit(unknown_body, key="k-down")
    assert retried.status == 202 and not retried.replayed


async def test_an_order_whose_message_was_not_sent_is_sent_by_the_outbox(
    harness: Harness,
) -> None:
    await harness.stock(SKU, MAIN=10)
    real_bus = harness.ctx.bus
    harness.ctx.bus = _FailingBus()  # type: ignore[assignment]
    answer = await harness.submit(order_body([{"sku": SKU, "quantity": 1}]))
    harness.ctx.bus = real_bus
    assert answer.status == 202  # accepted: the order is stored, the outbox will send it
    order_id = json.loads(answer.body)["orderId"]
    assert await outbox_entries(harness.ctx.tables, utc_now() + timedelta(hours=1)) == [order_id]
    early = await sweep(harness.ctx)
    assert early.examined == 0  # a young entry may belong to an intake still running
    harness.ctx.clock = lambda: utc_now() + timedelta(minutes=5)
    report = await sweep(harness.ctx)
    harness.ctx.clock = utc_now
    assert (report.examined, report.resent) == (1, 1)
    assert await outbox_entries(harness.ctx.tables, utc_now() + timedelta(hours=1)) == []
    await harness.deliver(until=booked(harness, order_id))
    assert len(erp_orders(harness.sim, order_id)) == 1


async def _store_pending_with_holds(harness: Harness, order: Order) -> None:
    """What an intake leaves when its process dies after taking the holds: the pending
    order in the outbox and in the table, its stock and credit held."""
    await add_to_outbox(harness.ctx.tables, order.order_id, utc_now())
    await create_order(harness.ctx.tables, order)
    reading = await harness.ctx.figures.read(
        harness.ctx.erp, harness.ctx.tables, CUSTOMER, utc_now()
    )
    await take_holds(harness.ctx.tables, order, reading.figures, harness.ctx.settings.credit_policy)
    assert order.order_id in (await harness.reservations(SKU))["MAIN"]


async def test_an_intake_that_died_midway_is_abandoned_and_gives_everything_back(
    harness: Harness,
) -> None:
    await harness.stock(SKU, MAIN=4)
    answer = await harness.submit(order_body([{"sku": SKU, "quantity": 1}]))
    template = (await load_order(harness.ctx.tables, json.loads(answer.body)["orderId"])).order  # type: ignore[union-attr]
    # A second intake stored its pending order, took its holds, then the process died.
    dead = replace(
        template,
        order_id="ORD-01JD7Q0000000000000000DEAD",
        status=OrderStatus.PENDING,
        attempt=0,
        history=(),
    )
    await _store_pending_with_holds(harness, dead)
    harness.ctx.clock = lambda: utc_now() + timedelta(minutes=5)
    report = await sweep(harness.ctx)
    harness.ctx.clock = utc_now
    assert report.abandoned == 1
    stored = await load_order(harness.ctx.tables, dead.order_id)
    assert stored is not None and stored.order.status is OrderStatus.REJECTED
    assert stored.order.holds_released
    assert dead.order_id not in (await harness.reservations(SKU))["MAIN"]
    assert dead.order_id not in (await load_pending(harness.ctx.tables, CUSTOMER)).pending.holds


async def test_a_key_whose_request_died_is_taken_over_by_the_retry(harness: Harness) -> None:
    await harness.stock(SKU, MAIN=10)
    body = order_body([{"sku": SKU, "quantity": 1}])
    stale = await claim_key(
        harness.ctx.tables,
        "k-died",
        request_hash(body),
        "ORD-01JD7Q0000000000000000000Z",
        lambda: utc_now() - timedelta(minutes=10),
        retention=timedelta(hours=24),
        stale_after=timedelta(seconds=30),
        wait=timedelta(0),
    )
    assert not isinstance(stale, StoredResponse)
    answer = await harness.submit(body, key="k-died")
    assert answer.status == 202
    assert json.loads(answer.body)["orderId"] == "ORD-01JD7Q0000000000000000000Z"


async def _make_key_stale(harness: Harness, key: str) -> None:
    """As if the request holding `key` died before storing its answer (a crashed worker)."""
    row = await harness.ctx.tables.get(IDEMPOTENCY_TABLE, key, "request")
    assert row is not None
    dead = {**row.entity, "state": "processing", "claimedAt": utc_now() - timedelta(minutes=10)}
    dead.pop("status", None)
    await harness.ctx.tables.update(IDEMPOTENCY_TABLE, dead, row.etag)


async def test_a_retry_after_the_first_request_decided_returns_that_order_once(
    harness: Harness,
) -> None:
    """The first request accepted the order, then died before its answer was stored: the
    retry answers with that order and takes nothing a second time."""
    await harness.stock(SKU, MAIN=10)
    body = order_body([{"sku": SKU, "quantity": 2}])
    first = await harness.submit(body, key="k-decided")
    order_id = json.loads(first.body)["orderId"]
    await _make_key_stale(harness, "k-decided")
    retry = await harness.submit(body, key="k-decided")
    assert retry.status == 202 and json.loads(retry.body)["orderId"] == order_id
    assert (await harness.reservations(SKU))["MAIN"] == {order_id: Decimal(2)}
    pending = (await load_pending(harness.ctx.tables, CUSTOMER)).pending.holds
    assert [hold for hold in pending if hold == order_id] == [order_id]


async def test_a_retry_after_a_half_created_order_gives_it_back_and_decides_again(
    harness: Harness,
) -> None:
    """The first request stored its pending order and took its holds, then died: the retry
    abandons that order (every hold given back) and decides the request afresh, once."""
    await harness.stock(SKU, MAIN=3)
    body = order_body([{"sku": SKU, "quantity": 2}])
    template_answer = await harness.submit(order_body([{"sku": SKU, "quantity": 1}]))
    template = await load_order(harness.ctx.tables, json.loads(template_answer.body)["orderId"])
    assert template is not None
    half = replace(
        template.order,
        order_id="ORD-01JD7Q00000000000000HALF0",
        status=OrderStatus.PENDING,
        attempt=0,
        history=(),
        lines=tuple(replace(line, quantity=Decimal(2)) for line in template.order.lines),
    )
    claim = await claim_key(
        harness.ctx.tables,
        "k-half",
        request_hash(body),
        half.order_id,
        utc_now,
        retention=timedelta(hours=24),
        stale_after=timedelta(seconds=30),
        wait=timedelta(0),
    )
    assert not isinstance(claim, StoredResponse)
    await _store_pending_with_holds(harness, half)
    await _make_key_stale(harness, "k-half")

    # 3 on hand, 1 held by the template order, 2 by the half-created one: without giving
    # those back first, the retry could not have its 2.
    retry = await harness.submit(body, key="k-half")
    assert retry.status == 202, retry.body
    new_id = json.loads(retry.body)["orderId"]
    assert new_id != half.order_id
    held = (await harness.reservations(SKU))["MAIN"]
    assert half.order_id not in held and held[new_id] == Decimal(2)
    abandoned = await load_order(harness.ctx.tables, half.order_id)
    assert abandoned is not None and abandoned.order.status is OrderStatus.REJECTED
    assert abandoned.order.holds_released
    again = await harness.submit(body, key="k-half")
    assert json.loads(again.body)["orderId"] == new_id and again.replayed


class _FailingBus:
    async def send_json(self, *args: Any, **kwargs: Any) -> None:
        raise BusSendFailed("the broker did not confirm (test)")


async def test_keys_expire_after_the_retention_and_are_purged(harness: Harness) -> None:
    await harness.stock(SKU, MAIN=10)
    body = order_body([{"sku": SKU, "quantity": 1}])
    first = await harness.submit(body, key="k-old")
    retention = harness.ctx.settings.idempotency_retention
    harness.ctx.clock = lambda: utc_now() + retention + timedelta(minutes=1)
    try:
        # Past the retention the key is free again: another body is a new request, not 409.
        other = await harness.submit(order_body([{"sku": SKU, "quantity": 2}]), key="k-old")
        assert other.status == 202 and other.body != first.body
        await harness.submit(body, key="k-other")
        harness.ctx.clock = lambda: utc_now() + 2 * retention + timedelta(minutes=2)
        assert await purge_idempotency_keys(harness.ctx) == 2
    finally:
        harness.ctx.clock = utc_now
    assert await purge_idempotency_keys(harness.ctx) == 0
