"""Booking safety: an order is created at most once even when the create's answer is lost."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from shared.adapters.erp import BookingOutcome, ErpAmbiguousResult, ErpRejected, ErpUnavailable
from shared.adapters.erp.models import SalesOrderCreate, SalesOrderLineCreate
from tests.support.erp_client_fakes import FakeClock, json_response, make_client, order_row


def payload(external: str = "ord-7") -> SalesOrderCreate:
    return SalesOrderCreate(
        customer_number="C00010",
        external_document_number=external,
        sales_order_lines=[SalesOrderLineCreate(line_object_number="A", quantity=Decimal(2))],
    )


class FakeErpOrders:
    """A tiny stateful ERP: POST may commit and still fail to answer; GET filters by key."""

    def __init__(self) -> None:
        self.orders: list[dict[str, object]] = []
        self.post_failure: httpx.Response | Exception | None = None
        self.commit_before_failure = True
        # Lookups that see nothing yet (a commit still in progress), then normal answers.
        self.invisible_lookups = 0
        self.lookup_failure: httpx.Response | None = None
        self.fail_lookups_after_post = False
        self.posts = 0
        self.lookups = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.posts += 1
            body = json.loads(request.content)
            if self.post_failure is None or self.commit_before_failure:
                self.orders.append(order_row(body["externalDocumentNumber"]))
            if isinstance(self.post_failure, Exception):
                raise self.post_failure
            if self.post_failure is not None:
                return self.post_failure
            return json_response(self.orders[-1], 201)
        self.lookups += 1
        if self.lookup_failure is not None:
            return self.lookup_failure
        if self.fail_lookups_after_post and self.posts:
            return json_response({}, 503)
        wanted = request.url.params["$filter"].split("'")[1]
        if self.invisible_lookups:
            self.invisible_lookups -= 1
            return json_response({"value": []})
        rows = [o for o in self.orders if o["externalDocumentNumber"] == wanted]
        return json_response({"value": rows})


async def test_creates_when_absent() -> None:
    erp = FakeErpOrders()
    async with make_client(erp) as client:
        result = await client.create_sales_order_once(payload())
    assert result.outcome is BookingOutcome.CREATED and result.created
    assert result.order.external_document_number == "ORD-7"
    assert (erp.posts, erp.lookups) == (1, 1)


async def test_returns_the_existing_order_without_posting() -> None:
    erp = FakeErpOrders()
    erp.orders.append(order_row("ORD-7", number="S-OLD"))
    async with make_client(erp) as client:
        result = await client.create_sales_order_once(payload("ord-7"))
    assert result.outcome is BookingOutcome.ALREADY_EXISTED and not result.created
    assert result.order.number == "S-OLD"
    assert erp.posts == 0


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("lost"),
        httpx.RemoteProtocolError("connection dropped"),
        json_response({}, 500),
        json_response({}, 504),
    ],
)
async def test_lost_answer_is_resolved_by_a_lookup_not_a_second_post(
    failure: httpx.Response | Exception,
) -> None:
    erp = FakeErpOrders()
    erp.post_failure = failure
    erp.invisible_lookups = 1  # first lookup (before the POST) sees nothing, as it should
    async with make_client(erp) as client:
        result = await client.create_sales_order_once(payload())
    assert result.outcome is BookingOutcome.FOUND_AFTER_AMBIGUOUS_CREATE
    assert erp.posts == 1
    assert len(erp.orders) == 1


async def test_late_commit_is_found_on_a_later_lookup() -> None:
    clock = FakeClock()
    erp = FakeErpOrders()
    erp.post_failure = httpx.ReadTimeout("lost")
    erp.invisible_lookups = 3  # before POST + two lookups that are too early
    async with make_client(
        erp, clock=clock, ambiguous_lookup_attempts=3, ambiguous_lookup_delay_seconds=2
    ) as client:
        result = await client.create_sales_order_once(payload())
    assert result.outcome is BookingOutcome.FOUND_AFTER_AMBIGUOUS_CREATE
    assert clock.sleeps == [2.0, 4.0]
    assert erp.posts == 1


async def test_still_unknown_raises_ambiguous_without_a_second_post() -> None:
    erp = FakeErpOrders()
    erp.post_failure = json_response({}, 500)
    erp.commit_before_failure = False
    async with make_client(erp, ambiguous_lookup_attempts=3) as client:
        with pytest.raises(ErpAmbiguousResult, match="ORD-7"):
            await client.create_sales_order_once(payload())
    assert erp.posts == 1
    assert erp.lookups == 1 + 3
    assert erp.orders == []


async def test_lookups_failing_after_an_ambiguous_create_stay_ambiguous_until_bc_decided() -> None:
    erp = FakeErpOrders()
    erp.post_failure = httpx.ReadTimeout("lost")
    erp.fail_lookups_after_post = True
    async with make_client(erp, retry_max_attempts=1, breaker_failure_threshold=50) as client:
        before = client._clock.now()
        with pytest.raises(ErpAmbiguousResult, match="cannot be asked") as raised:
            await client.create_sales_order_once(payload())
    assert erp.posts == 1
    assert erp.lookups == 1 + 3
    # Not "unavailable": the create may still commit, so no new create before BC's limit.
    assert isinstance(raised.value.__cause__, ErpUnavailable)
    assert raised.value.decided_by is not None
    assert raised.value.decided_by >= before + timedelta(seconds=600)


async def test_rejection_is_final_and_not_looked_up_again() -> None:
    erp = FakeErpOrders()
    erp.post_failure = json_response({"error": {"code": "BadItem", "message": "no"}}, 400)
    erp.commit_before_failure = False
    async with make_client(erp) as client:
        with pytest.raises(ErpRejected):
            await client.create_sales_order_once(payload())
    assert (erp.posts, erp.lookups) == (1, 1)


async def test_unavailable_before_posting_sends_no_post() -> None:
    erp = FakeErpOrders()
    erp.lookup_failure = json_response({}, 503)
    async with make_client(erp, retry_max_attempts=2) as client:
        with pytest.raises(ErpUnavailable):
            await client.create_sales_order_once(payload())
    assert erp.posts == 0


async def test_bookings_avoid_a_booking_principal_whose_breaker_is_open() -> None:
    """A principal that keeps failing (e.g. its secret was revoked) is left alone; the
    bookings go through the other one."""
    from pydantic import SecretStr

    from shared.adapters.erp.config import BookingPrincipal

    erp_orders = FakeErpOrders()
    seen_by: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        seen_by[token] = seen_by.get(token, 0) + 1
        if token == "broken":
            return json_response({}, 503)
        return erp_orders(request)

    client = make_client(
        handler,
        auth_mode="static",
        static_token=SecretStr("working"),
        booking_principals=(BookingPrincipal(static_token=SecretStr("broken")),),
        breaker_failure_threshold=1,
        retry_max_attempts=1,
    )
    # The first booking goes to the second principal (ties go round), which fails.
    with pytest.raises(ErpUnavailable):
        await client.create_sales_order_once(payload("ord-1"))
    broken_calls = seen_by["broken"]
    results = [await client.create_sales_order_once(payload(f"ord-{n}")) for n in (2, 3, 4)]
    assert [r.outcome for r in results] == [BookingOutcome.CREATED] * 3
    assert seen_by["broken"] == broken_calls
    assert erp_orders.posts == 3
    await client.aclose()
