"""Orders end to end through the runner: HTTP intake, Service Bus booking, ERP, replay.

This module runs its own function app, Service Bus stand-in and ERP simulator on free ports
(sharing only the session's Azurite, with its own table prefix): it injects ERP faults,
blocks customers and reads dead-letter queues, none of which may leak into the shared stack.
Stock arrives the way it does in production: ``counted`` events on ``inventory-events``.
Booking retries are shortened by settings so the outage scenario takes seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue

from devtools.erp_sim.testing import custom_api, standard_api
from devtools.stack import LocalStack
from shared.adapters.stores.idempotency_keys import StoredResponse, claim_key, request_hash
from shared.adapters.tables import TableStore
from tests.e2e.conftest import PrivateStack
from tests.support.stock_setup import count_stock, set_financials
from tests.waiting import eventually

pytestmark = pytest.mark.slow

ORDER_ID = re.compile(r"^ORD-[0-9A-HJKMNP-TV-Z]{26}$")
CUSTOMER = "C00001"
TABLE_PREFIX = "ord" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
    env = {
        "TABLE_PREFIX": TABLE_PREFIX,
        "ORDER_BOOKING_MAX_ATTEMPTS": "3",
        "ORDER_BOOKING_RETRY_BASE_SECONDS": "0.5",
        "ORDER_BOOKING_RETRY_MAX_SECONDS": "1",
        "ORDER_BOOKING_CLAIM_SECONDS": "10",
    }
    with private_stack("ord", env=env) as started:
        yield started


def _on_hand(api: httpx.Client, sku: str, location: str) -> Decimal | None:
    response = api.get(f"/api/availability?skus={quote(sku, safe='')}&channel=web")
    if response.status_code != 200:
        return None
    for line in response.json()["items"][0]["locations"]:
        if line["location"] == location:
            return Decimal(line["onHand"])
    return None


def _stock(api: httpx.Client, bus: ServiceBusClient, sku: str, **locations: int) -> None:
    for location, quantity in locations.items():
        count_stock(bus, sku, location, quantity)
        eventually(lambda: _on_hand(api, sku, location) == quantity)  # noqa: B023


@pytest.fixture(scope="module")
def published(api: httpx.Client, admin: dict[str, str]) -> None:
    """Prices published through the timer, as in production."""
    response = api.post("/admin/functions/price_publish_full", json={"input": ""}, headers=admin)
    assert response.status_code == 202
    body = {"customerId": CUSTOMER, "lines": [{"sku": "IT-000001", "quantity": 1}]}
    eventually(lambda: api.post("/api/prices/quote", json=body).status_code == 200, 60)


def _order(lines: list[dict[str, Any]], customer: str = CUSTOMER, **extra: Any) -> dict[str, Any]:
    return {
        "customerId": customer,
        "externalOrderId": f"shop-{uuid.uuid4().hex[:8]}",
        "channel": "web",
        "lines": lines,
        **extra,
    }


def _post(
    api: httpx.Client, body: dict[str, Any], key: str | None = None, **headers: str
) -> httpx.Response:
    return api.post(
        "/api/orders",
        json=body,
        headers={"Idempotency-Key": key or uuid.uuid4().hex, **headers},
    )


def _get(api: httpx.Client, order_id: str) -> dict[str, Any]:
    response = api.get(f"/api/orders/{order_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait_status(api: httpx.Client, order_id: str, status: str, timeout: float = 40) -> Any:
    return eventually(lambda: (o := _get(api, order_id))["status"] == status and o, timeout)


def _erp_orders(erp_url: str, order_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{standard_api(erp_url)}/salesOrders",
        params={"$filter": f"externalDocumentNumber eq '{order_id}'"},
        timeout=10,
    )
    return list(response.json()["value"])


def _faults(erp_url: str, **faults: Any) -> None:
    httpx.post(f"{erp_url}/_sim/faults", json=faults, timeout=10).raise_for_status()


def _wait_erp_recovered(api: httpx.Client) -> None:
    """After an outage the app's circuit breaker stays open for a while: wait it out."""

    def live() -> bool:
        answer = api.post("/api/credit/check", json={"customerId": CUSTOMER, "amount": "0"})
        return answer.status_code == 200 and answer.json()["stale"] is False

    eventually(live, timeout=60)


