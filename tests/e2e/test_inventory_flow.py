"""Stock end to end through the runner: Service Bus, webhooks, reconciliation, availability.

This module runs its own function app, Service Bus stand-in and ERP simulator (small) on
free ports, sharing only the session's Azurite (with its own table prefix): it changes ERP
data, runs reconciliation over every ERP row and reads dead-letter queues, none of which may
leak into the shared stack other tests use.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue

from devtools.erp_sim.testing import custom_api
from devtools.stack import LocalStack, StackPorts
from shared.config.settings import LOCAL_WEBHOOK_CLIENT_STATE
from tests.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(azurite_connection: str) -> Iterator[LocalStack]:
    private = LocalStack(ports=StackPorts.free(), erp_items=30, erp_customers=5)
    try:
        private.start_servicebus()
        private.start_erp()
        private.start_runner(
            {
                "AzureWebJobsStorage": azurite_connection,
                "TABLE_PREFIX": "inv" + uuid.uuid4().hex[:8],
                "STOCK_LOW_STOCK_LEVEL": "5",
            }
        )
        yield private
    finally:
        private.stop()


def _event(
    sku: str, sequence: int, kind: str, quantity: str, location: str = "MAIN"
) -> dict[str, Any]:
    return {
        "eventId": f"{sku}|{location}|{sequence}",
        "sku": sku,
        "location": location,
        "kind": kind,
        "quantity": quantity,
        "sequence": sequence,
        "occurredAt": (datetime.now(UTC) - timedelta(seconds=60 - sequence)).isoformat(),
        "source": "wms",
    }


def _send(
    bus: ServiceBusClient, *bodies: dict[str, Any] | str, message_id: str | None = None
) -> None:
    with bus.get_queue_sender("inventory-events") as sender:
        for body in bodies:
            if isinstance(body, str):
                sender.send_messages(
                    ServiceBusMessage(body, message_id=message_id or uuid.uuid4().hex)
                )
            else:
                sender.send_messages(
                    ServiceBusMessage(json.dumps(body), message_id=message_id or body["eventId"])
                )


def _queue_drained(bus: ServiceBusClient, queue: str) -> bool:
    """Nothing left on `queue`: peeking shows active and locked messages alike."""
    with bus.get_queue_receiver(queue) as receiver:
        return not receiver.peek_messages(max_message_count=1)


def _availability(
    api: httpx.Client, skus: list[str], channel: str | None = "web"
) -> httpx.Response:
    query = "skus=" + ",".join(quote(sku, safe="") for sku in skus)
    if channel is not None:
        query += f"&channel={quote(channel)}"
    return api.get(f"/api/availability?{query}")


def _available(api: httpx.Client, sku: str, channel: str = "web") -> dict[str, Any]:
    response = _availability(api, [sku], channel)
    assert response.status_code == 200, response.text
    return dict(response.json()["items"][0])


def _sku() -> str:
    return f"E2E/{uuid.uuid4().hex[:6]}#Ü?"


def test_events_flow_into_availability_per_channel(
    api: httpx.Client, bus: ServiceBusClient
) -> None:
    sku = _sku()
    _send(
        bus,
        _event(sku, 1, "counted", "12", "MAIN"),
        _event(sku, 2, "reserved", "2", "MAIN"),
        _event(sku, 1, "counted", "5.5", "WEST"),
    )
    web = eventually(lambda: (a := _available(api, sku))["available"] == "15.5" and a)
    assert web["sku"] == sku and web["asOf"]
    assert web["locations"] == [
        {
            "location": "MAIN",
            "available": "10",
            "onHand": "12",
            "erpDemand": "0",
            "reserved": "2",
            "pendingHolds": "0",
            "safetyStock": "0",
            "expected": "0",
        },
        {
            "location": "WEST",
            "available": "5.5",
            "onHand": "5.5",
            "erpDemand": "0",
            "reserved": "0",
            "pendingHolds": "0",
            "safetyStock": "0",
            "expected": "0",
        },
    ]
    b2b = _available(api, sku, "b2b-eu")  # sells from MAIN and EAST only
    assert b2b["available"] == "10" and [line["location"] for line in b2b["locations"]] == ["MAIN"]


def test_duplicates_and_reordering_through_the_bus(
    api: httpx.Client, bus: ServiceBusClient
) -> None:
    sku = _sku()
    events = [_event(sku, n, "adjusted", "1") for n in range(2, 6)]
    _send(bus, *reversed(events))  # 5, 4, 3, 2: all wait for sequence 1
    # Redeliveries as a producer would resend them after the broker's dedup window.
    for copy in events[:2]:
        _send(bus, copy, message_id=f"resend-{uuid.uuid4().hex}")
    _send(bus, _event(sku, 1, "counted", "10"))
    eventually(lambda: _available(api, sku)["available"] == "14")
    # Every copy settled (none left to peek, not even locked ones): the figure is final.
    eventually(lambda: _queue_drained(bus, "inventory-events"))
    assert _available(api, sku)["available"] == "14"


def test_unknown_items_are_zero_and_many_skus_keep_their_order(api: httpx.Client) -> None:
    skus = [f"NOPE-{n}" for n in range(3)] + ["ÅSA 2/B", "EF\\67", "CD?45"]
    response = _availability(api, skus)
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["sku"] for item in items] == skus
    assert all(item["available"] == "0" and item["locations"] == [] for item in items)
    assert all(item["asOf"] is None for item in items)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "skus"),
        ("skus=", "skus"),
        ("skus=A,,B", "skus"),
        ("skus=" + ",".join(f"S{n}" for n in range(101)), "skus"),
        ("skus=A&channel=no-such-channel", "channel"),
    ],
)
def test_bad_availability_queries_name_the_field(api: httpx.Client, query: str, field: str) -> None:
    response = api.get(f"/api/availability?{query}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [v["field"] for v in response.json()["violations"]] == [field]


def test_availability_needs_a_function_key(stack: LocalStack) -> None:
    response = httpx.get(f"http://127.0.0.1:{stack.ports.runner}/api/availability?skus=A")
    assert response.status_code == 401


def _dead_letters(bus: ServiceBusClient, wanted: set[str], timeout: float = 30) -> dict[str, Any]:
    found: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    with bus.get_queue_receiver(
        "inventory-events", sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=1
    ) as receiver:
        while wanted - set(found) and time.monotonic() < deadline:
            for message in receiver.receive_messages(max_message_count=20, max_wait_time=1):
                found[str(message.message_id)] = message
                receiver.complete_message(message)
    return found


def test_poison_messages_are_dead_lettered_at_once_with_a_reason(
    api: httpx.Client, bus: ServiceBusClient
) -> None:
    sku = _sku()
    garbage_id, negative_id = f"garbage-{uuid.uuid4().hex}", f"negative-{uuid.uuid4().hex}"
    _send(bus, "{this is not json", message_id=garbage_id)
    negative = {**_event(sku, 2, "counted", "-3"), "eventId": negative_id}
    _send(bus, _event(sku, 1, "counted", "9"), negative)
    found = _dead_letters(bus, {garbage_id, negative_id})
    assert found[garbage_id].dead_letter_reason == "unparseable"
    assert found[negative_id].dead_letter_reason == "negative-count"
    assert found[negative_id].delivery_count == 0  # at once, not after ten tries
    eventually(lambda: _available(api, sku)["available"] == "9")


def _send_together(bus: ServiceBusClient, *messages: ServiceBusMessage) -> None:
    """One send of several messages: one transfer, so they reach the trigger as one batch."""
    with bus.get_queue_sender("inventory-events") as sender:
        sender.send_messages(list(messages))


@pytest.mark.parametrize(
    ("poison", "name"),
    [("{this is not json", "garbage"), ("[" * 100_000, "deeply-nested")],
)
def test_a_poison_message_is_dead_lettered_at_once_and_its_batch_mate_applied(
    api: httpx.Client, bus: ServiceBusClient, poison: str, name: str
) -> None:
    sku = _sku()
    poison_id = f"{name}-{uuid.uuid4().hex}"
    valid = _event(sku, 1, "counted", "7")
    _send_together(
        bus,
        ServiceBusMessage(poison, message_id=poison_id),
        ServiceBusMessage(json.dumps(valid), message_id=valid["eventId"]),
    )
    found = _dead_letters(bus, {poison_id})
    dead = found[poison_id]
    assert dead.dead_letter_reason == "unparseable"
    assert dead.dead_letter_error_description
    assert dead.delivery_count == 0, "dead-lettered on its first delivery, not after retries"
    eventually(lambda: _available(api, sku)["available"] == "7")
    # The valid batch-mate was completed: it never reaches the dead-letter queue.
    assert valid["eventId"] not in _dead_letters(bus, {valid["eventId"]}, timeout=3)


def test_selling_out_publishes_a_stock_alert(api: httpx.Client, bus: ServiceBusClient) -> None:
    sku = _sku()
    _send(bus, _event(sku, 1, "counted", "3"))
    eventually(lambda: _available(api, sku)["available"] == "3")
    _send(bus, _event(sku, 2, "adjusted", "-3"))
    alerts: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    with bus.get_subscription_receiver("stock-alerts", "storefront", max_wait_time=1) as receiver:
        while time.monotonic() < deadline and not any(
            a["level"] == "out-of-stock" and a["scope"] == "location" for a in alerts
        ):
            for message in receiver.receive_messages(max_message_count=50, max_wait_time=1):
                body = json.loads(b"".join(message.body))
                if body["sku"] == sku:
                    alerts.append(body)
                receiver.complete_message(message)
    out = [a for a in alerts if a["level"] == "out-of-stock"]
    assert {(a["scope"], a.get("location") or a.get("channel")) for a in out} == {
        ("location", "MAIN"),
        ("channel", "web"),
        ("channel", "b2b-eu"),
    }


def test_webhook_handshake_and_client_state(stack: LocalStack) -> None:
    url = f"http://127.0.0.1:{stack.ports.runner}/api/erp/notifications"
    handshake = httpx.post(url, params={"validationToken": "tok-123_abc"})
    assert handshake.status_code == 200 and handshake.text == "tok-123_abc"
    assert handshake.headers["content-type"].startswith("text/plain")
    # Another environment's subscription pointing at this URL: refusing it would make
    # Business Central delete *their* subscription, so it is answered 202 and dropped.
    foreign = _notification_body("x", "guess")
    answer = httpx.post(url, json=foreign)
    assert answer.status_code == 202 and answer.json()["queued"] == 0
    # A time without an offset is read as UTC, not refused.
    naive = _notification_body("y", LOCAL_WEBHOOK_CLIENT_STATE, "2026-03-01T10:00:00")
    answer = httpx.post(url, json=naive)
    assert answer.status_code == 202 and answer.json()["queued"] == 1


def _notification_body(
    subscription_id: str, client_state: str, modified: str | None = None
) -> dict[str, Any]:
    return {
        "value": [
            {
                "subscriptionId": subscription_id,
                "clientState": client_state,
                "resource": "api/v2.0/companies(x)/items",
                "changeType": "updated",
                "lastModifiedDateTime": modified or datetime.now(UTC).isoformat(),
            }
        ]
    }


# Stock and prices, and the order documents the lifecycle follows (docs/erp-conformance.md):
# each entity set the app subscribes to by default, with the API root it lives at.
SUBSCRIBED = {
    ("v2.0", "items"),
    ("contoso/commerceSync/v1.0", "itemAvailabilityByLocation"),
    ("contoso/commerceSync/v1.0", "priceListLines"),
    ("v2.0", "salesOrders"),
    ("v2.0", "salesShipments"),
    ("v2.0", "salesInvoices"),
    ("v2.0", "salesCreditMemos"),
    ("contoso/commerceSync/v1.0", "salesShipmentTracking"),
}


def _subscriptions(erp_url: str, webhook: str) -> list[dict[str, Any]]:
    """Ours, from both roots: standard pages at api/v2.0, custom pages at their own API."""
    listed: list[dict[str, Any]] = []
    for root in ("v2.0", "contoso/commerceSync/v1.0"):
        url = f"{erp_url}/v2.0/local/sandbox/api/{root}/subscriptions"
        listed += [
            {**s, "root": root}
            for s in httpx.get(url).json()["value"]
            if s["notificationUrl"] == webhook
        ]
    return listed


def _erp_row(erp_url: str, item: str | None = None) -> dict[str, Any]:
    params = {"$filter": f"itemNumber eq '{item}'"} if item else {}
    rows = httpx.get(f"{custom_api(erp_url)}/itemAvailabilityByLocation", params=params).json()[
        "value"
    ]
    return next(r for r in rows if r["inventory"] > 20)


def _patch(erp_url: str, row: dict[str, Any], inventory: int) -> dict[str, Any]:
    response = httpx.patch(
        f"{custom_api(erp_url)}/itemAvailabilityByLocation({row['id']})",
        json={"inventory": inventory},
        headers={"If-Match": row["@odata.etag"]},
    )
    response.raise_for_status()
    return dict(response.json())


def _location_line(api: httpx.Client, sku: str, location: str) -> dict[str, Any] | None:
    lines = _available(api, sku)["locations"]
    return next((line for line in lines if line["location"] == location), None)


def test_an_erp_change_notification_flows_into_availability(
    api: httpx.Client, admin: dict[str, str], erp_url: str, stack: LocalStack
) -> None:
    run = api.post("/admin/functions/erp_subscriptions", json={}, headers=admin)
    assert run.status_code == 202
    webhook = stack.settings()["ERP_WEBHOOK_URL"]

    def ours() -> list[dict[str, Any]]:
        return _subscriptions(erp_url, webhook)

    expected = set(SUBSCRIBED)
    subscriptions = eventually(lambda: len(ours()) == len(expected) and ours())
    assert {s["clientState"] for s in subscriptions} == {LOCAL_WEBHOOK_CLIENT_STATE}
    assert {(s["root"], s["resource"].rsplit("/", 1)[-1]) for s in subscriptions} == expected
    availability_sub = next(s for s in subscriptions if s["resource"].endswith("ByLocation"))
    # A wrong clientState on one of *our* subscriptions is the one notification refused.
    forged = _notification_body(availability_sub["subscriptionId"], "guess")
    assert httpx.post(webhook, json=forged).status_code == 401
    handshake = httpx.post(
        f"{erp_url}/_sim/notify",
        json={"subscriptionId": availability_sub["subscriptionId"], "handshake": True},
    ).json()
    assert handshake["deliveries"][0]["outcome"] == "validated"

    row = _patch(erp_url, _erp_row(erp_url), 777)
    sent = httpx.post(
        f"{erp_url}/_sim/notify",
        json={
            "subscriptionId": availability_sub["subscriptionId"],
            "changeType": "updated",
            "entityId": row["id"],
        },
    ).json()
    assert sent["deliveries"][0]["status"] == 202
    line = eventually(
        lambda: (
            (found := _location_line(api, row["itemNumber"], row["locationCode"]))
            and found["onHand"] == "777"
            and found
        )
    )
    # Reservations held by sales lines are inside the demand; only the rest is "reserved".
    assert line["reserved"] == str(row["reservedQuantity"] - row["reservedQtyOnSalesOrders"])
    assert line["erpDemand"] == str(row["qtyOnSalesOrders"])
    assert line["expected"] == str(row["qtyOnPurchaseOrders"])


def test_a_lost_event_is_healed_by_reconciliation(
    api: httpx.Client, admin: dict[str, str], erp_url: str
) -> None:
    row = _erp_row(erp_url, "IT-000001")
    item, location = row["itemNumber"], row["locationCode"]
    api.post("/admin/functions/stock_reconcile", json={}, headers=admin)
    eventually(
        lambda: (
            (found := _location_line(api, item, location))
            and found["onHand"] == str(row["inventory"])
        )
    )
    # The ERP's stock changes, and the event (and notification) for it is lost.
    _patch(erp_url, row, row["inventory"] + 9)
    time.sleep(0.1)  # the next run must read after the change
    assert api.post("/admin/functions/stock_reconcile", json={}, headers=admin).status_code == 202
    eventually(
        lambda: (
            (found := _location_line(api, item, location))
            and found["onHand"] == str(row["inventory"] + 9)
        ),
        timeout=60,
    )


def test_a_collection_notification_after_a_bulk_change_reaches_stock_and_prices(
    api: httpx.Client, admin: dict[str, str], erp_url: str, stack: LocalStack
) -> None:
    """Over 1,000 changes in 30 s make BC send one "collection" notification per
    subscription, naming the set with a filter from the first change: stock must reach
    availability within the stock objective (5 s), prices within theirs."""
    assert api.post("/admin/functions/price_publish_full", json={}, headers=admin).is_success
    assert api.post("/admin/functions/erp_subscriptions", json={}, headers=admin).is_success
    webhook = stack.settings()["ERP_WEBHOOK_URL"]
    assert eventually(lambda: len(_subscriptions(erp_url, webhook)) == len(SUBSCRIBED))
    by_set = {
        s["resource"].rsplit("/", 1)[-1]: s["subscriptionId"]
        for s in _subscriptions(erp_url, webhook)
    }
    body = {"customerId": "C00001", "lines": [{"sku": "IT-000002", "quantity": 1}]}
    eventually(lambda: api.post("/api/prices/quote", json=body).status_code == 200, 60)
    first_change = datetime.now(UTC)
    rows = httpx.get(f"{custom_api(erp_url)}/itemAvailabilityByLocation").json()["value"][:8]
    changed = {(r["itemNumber"], r["locationCode"]): 500 + n for n, r in enumerate(rows)}
    for row in rows:
        _patch(erp_url, row, changed[(row["itemNumber"], row["locationCode"])])
    # The lowest applicable price wins: a new all-customers line far below any other.
    httpx.post(
        f"{custom_api(erp_url)}/priceListLines",
        json={"priceListCode": "BULK", "assetNo": "IT-000002", "unitPrice": "0.42"},
    ).raise_for_status()
    sent_at = time.monotonic()
    for entity_set in ("itemAvailabilityByLocation", "priceListLines"):
        delivered = httpx.post(
            f"{erp_url}/_sim/notify",
            json={
                "subscriptionId": by_set[entity_set],
                "changeType": "collection",
                "firstChange": first_change.isoformat(),
            },
        ).json()["deliveries"][0]
        assert delivered["status"] == 202, delivered

    def stock_arrived() -> bool:
        return all(
            (line := _location_line(api, item, location)) is not None
            and line["onHand"] == str(quantity)
            for (item, location), quantity in changed.items()
        )

    eventually(stock_arrived, timeout=5)
    stock_seconds = time.monotonic() - sent_at

    def price_arrived() -> bool:
        quote = api.post("/api/prices/quote", json=body)
        return quote.status_code == 200 and quote.json()["lines"][0]["unitPrice"] == "0.42"

    eventually(price_arrived, timeout=60)
    assert stock_seconds <= 5.0  # the stock sync objective (sync_policy.json: PT5S)
    logging.getLogger(__name__).info(
        "collection notification: stock in %.2fs, prices in %.2fs",
        stock_seconds,
        time.monotonic() - sent_at,
    )
