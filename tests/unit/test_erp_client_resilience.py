"""Limits and failures: 429/503 waits, retries only when safe, breaker, semaphore, budget."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from uuid import UUID

import httpx
import pytest

from shared.adapters.erp import (
    BreakerState,
    ErpAmbiguousResult,
    ErpNotFound,
    ErpThrottled,
    ErpUnavailable,
)
from shared.adapters.erp.backoff import full_jitter_delay, parse_retry_after
from shared.adapters.erp.breaker import CircuitBreaker
from shared.adapters.erp.models import SalesOrder, SalesOrderCreate, SalesOrderLineCreate
from shared.adapters.erp.odata import guid_key
from tests.support.erp_client_fakes import (
    FakeClock,
    json_response,
    make_client,
    order_row,
)

EMPTY = {"value": []}


class Script:
    """Answers requests from a list of responses/exceptions, then a default."""

    def __init__(self, *steps: httpx.Response | Exception, default: httpx.Response | None = None):
        self.steps = list(steps)
        self.default = default or json_response(EMPTY)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if self.steps else self.default
        if isinstance(step, Exception):
            raise step
        return step


def order_payload() -> SalesOrderCreate:
    return SalesOrderCreate(
        customer_number="C00010",
        external_document_number="ORD-1",
        sales_order_lines=[SalesOrderLineCreate(line_object_number="A", quantity=Decimal(1))],
    )


def read_timeout() -> httpx.ReadTimeout:
    return httpx.ReadTimeout("read timed out")


# ---- Retry-After and backoff arithmetic ----


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    clock = FakeClock()
    now = clock.now()
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_full_jitter_stays_under_the_growing_ceiling() -> None:
    ceilings = [full_jitter_delay(n, 0.5, 4.0, lambda: 1.0) for n in range(1, 6)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert full_jitter_delay(3, 0.5, 4.0, lambda: 0.0) == 0.0


# ---- throttling ----


async def test_429_waits_retry_after_then_succeeds() -> None:
    clock = FakeClock()
    script = Script(json_response({}, 429, {"Retry-After": "7"}))
    async with make_client(script, clock=clock) as client:
        assert await client.find_sales_order_by_external_document_number("X") is None
        counters = client.counters()
    assert clock.sleeps == [7.0]
    assert len(script.requests) == 2
    assert counters.throttled_responses == 1
    assert counters.retries == 1
    assert counters.requests_sent == 2


async def test_429_with_http_date_waits_until_that_moment() -> None:
    clock = FakeClock()
    script = Script(json_response({}, 429, {"Retry-After": "Wed, 01 Jan 2025 12:00:12 GMT"}))
    async with make_client(script, clock=clock) as client:
        await client.find_sales_order_by_external_document_number("X")
    assert clock.sleeps == [12.0]


async def test_429_pauses_other_callers_too() -> None:
    clock = FakeClock()
    sent_at: list[float] = []
    first = True

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal first
        sent_at.append(clock.monotonic())
        if first:
            first = False
            return json_response({}, 429, {"Retry-After": "20"})
        return json_response(EMPTY)

    async with make_client(handler, clock=clock) as client:
        await client.find_sales_order_by_external_document_number("X")
        await client.find_sales_order_by_external_document_number("Y")
    assert sent_at == [1000.0, 1020.0, 1020.0]


async def test_429_without_retry_after_waits_a_growing_default() -> None:
    clock = FakeClock()
    script = Script(json_response({}, 429), json_response({}, 429))
    async with make_client(script, clock=clock, default_retry_after_seconds=3) as client:
        await client.find_sales_order_by_external_document_number("X")
    assert clock.sleeps == [3.0, 6.0]


async def test_throttled_beyond_the_retry_budget_raises_erp_throttled() -> None:
    script = Script(default=json_response({}, 429, {"Retry-After": "1"}))
    async with make_client(script, throttle_max_retries=2) as client:
        with pytest.raises(ErpThrottled) as caught:
            await client.find_sales_order_by_external_document_number("X")
    assert len(script.requests) == 3
    assert caught.value.retry_after_seconds == 1.0


async def test_retry_after_longer_than_allowed_raises_at_once() -> None:
    clock = FakeClock()
    script = Script(json_response({}, 429, {"Retry-After": "600"}))
    async with make_client(script, clock=clock, max_retry_after_seconds=60) as client:
        with pytest.raises(ErpThrottled) as caught:
            await client.find_sales_order_by_external_document_number("X")
    assert caught.value.retry_after_seconds == 600.0
    assert clock.sleeps == []
    assert len(script.requests) == 1


async def test_post_throttled_is_resent_because_bc_did_not_process_it() -> None:
    script = Script(
        json_response({}, 429, {"Retry-After": "1"}), default=json_response(order_row("ORD-1"), 201)
    )
    async with make_client(script) as client:
        order = await client.create_sales_order(order_payload())
    assert order.number == "S-ORD101001"
    assert [r.method for r in script.requests] == ["POST", "POST"]


# ---- retries on failures ----


async def test_503_on_get_is_retried() -> None:
    clock = FakeClock()
    script = Script(json_response({}, 503), json_response({}, 503))
    async with make_client(script, clock=clock, random=lambda: 1.0) as client:
        assert await client.find_sales_order_by_external_document_number("X") is None
        counters = client.counters()
    assert len(script.requests) == 3
    assert clock.sleeps == [0.5, 1.0]  # full-jitter ceilings with random() == 1
    assert counters.retries == 2 and counters.failures == 2


async def test_503_retry_after_is_honoured() -> None:
    clock = FakeClock()
    script = Script(json_response({}, 503, {"Retry-After": "4"}))
    async with make_client(script, clock=clock) as client:
        await client.find_sales_order_by_external_document_number("X")
    assert clock.sleeps == [4.0]


async def test_get_timeouts_exhaust_attempts_then_unavailable() -> None:
    script = Script(default=httpx.Response(200))
    script.steps = [read_timeout() for _ in range(10)]
    async with make_client(script, retry_max_attempts=3) as client:
        with pytest.raises(ErpUnavailable, match="3 attempt"):
            await client.find_sales_order_by_external_document_number("X")
    assert len(script.requests) == 3


async def test_post_is_not_retried_on_500() -> None:
    script = Script(default=json_response({}, 500))
    async with make_client(script) as client:
        with pytest.raises(ErpAmbiguousResult):
            await client.create_sales_order(order_payload())
        assert client.counters().ambiguous_results == 1
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("t"), httpx.RemoteProtocolError("dropped"), httpx.ReadError("reset")],
)
async def test_post_that_may_have_landed_is_ambiguous(failure: Exception) -> None:
    script = Script(failure)
    async with make_client(script) as client:
        with pytest.raises(ErpAmbiguousResult):
            await client.create_sales_order(order_payload())
    assert len(script.requests) == 1


async def test_post_that_never_connected_is_resent() -> None:
    script = Script(httpx.ConnectError("refused"), default=json_response(order_row("ORD-1"), 201))
    async with make_client(script) as client:
        order = await client.create_sales_order(order_payload())
    assert order.external_document_number == "ORD-1"
    assert len(script.requests) == 2


async def test_patch_with_if_match_is_retried_on_5xx() -> None:
    script = Script(json_response({}, 502), default=json_response(order_row("ORD-1")))
    async with make_client(script) as client:
        order = await client.patch(
            "salesOrders", guid_key(UUID(int=7)), 'W/"e"', {"status": "Open"}, SalesOrder
        )
    assert order.external_document_number == "ORD-1"
    assert [r.method for r in script.requests] == ["PATCH", "PATCH"]


async def test_4xx_is_not_retried() -> None:
    script = Script(default=json_response({}, 404))
    async with make_client(script) as client:
        with pytest.raises(ErpNotFound, match="404"):
            await client.get_sales_order(UUID(int=1))
    assert len(script.requests) == 1


# ---- circuit breaker ----


async def test_breaker_opens_fails_fast_and_closes_after_a_good_probe() -> None:
    clock = FakeClock()
    script = Script(default=json_response({}, 500))
    async with make_client(
        script,
        clock=clock,
        retry_max_attempts=1,
        breaker_failure_threshold=3,
        breaker_open_seconds=30,
    ) as client:
        for _ in range(3):
            with pytest.raises(ErpUnavailable):
                await client.find_sales_order_by_external_document_number("X")
        assert client.counters().breaker_state is BreakerState.OPEN
        sent = len(script.requests)

        with pytest.raises(ErpUnavailable, match="circuit open"):
            await client.find_sales_order_by_external_document_number("X")
        assert len(script.requests) == sent  # failed fast: nothing sent

        clock.advance(30)
        assert client.counters().breaker_state is BreakerState.HALF_OPEN
        script.default = json_response(EMPTY)
        assert await client.find_sales_order_by_external_document_number("X") is None
        counters = client.counters()
    assert len(script.requests) == sent + 1
    assert counters.breaker_state is BreakerState.CLOSED
    assert counters.breaker_openings == 1


async def test_failed_probe_reopens_and_only_one_probe_goes_through() -> None:
    clock = FakeClock()
    release = asyncio.Event()
    entered = asyncio.Event()
    mode = "fail"

    async def handler(request: httpx.Request) -> httpx.Response:
        if mode == "fail":
            return json_response({}, 500)
        entered.set()
        await release.wait()
        return json_response({}, 500)

    async with make_client(
        handler, clock=clock, retry_max_attempts=1, breaker_failure_threshold=1
    ) as client:
        with pytest.raises(ErpUnavailable):
            await client.find_sales_order_by_external_document_number("X")
        clock.advance(client.config.breaker_open_seconds)
        mode = "hold"
        probe = asyncio.create_task(client.find_sales_order_by_external_document_number("X"))
        await entered.wait()
        with pytest.raises(ErpUnavailable, match="probe"):
            await client.find_sales_order_by_external_document_number("Y")
        release.set()
        with pytest.raises(ErpUnavailable):
            await probe
        counters = client.counters()
    assert counters.breaker_state is BreakerState.OPEN
    assert counters.breaker_openings == 2


async def test_client_errors_do_not_open_the_breaker() -> None:
    script = Script(default=json_response({}, 404))
    async with make_client(script, breaker_failure_threshold=2) as client:
        for _ in range(5):
            with pytest.raises(ErpNotFound):
                await client.get_sales_order(UUID(int=1))
        assert client.counters().breaker_state is BreakerState.CLOSED
    assert len(script.requests) == 5


async def test_a_success_resets_the_failure_count() -> None:
    script = Script(
        json_response({}, 500),
        json_response(EMPTY),
        json_response({}, 500),
        default=json_response(EMPTY),
    )
    async with make_client(script, retry_max_attempts=1, breaker_failure_threshold=2) as client:
        outcomes = []
        for _ in range(4):
            try:
                await client.find_sales_order_by_external_document_number("X")
                outcomes.append("ok")
            except ErpUnavailable:
                outcomes.append("fail")
        assert client.counters().breaker_state is BreakerState.CLOSED
    assert outcomes == ["fail", "ok", "fail", "ok"]


# ---- concurrency and request budget ----


async def test_never_more_than_max_concurrent_in_flight() -> None:
    in_flight = 0
    peak = 0
    handled = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak, handled
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(20):  # stay in flight while the others try to get in
            await asyncio.sleep(0)
        in_flight -= 1
        handled += 1
        return json_response(EMPTY)

    async with make_client(handler, max_concurrent=5) as client:
        await asyncio.gather(
            *(client.find_sales_order_by_external_document_number(f"X{n}") for n in range(30))
        )
    assert handled == 30
    assert peak == 5


async def test_budget_makes_callers_wait_for_a_free_slot() -> None:
    clock = FakeClock()
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.monotonic())
        return json_response(EMPTY)

    async with make_client(
        handler, clock=clock, requests_per_window=3, window_seconds=60
    ) as client:
        for n in range(7):
            await client.find_sales_order_by_external_document_number(f"X{n}")
        counters = client.counters()
    assert sent_at == [1000.0, 1000.0, 1000.0, 1060.0, 1060.0, 1060.0, 1120.0]
    for start in sent_at:
        assert sum(1 for t in sent_at if start <= t < start + 60) <= 3
    assert counters.budget_waits == 2
    assert counters.requests_sent == 7
    assert counters.budget_used == 1  # the 7th request's slot, within its window


async def test_budget_counts_concurrent_callers_together() -> None:
    clock = FakeClock()
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.monotonic())
        return json_response(EMPTY)

    async with make_client(
        handler, clock=clock, requests_per_window=4, window_seconds=10, max_concurrent=5
    ) as client:
        await asyncio.gather(
            *(client.find_sales_order_by_external_document_number(f"X{n}") for n in range(10))
        )
    assert len(sent_at) == 10
    for start in sent_at:
        assert sum(1 for t in sent_at if start <= t < start + 10) <= 4


async def test_a_slot_beyond_the_call_deadline_fails_fast_as_throttled() -> None:
    clock = FakeClock()
    script = Script()
    async with make_client(
        script,
        clock=clock,
        requests_per_window=1,
        window_seconds=1000,
        call_deadline_seconds=60,
    ) as client:
        await client.find_sales_order_by_external_document_number("X1")
        with pytest.raises(ErpThrottled, match="deadline") as caught:
            await client.find_sales_order_by_external_document_number("X2")
    assert len(script.requests) == 1
    assert clock.sleeps == []  # told at once, not after a pointless wait
    assert caught.value.retry_after_seconds == 1000.0


async def test_503_retry_after_pauses_every_caller() -> None:
    clock = FakeClock()
    sent_at: list[float] = []
    first = True

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal first
        sent_at.append(clock.monotonic())
        if first:
            first = False
            return json_response({}, 503, {"Retry-After": "5"})
        return json_response(EMPTY)

    async with make_client(handler, clock=clock) as client:
        await client.find_sales_order_by_external_document_number("X")
        await client.find_sales_order_by_external_document_number("Y")
    assert sent_at == [1000.0, 1005.0, 1005.0]


def test_the_breaker_is_answering_only_while_nothing_failed_since_the_last_answer() -> None:
    """Booking skips its look-up before a first create only while the ERP answers."""
    breaker = CircuitBreaker(failure_threshold=3, open_seconds=30, clock=FakeClock())
    assert breaker.answering
    breaker.record_failure()
    assert not breaker.answering  # still closed, but a call failed since the last answer
    breaker.record_success()
    assert breaker.answering
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.answering
