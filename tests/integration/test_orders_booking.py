"""Booking exactly once on real parts: duplicates, lost answers, races, outages, replays."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from devtools.erp_sim.testing import standard_api
from shared.adapters.erp.client import ErpClient
from shared.adapters.stores.credit_holds import load_pending
from shared.adapters.stores.orders import load_order, save_order
from shared.domain.orders import BookingClaim, OrderStatus, claim_booking
from shared.services.orders.admin import NotAllowed, cancel_order, replay_order
from shared.services.orders.booking import (
    BookingFailed,
    Outcome,
    UnknownOrder,
    handle_booking_message,
)
from shared.services.orders.context import utc_now
from shared.services.orders.erp import sales_order_payload
from shared.services.orders.messages import OrderMessage
from tests.support.orders_harness import (
    Harness,
    drain,
    erp_config,
    erp_orders,
    set_faults,
    sim_post,
)

SKU = "IT-000001"


async def _accepted(harness: Harness, customer: str = "C00001", quantity: int = 1) -> str:
    await harness.stock(SKU, MAIN=50)
    answer = await harness.submit(
        {
            "customerId": customer,
            "externalOrderId": "shop-b",
            "channel": "web",
            "lines": [{"sku": SKU, "quantity": quantity}],
        }
    )
    assert answer.status == 202, answer.body
    return str(json.loads(answer.body)["orderId"])


async def _status(harness: Harness, order_id: str) -> Any:
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None
    return stored.order


def _settled(harness: Harness, order_id: str) -> Any:
    async def check() -> bool:
        return bool((await _status(harness, order_id)).settled)

    return check


async def test_the_same_message_twice_books_once(harness: Harness) -> None:
    order_id = await _accepted(harness)
    message = OrderMessage(order_id=order_id)
    first = await handle_booking_message(harness.ctx, message, 1)
    second = await handle_booking_message(harness.ctx, message, 2)
    assert (first.outcome, second.outcome) == (Outcome.BOOKED, Outcome.SKIPPED)
    assert len(erp_orders(harness.sim, order_id)) == 1


async def test_two_instances_with_copies_of_one_message_book_once(harness: Harness) -> None:
    order_id = await _accepted(harness)
    message = OrderMessage(order_id=order_id)
    # The ERP answers slowly, and the second copy starts only once the first holds the claim
    # (checked, not assumed): the second must find the booking in flight.
    set_faults(harness.sim, latencyMs=600)
    try:
        first = asyncio.create_task(handle_booking_message(harness.ctx, message, 1))

        async def claimed() -> bool:
            stored = await load_order(harness.ctx.tables, order_id)
            return stored is not None and stored.order.claim is not None

        deadline = asyncio.get_running_loop().time() + 10
        while not await claimed():
            assert asyncio.get_running_loop().time() < deadline, "the first copy never claimed"
            await asyncio.sleep(0.02)
        assert not first.done()
        second = await handle_booking_message(harness.ctx, message, 1)
        reports = [await first, second]
    finally:
        set_faults(harness.sim)
    assert [r.outcome for r in reports] == [Outcome.BOOKED, Outcome.DEFERRED]
    assert len(erp_orders(harness.sim, order_id)) == 1
    # The deferring copy left a look-again for when the claim ends; it finds nothing to do.
    outcomes = await harness.deliver(until=lambda: _no_orders_messages(harness), timeout=20)
    assert Outcome.SKIPPED in [o.outcome for o in outcomes if not isinstance(o, str)]
    assert len(erp_orders(harness.sim, order_id)) == 1


async def _no_orders_messages(harness: Harness) -> bool:
    counts = harness.queue("orders")
    return counts.get("active", 0) + counts.get("scheduled", 0) + counts.get("locked", 0) == 0


async def test_an_erp_answer_lost_after_the_create_books_once(harness: Harness) -> None:
    for mode in ("500", "close"):
        order_id = await _accepted(harness)
        set_faults(harness.sim, dropResponseAfterCommit=1, dropMode=mode)
        try:
            report = await handle_booking_message(harness.ctx, OrderMessage(order_id=order_id), 1)
        finally:
            set_faults(harness.sim)
        assert report.outcome is Outcome.BOOKED
        assert report.detail == "found_after_ambiguous_create"
        assert len(erp_orders(harness.sim, order_id)) == 1
        order = await _status(harness, order_id)
        assert order.status is OrderStatus.BOOKED and order.claims == 1


async def test_an_outage_is_retried_with_backoff_and_the_order_books_when_it_ends(
    harness: Harness,
) -> None:
    order_id = await _accepted(harness)
    set_faults(harness.sim, outage=True)
    try:
        report = await handle_booking_message(harness.ctx, OrderMessage(order_id=order_id), 1)
    finally:
        set_faults(harness.sim)
    assert report.outcome is Outcome.RETRY_SCHEDULED
    order = await _status(harness, order_id)
    assert order.status is OrderStatus.ACCEPTED and order.attempt == 2 and order.claim is None
    assert str(order.history[-1].event) == "booking-retry-scheduled"
    # The scheduled copy (attempt 2) arrives after its backoff and books the order.
    await harness.deliver(until=_settled(harness, order_id))
    assert len(erp_orders(harness.sim, order_id)) == 1
    events = [str(h.event) for h in (await _status(harness, order_id)).history]
    assert events == [
        "accepted",
        "booking-started",
        "booking-retry-scheduled",
        "booking-started",
        "booked",
    ]


async def test_after_the_retry_budget_the_order_fails_and_a_replay_books_it_once(
    harness: Harness,
) -> None:
    await drain(harness.bus_connection, "order-status", "storefront")
    order_id = await _accepted(harness, quantity=2)
    set_faults(harness.sim, outage=True)
    try:

        async def failed() -> bool:
            return (await _status(harness, order_id)).status is OrderStatus.FAILED

        outcomes = await harness.deliver(until=failed, timeout=30)
    finally:
        set_faults(harness.sim)
    assert any(isinstance(o, str) and "dead-lettered" in o for o in outcomes)
    order = await _status(harness, order_id)
    assert "gave up after attempt 3" in (order.failure_reason or "")
    assert erp_orders(harness.sim, order_id) == []
    # A failed order keeps what it holds, so the replay books what was promised.
    assert order_id in (await harness.reservations(SKU))["MAIN"]
    assert order_id in (await load_pending(harness.ctx.tables, "C00001")).pending.holds
    events = await drain(harness.bus_connection, "order-status", "storefront")
    assert [json.loads(str(e))["status"] for e in events] == ["failed"]

    replayed = await replay_order(harness.ctx, order_id, "ops-1")
    again = await replay_order(harness.ctx, order_id, "ops-2")
    assert replayed.changed and not again.changed
    assert replayed.order.generation == 1
    await harness.deliver(until=_settled(harness, order_id))
    assert len(erp_orders(harness.sim, order_id)) == 1
    order = await _status(harness, order_id)
    assert order.status is OrderStatus.BOOKED
    assert order_id not in (await harness.reservations(SKU))["MAIN"]
    assert not (await replay_order(harness.ctx, order_id, "ops-3")).changed
    assert len(erp_orders(harness.sim, order_id)) == 1


async def test_an_order_the_erp_refuses_fails_at_once_and_a_cancel_gives_its_holds_back(
    harness: Harness,
) -> None:
    customer = "C00008"
    order_id = await _accepted(harness, customer=customer)
    url = f"{standard_api(harness.sim)}/customers"
    row = httpx.get(url, params={"$filter": f"number eq '{customer}'"}, timeout=10).json()
    record = row["value"][0]
    target = f"{url}({record['id']})"

    def block(value: str) -> None:
        current = httpx.get(target, timeout=10).json()
        response = httpx.patch(
            target,
            json={"blocked": value},
            headers={"If-Match": current["@odata.etag"]},
            timeout=10,
        )
        response.raise_for_status()

    block("All")  # blocked in the ERP after this product accepted the order
    try:
        with pytest.raises(BookingFailed) as failed:
            await handle_booking_message(harness.ctx, OrderMessage(order_id=order_id), 1)
        assert failed.value.reason == "ErpRejected"
    finally:
        block(" ")
    order = await _status(harness, order_id)
    assert order.status is OrderStatus.FAILED and "blocked" in (order.failure_reason or "")
    assert order.attempt == 1  # refused, not retried
    with pytest.raises(UnknownOrder):
        await replay_order(harness.ctx, "ORD-01JD7Q0000000000000000YYYY", None)
    cancelled = await cancel_order(harness.ctx, order_id, "customer blocked", "ops")
    assert cancelled.changed and cancelled.order.status is OrderStatus.REJECTED
    assert order_id not in (await harness.reservations(SKU))["MAIN"]
    assert order_id not in (await load_pending(harness.ctx.tables, customer)).pending.holds
    assert not (await cancel_order(harness.ctx, order_id, "again", "ops")).changed
    with pytest.raises(NotAllowed):  # a cancelled order cannot be replayed
        await replay_order(harness.ctx, order_id, None)


async def test_a_message_for_an_unknown_order_is_dead_lettered(harness: Harness) -> None:
    with pytest.raises(UnknownOrder):
        await handle_booking_message(
            harness.ctx, OrderMessage(order_id="ORD-01JD7Q0000000000000000ZZZZ"), 1
        )


async def test_an_accepted_order_whose_message_was_lost_can_be_replayed(
    harness: Harness,
) -> None:
    order_id = await _accepted(harness)
    recent = await replay_order(harness.ctx, order_id, "ops")
    assert not recent.changed and recent.detail == "already queued for booking"
    # Later than any retry could take: the broker lost (expired) the message.
    later = harness.ctx.settings.stuck_after + timedelta(seconds=1)
    harness.ctx.clock = lambda: utc_now() + later
    try:
        replayed = await replay_order(harness.ctx, order_id, "ops")
    finally:
        harness.ctx.clock = utc_now
    assert replayed.changed and replayed.order.generation == 1
    # The first message (generation 0) is stale now; the replayed one books the order.
    stale = await handle_booking_message(harness.ctx, OrderMessage(order_id=order_id), 1)
    assert stale.outcome is Outcome.SKIPPED
    await harness.deliver(until=_settled(harness, order_id))
    assert len(erp_orders(harness.sim, order_id)) == 1


class _BrokenLocations:
    async def id_of(self, erp: Any, code: str) -> None:
        raise RuntimeError("a bug, not the ERP")


async def test_a_message_that_keeps_failing_fails_its_order_before_the_broker_gives_up(
    harness: Harness,
) -> None:
    order_id = await _accepted(harness)
    harness.ctx.locations = _BrokenLocations()  # type: ignore[assignment]
    message = OrderMessage(order_id=order_id)
    with pytest.raises(RuntimeError):
        await handle_booking_message(harness.ctx, message, 1)  # abandoned: comes back
    order = await _status(harness, order_id)
    assert order.status is OrderStatus.ACCEPTED and order.claim is None  # claim given back
    with pytest.raises(BookingFailed) as failed:
        # The last delivery before the broker gives up (the queue's MaxDeliveryCount).
        last = harness.ctx.settings.max_deliveries - 1
        await handle_booking_message(harness.ctx, message, last)
    assert failed.value.reason == "BookingKeptFailing"
    order = await _status(harness, order_id)
    assert order.status is OrderStatus.FAILED and "a bug" in (order.failure_reason or "")


class _OthersTakeEverySlot(httpx.AsyncBaseTransport):
    """Real HTTP to the simulator; just before the first order create goes out, other
    instances sharing the principal take all of BC's processing slots for a while."""

    def __init__(self, sim: str, hold_seconds: float) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._sim = sim
        self._hold_seconds = hold_seconds
        self.held = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/salesOrders") and not self.held:
            self.held = True
            async with httpx.AsyncClient() as control:
                held = await control.post(
                    f"{self._sim}/_sim/hold", json={"slots": 5, "seconds": self._hold_seconds}
                )
                held.raise_for_status()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_create_queued_past_the_client_timeout_leaves_exactly_one_erp_order(
    harness: Harness,
) -> None:
    """BC queues requests beyond 5 at once per principal and may commit a create after the
    client's timeout and after the booking's lookups found nothing. The next attempt must
    wait until BC's own limit for that create has passed, then look it up, not create."""
    order_id = await _accepted(harness)
    # BC's bound in this set-up: 3 s in the queue + 2 s committing < 6 s answer limit.
    sim_post(harness.sim, "/_sim/limits", {"maxConcurrent": 5, "queueTimeoutSeconds": 3})
    set_faults(harness.sim, commitDelayMs=2000)
    transport = _OthersTakeEverySlot(harness.sim, hold_seconds=2)
    config = erp_config(harness.sim).model_copy(
        update={"request_timeout_seconds": 1, "read_timeout_seconds": 1, "answer_limit_seconds": 6}
    )
    erp = ErpClient(config, transport=transport)
    ctx = dataclasses.replace(harness.ctx, erp=erp)
    started = utc_now()
    try:
        first = await handle_booking_message(ctx, OrderMessage(order_id=order_id), 1)
        assert transport.held
        assert first.outcome is Outcome.RETRY_SCHEDULED, first
        order = await _status(harness, order_id)
        # The next attempt is not due before BC has surely ended the first create.
        retry_detail = order.history[-1].detail
        assert str(order.history[-1].event) == "booking-retry-scheduled"
        retry_at = datetime.fromisoformat(retry_detail.rsplit(" at ", 1)[1])
        assert retry_at >= started + timedelta(seconds=6)
        outcomes = await Harness(ctx, harness.sim, harness.standin).deliver(
            until=_settled(harness, order_id), timeout=30
        )
    finally:
        set_faults(harness.sim)
        sim_post(harness.sim, "/_sim/limits", {"queueTimeoutSeconds": 480})
        await erp.aclose()
    assert len(erp_orders(harness.sim, order_id)) == 1
    booked = [o for o in outcomes if not isinstance(o, str) and o.outcome is Outcome.BOOKED]
    assert [b.detail for b in booked] == ["already_existed"]