def _dead_letters(bus: ServiceBusClient, order_id: str) -> list[Any]:
    found = []
    with bus.get_queue_receiver("orders", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        for message in dlq.receive_messages(max_message_count=50, max_wait_time=2):
            if order_id in str(message.message_id) or order_id in str(message):
                found.append(message)
                dlq.complete_message(message)
            else:
                dlq.abandon_message(message)
    return found


def test_an_order_is_accepted_booked_and_shown_with_its_history(
    api: httpx.Client, bus: ServiceBusClient, erp_url: str, published: None
) -> None:
    _stock(api, bus, "IT-000001", MAIN=20, EAST=5)
    _stock(api, bus, "AB/12#3", EAST=4)
    response = _post(
        api,
        _order([{"sku": "IT-000001", "quantity": 3}, {"sku": "AB/12#3", "quantity": 2}]),
        **{"x-correlation-id": "e2e-corr-1"},
    )
    assert response.status_code == 202, response.text
    assert response.headers["x-correlation-id"] == "e2e-corr-1"
    body = response.json()
    order_id = body["orderId"]
    assert ORDER_ID.match(order_id) and body["status"] == "accepted"
    assert isinstance(body["totalAmount"], str) and isinstance(body["lines"][0]["unitPrice"], str)
    assert body["lines"][0]["allocations"] == [{"location": "MAIN", "quantity": 3}]
    assert body["lines"][1]["allocations"] == [{"location": "EAST", "quantity": 2}]

    order = _wait_status(api, order_id, "booked")
    erp = _erp_orders(erp_url, order_id)
    assert len(erp) == 1 and order["erpOrderNumber"] == erp[0]["number"]
    assert Decimal(str(erp[0]["totalAmountExcludingTax"])) == Decimal(body["totalAmount"])
    assert [h["event"] for h in order["history"]] == ["accepted", "booking-started", "booked"]
    assert all(h["correlationId"] == "e2e-corr-1" and h["at"] for h in order["history"])
    # Booked: this product's hold became booked demand (the ERP's own figure takes over).
    eventually(lambda: _get(api, order_id).get("status") == "booked")
    # SessionId = order id: a storefront reads one order's events through its session.
    with bus.get_subscription_receiver(
        "order-status", "storefront", session_id=order_id
    ) as receiver:
        events = [json.loads(str(m)) for m in receiver.receive_messages(50, max_wait_time=3)]
        for message in receiver.receive_messages(50, max_wait_time=0.5):
            receiver.complete_message(message)
    assert any(e["orderId"] == order_id and e["status"] == "booked" for e in events)


def test_idempotency_over_http(api: httpx.Client, bus: ServiceBusClient, published: None) -> None:
    _stock(api, bus, "IT-000002", MAIN=10)
    body = _order([{"sku": "IT-000002", "quantity": 1}])
    missing = api.post("/api/orders", json=body)
    assert missing.status_code == 400
    assert missing.headers["content-type"].startswith("application/problem+json")
    key = f"e2e-{uuid.uuid4().hex}"
    first = _post(api, body, key)
    again = _post(api, body, key)
    assert first.status_code == again.status_code == 202
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = _post(api, {**body, "externalOrderId": "something-else"}, key)
    assert other.status_code == 409 and "different body" in other.json()["detail"]


def test_a_key_whose_first_request_is_still_running_answers_409_with_retry_after(
    api: httpx.Client, azurite_connection: str
) -> None:
    """Another instance holds the key (its request is still deciding): after waiting for it
    as long as the intake does, the answer is a 409 that says so and when to ask again."""
    body = _order([{"sku": "IT-000002", "quantity": 1}])
    key = f"e2e-busy-{uuid.uuid4().hex}"

    async def hold_the_key() -> None:
        tables = TableStore.from_connection_string(azurite_connection, prefix=TABLE_PREFIX)
        try:
            claim = await claim_key(
                tables,
                key,
                request_hash(json.loads(json.dumps(body), parse_float=Decimal)),
                "ORD-01JD7Q0000000000000000BUSY",
                lambda: datetime.now(UTC),
                retention=timedelta(hours=1),
                stale_after=timedelta(minutes=5),
                wait=timedelta(0),
            )
            assert not isinstance(claim, StoredResponse)
        finally:
            await tables.close()

    asyncio.run(hold_the_key())
    busy = _post(api, body, key)
    assert busy.status_code == 409, busy.text
    assert busy.headers["content-type"].startswith("application/problem+json")
    assert busy.json()["title"] == "Request in progress"
    assert int(busy.headers["Retry-After"]) > 0


def test_a_rejection_lists_every_violation_and_the_order_shows_rejected(
    api: httpx.Client, bus: ServiceBusClient, erp_url: str, published: None
) -> None:
    _stock(api, bus, "IT-000020", MAIN=2)
    price = httpx.get(
        f"{erp_url}/_sim/price",
        params={"customerNumber": CUSTOMER, "itemNumber": "IT-000020", "quantity": 1},
        timeout=10,
    ).json()["unitPrice"]
    wrong = str(Decimal(price) + 1)
    response = _post(
        api,
        _order(
            [
                {"sku": "IT-000020", "quantity": 1, "expectedUnitPrice": wrong},
                {"sku": "IT-000015", "quantity": 1},
                {"sku": "NO-SUCH", "quantity": 1},
                {"sku": "IT-000020", "quantity": 5},
            ]
        ),
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    rules = sorted((v["rule"], v["line"]) for v in problem["violations"])
    assert rules == [
        ("insufficient-stock", 3),
        ("item-blocked", 1),
        ("price-mismatch", 0),
        ("unknown-item", 2),
    ]
    mismatch = next(v for v in problem["violations"] if v["rule"] == "price-mismatch")
    assert Decimal(mismatch["expectedUnitPrice"]) == Decimal(wrong)
    assert Decimal(mismatch["unitPrice"]) == Decimal(price)
    shown = _get(api, problem["orderId"])
    assert shown["status"] == "rejected" and len(shown["violations"]) == 4
    # Nothing was reserved: all of it is still available.
    lines = api.get("/api/availability?skus=IT-000020&channel=web").json()["items"][0]
    assert Decimal(lines["available"]) == 2
    bad = _post(api, _order([{"sku": "IT-000020", "quantity": 0}]))
    assert bad.status_code == 422 and bad.json()["violations"][0]["rule"] == "invalid-field"
    assert api.get("/api/orders/ORD-NOT-AN-ID").status_code == 404
    anonymous = httpx.post(f"{api.base_url}/api/orders", json=_order([]), timeout=10)
    assert anonymous.status_code == 401


def test_parallel_requests_never_oversell_nor_overrun_credit(
    api: httpx.Client, bus: ServiceBusClient, erp_url: str, published: None
) -> None:
    # The ERP is down during the burst: orders are accepted on recent credit figures and stay
    # unbooked, so this measures the intake's holds alone (racing orders while bookings
    # complete are in test_stock_demand_flow.py).
    customer = "C00005"
    _stock(api, bus, "IT-000021", MAIN=2, EAST=1)
    _stock(api, bus, "IT-000022", MAIN=100)
    price = Decimal(
        httpx.get(
            f"{erp_url}/_sim/price",
            params={"customerNumber": customer, "itemNumber": "IT-000022", "quantity": 1},
            timeout=10,
        ).json()["unitPrice"]
    )
    summary = httpx.get(
        f"{custom_api(erp_url)}/customerCreditSummaries",
        params={"$filter": f"customerNumber eq '{customer}'"},
        timeout=10,
    ).json()["value"][0]
    room = (price * Decimal("2.5")).quantize(Decimal("0.01"))  # two and a half orders
    set_financials(erp_url, customer, balance=str(Decimal(str(summary["creditLimit"])) - room))
    for who in (CUSTOMER, customer):  # figures the intake may use while the ERP is down
        assert api.post("/api/credit/check", json={"customerId": who, "amount": "1"}).is_success
    _faults(erp_url, outage=True)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            stock_answers = list(
                pool.map(
                    lambda n: _post(api, _order([{"sku": "IT-000021", "quantity": 1}])),
                    range(8),
                )
            )
            credit_answers = list(
                pool.map(
                    lambda n: _post(api, _order([{"sku": "IT-000022", "quantity": 1}], customer)),
                    range(6),
                )
            )
    finally:
        _faults(erp_url)
        _wait_erp_recovered(api)
    assert sorted(a.status_code for a in stock_answers) == [202] * 3 + [422] * 5
    lines = api.get("/api/availability?skus=IT-000021&channel=web").json()["items"][0]
    assert Decimal(lines["available"]) == 0
    accepted = [a.json() for a in credit_answers if a.status_code == 202]
    refused = [a.json() for a in credit_answers if a.status_code == 422]
    assert len(accepted) == 2 and len(refused) == 4
    assert sum(Decimal(a["totalAmount"]) for a in accepted) <= room
    assert all(p["violations"][0]["rule"] == "credit-over-limit" for p in refused)
    check = api.post("/api/credit/check", json={"customerId": customer, "amount": "0"}).json()
    assert Decimal(check["pendingAmount"]) == sum(Decimal(a["totalAmount"]) for a in accepted)


def test_a_lost_erp_answer_still_books_exactly_once(
    api: httpx.Client, bus: ServiceBusClient, erp_url: str, published: None
) -> None:
    _stock(api, bus, "IT-000023", MAIN=10)
    _faults(erp_url, dropResponseAfterCommit=1, dropMode="close")
    try:
        response = _post(api, _order([{"sku": "IT-000023", "quantity": 1}]))
        order_id = response.json()["orderId"]
        _wait_status(api, order_id, "booked")
    finally:
        _faults(erp_url)
    assert len(_erp_orders(erp_url, order_id)) == 1
    booked = [h for h in _get(api, order_id)["history"] if h["event"] == "booked"]
    assert "found_after_ambiguous_create" in booked[0]["detail"]


def test_an_outage_is_retried_then_dead_lettered_and_a_replay_books_once(
    api: httpx.Client, bus: ServiceBusClient, erp_url: str, admin: dict[str, str], published: None
) -> None:
    _stock(api, bus, "IT-000024", MAIN=10)
    check = api.post("/api/credit/check", json={"customerId": CUSTOMER, "amount": "1"})
    assert check.status_code == 200  # the figures the intake may use while the ERP is down
    _faults(erp_url, outage=True)
    try:
        response = _post(api, _order([{"sku": "IT-000024", "quantity": 1}]))
        assert response.status_code == 202, response.text
        assert response.json()["creditStale"] is True
        order_id = response.json()["orderId"]
        # Three attempts, each spending the ERP client's own retries on the outage: about 30 s
        # on a quiet machine, so the bound leaves room for a loaded one.
        failed = _wait_status(api, order_id, "failed", timeout=90)
    finally:
        _faults(erp_url)
    assert "gave up after attempt 3" in failed["lastError"]
    events = [h["event"] for h in failed["history"]]
    assert events.count("booking-retry-scheduled") == 2 and events[-1] == "failed"
    dead = eventually(lambda: _dead_letters(bus, order_id))
    assert dead[0].dead_letter_reason == "BookingRetriesExhausted"
    assert _erp_orders(erp_url, order_id) == []

    assert api.post(f"/api/ops/orders/{order_id}/replay").status_code == 401  # admin only
    _wait_erp_recovered(api)
    replay = api.post(f"/api/ops/orders/{order_id}/replay", headers=admin)
    assert replay.status_code == 202 and replay.json()["changed"] is True
    booked = _wait_status(api, order_id, "booked")
    again = api.post(f"/api/ops/orders/{order_id}/replay", headers=admin)
    assert again.status_code == 200 and again.json()["changed"] is False
    assert len(_erp_orders(erp_url, order_id)) == 1
    assert "replay-requested" in [h["event"] for h in booked["history"]]


def test_an_erp_refusal_fails_at_once_and_poison_messages_are_dead_lettered(
    api: httpx.Client, bus: ServiceBusClient, erp_url: str, admin: dict[str, str], published: None
) -> None:
    _stock(api, bus, "IT-000025", MAIN=10)
    customer = "C00008"
    url = f"{standard_api(erp_url)}/customers"
    record = httpx.get(url, params={"$filter": f"number eq '{customer}'"}, timeout=10).json()

    def block(value: str) -> None:
        target = f"{url}({record['value'][0]['id']})"
        etag = httpx.get(target, timeout=10).json()["@odata.etag"]
        httpx.patch(
            target, json={"blocked": value}, headers={"If-Match": etag}, timeout=10
        ).raise_for_status()

    api.post("/api/credit/check", json={"customerId": customer, "amount": "1"})
    # The ERP takes 2.5 s to commit an order (less than the booking waits for an answer), so
    # the block below lands before the create commits, however soon the booking starts: the
    # ERP refuses what intake accepted a moment ago.
    _faults(erp_url, commitDelayMs=2500)
    try:
        response = _post(api, _order([{"sku": "IT-000025", "quantity": 1}], customer))
        order_id = response.json()["orderId"]
        eventually(
            lambda: "booking-started" in {h["event"] for h in _get(api, order_id)["history"]}
        )
        block("All")
    finally:
        _faults(erp_url)
    try:
        failed = _wait_status(api, order_id, "failed")
    finally:
        block(" ")
    assert "refused" in failed["lastError"]
    assert [h["event"] for h in failed["history"]].count("booking-started") == 1
    dead = eventually(lambda: _dead_letters(bus, order_id))
    assert dead[0].dead_letter_reason == "ErpRejected"
    cancel = api.post(f"/api/ops/orders/{order_id}/cancel", headers=admin)
    assert cancel.status_code == 202 and cancel.json()["status"] == "rejected"

    with bus.get_queue_sender("orders") as sender:
        sender.send_messages(ServiceBusMessage("not json", message_id="poison-1"))
        sender.send_messages(
            ServiceBusMessage(json.dumps({"orderId": "nope"}), message_id="poison-2")
        )
        unknown = "ORD-01JD7Q0000000000000000ZZZZ"
        sender.send_messages(
            ServiceBusMessage(json.dumps({"orderId": unknown}), message_id="poison-3")
        )
    reasons: dict[str, str] = {}

    def collect() -> bool:
        with bus.get_queue_receiver("orders", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
            for message in dlq.receive_messages(max_message_count=20, max_wait_time=1):
                reasons[str(message.message_id)] = str(message.dead_letter_reason)
                dlq.complete_message(message)
        return {"poison-1", "poison-2", "poison-3"} <= set(reasons)

    eventually(collect)
    assert reasons["poison-1"] == "InvalidJson"
    assert reasons["poison-2"] == "InvalidMessage"
    assert reasons["poison-3"] == "UnknownOrder"