def _erp_requests(sim: str) -> dict[str, dict[str, int]]:
    """The simulator's own request count per entity set and method since the last reset."""
    stats = httpx.get(f"{sim}/_sim/stats", timeout=10).json()["requests"]
    return {
        entity: {method: sum(statuses.values()) for method, statuses in methods.items()}
        for entity, methods in stats.items()
    }


async def test_the_first_attempt_makes_exactly_one_erp_request(harness: Harness) -> None:
    order_id = await _accepted(harness)
    # The process reads the ERP's locations once; that is not a request of this order.
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None
    await sales_order_payload(stored.order, harness.ctx.erp, harness.ctx.locations)
    httpx.post(f"{harness.sim}/_sim/stats/reset", timeout=10).raise_for_status()
    report = await handle_booking_message(harness.ctx, OrderMessage(order_id=order_id), 1)
    assert (report.outcome, report.detail) == (Outcome.BOOKED, "created")
    assert _erp_requests(harness.sim) == {"salesOrders": {"POST": 1}}
    assert len(erp_orders(harness.sim, order_id)) == 1


async def test_an_attempt_after_a_lost_answer_looks_up_first_and_books_once(
    harness: Harness,
) -> None:
    """An earlier attempt claimed the order, sent the create, the ERP committed it and the
    answer never came back (the attempt died): the next attempt must look before creating."""
    order_id = await _accepted(harness)
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None
    now = utc_now()
    lost = claim_booking(stored.order, 0, 1, BookingClaim("lost", now - timedelta(seconds=1)), now)
    await save_order(harness.ctx.tables, stored, lost)
    payload = await sales_order_payload(lost, harness.ctx.erp, harness.ctx.locations)
    await harness.ctx.erp.create_sales_order(payload)  # committed; its answer was "lost"
    httpx.post(f"{harness.sim}/_sim/stats/reset", timeout=10).raise_for_status()
    report = await handle_booking_message(harness.ctx, OrderMessage(order_id=order_id), 1)
    assert (report.outcome, report.detail) == (Outcome.BOOKED, "already_existed")
    requests = _erp_requests(harness.sim)
    assert requests["salesOrders"].get("GET", 0) >= 1
    assert "POST" not in requests["salesOrders"]
    assert len(erp_orders(harness.sim, order_id)) == 1
    order = await _status(harness, order_id)
    assert order.status is OrderStatus.BOOKED and order.claims == 2
