"""An order's life after booking, end to end through the runner (issue 18).

Booked through the product, then worked in the ERP simulator the way Business Central is
worked: released, shipped in two parts with carriers and tracking numbers, invoiced; on another
order a line is deleted while the order is open. Each change reaches the product the way it
would in production: BC webhooks (the simulator's notify route sends BC's notification to the
subscriptions the ``erp_subscriptions`` timer created), or, for a missed notification, the
``order_lifecycle_poll`` timer. Checked: one ``order-status`` event per change with a growing
sequence, ``GET /api/orders/{id}`` showing the same, nothing published twice when every
notification is replayed, and the deleted line's units back in availability.

A private stack (function app, Service Bus stand-in, ERP simulator) on free ports; only the
session's Azurite is shared, under a table prefix of its own.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.servicebus import ServiceBusClient

from devtools.erp_sim.testing import standard_api
from devtools.stack import LocalStack
from shared.config.settings import DEMO_CHANNEL_SECRETS
from shared.domain.orders.customer_token import sign
from tests.e2e.conftest import PrivateStack
from tests.support.order_events import Events
from tests.support.stock_setup import set_financials
from tests.waiting import eventually

pytestmark = pytest.mark.slow

CUSTOMER = "C00001"
COMPANY = "7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20"
SALES_SETS = ("salesOrders", "salesShipments", "salesInvoices")
_log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
    env = {
        "ORDER_BOOKING_CLAIM_SECONDS": "10",
        "ERP_WEBHOOK_RESOURCES": (
            "itemAvailabilityByLocation,salesOrders,salesShipments,salesInvoices,"
            "salesShipmentTracking"
        ),
    }
    with private_stack("lif", env=env) as started:
        yield started


@pytest.fixture(scope="module")
def subscriptions(api: httpx.Client, admin: dict[str, str], erp_url: str) -> dict[str, str]:
    """Prices published, stock seeded from the ERP, webhook subscriptions in place, credit room;
    returns the subscription id per subscribed sales document set."""
    assert api.post("/admin/functions/price_publish_full", json={}, headers=admin).is_success
    set_financials(erp_url, CUSTOMER, balance="-100000000")
    assert api.post("/admin/functions/stock_reconcile", json={}, headers=admin).is_success
    assert api.post("/admin/functions/erp_subscriptions", json={}, headers=admin).is_success

    def listed() -> dict[str, str] | None:
        rows = httpx.get(f"{erp_url}/v2.0/local/sandbox/api/v2.0/subscriptions").json()["value"]
        found = {row["resource"].rsplit("/", 1)[-1]: row["subscriptionId"] for row in rows}
        return found if all(name in found for name in SALES_SETS) else None

    ids = eventually(listed, 60)
    body = {"customerId": CUSTOMER, "lines": [{"sku": "IT-000001", "quantity": 1}]}
    eventually(lambda: api.post("/api/prices/quote", json=body).status_code == 200, 60)
    return dict(ids)


def _sellable(api: httpx.Client, count: int) -> list[str]:
    """Items the demo customer can buy now, with stock in the projection (waiting until the
    seeding reconciliation's stock events have been applied)."""

    def enough() -> list[str] | None:
        found: list[str] = []
        for number in range(1, 41):
            sku = f"IT-{number:06d}"
            quote = {"customerId": CUSTOMER, "lines": [{"sku": sku, "quantity": 1}]}
            if api.post("/api/prices/quote", json=quote).status_code != 200:
                continue
            item = api.get("/api/availability", params={"skus": sku, "channel": "web"}).json()
            if int(item["items"][0]["available"]) >= 10:
                found.append(sku)
            if len(found) == count:
                return found
        return None

    return list(eventually(enough, 60))


def _book(api: httpx.Client, lines: list[tuple[str, int]]) -> dict[str, Any]:
    body = {
        "customerId": CUSTOMER,
        "externalOrderId": f"shop-{uuid.uuid4().hex[:8]}",
        "channel": "web",
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
    }
    answer = api.post("/api/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert answer.status_code == 202, answer.text
    order_id = answer.json()["orderId"]

    def booked() -> dict[str, Any] | None:
        order = api.get(f"/api/orders/{order_id}").json()
        return order if order["status"] == "booked" else None

    return dict(eventually(booked, 60))


def _erp_order(erp_url: str, order_id: str) -> dict[str, Any]:
    rows = httpx.get(
        f"{standard_api(erp_url)}/salesOrders",
        params={"$filter": f"externalDocumentNumber eq '{order_id}'", "$expand": "salesOrderLines"},
        timeout=10,
    ).json()["value"]
    assert len(rows) == 1, rows
    return dict(rows[0])


def _notify(erp_url: str, subscription: str, entity_id: str) -> None:
    sent = httpx.post(
        f"{erp_url}/_sim/notify",
        json={"subscriptionId": subscription, "changeType": "updated", "entityId": entity_id},
        timeout=10,
    ).json()
    assert sent["deliveries"][0]["status"] == 202, sent


def _get(api: httpx.Client, order_id: str) -> dict[str, Any]:
    answer = api.get(f"/api/orders/{order_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_released_shipped_in_two_parts_invoiced_and_replayed(
    api: httpx.Client,
    bus: ServiceBusClient,
    erp_url: str,
    subscriptions: dict[str, str],
) -> None:
    first, second = _sellable(api, 2)
    order = _book(api, [(first, 5), (second, 2)])
    order_id = order["orderId"]
    assert order["shipments"] == [] and order["invoices"] == []
    events = Events(bus, order_id)
    assert events.until("booked")["sequence"] == 1
    erp = _erp_order(erp_url, order_id)
    number = erp["number"]
    timings: dict[str, float] = {}

    # Released in the ERP (no API action in BC: the simulator's control route).
    started = time.monotonic()
    httpx.post(
        f"{erp_url}/_sim/salesOrders/{number}/status", json={"status": "Released"}, timeout=10
    ).raise_for_status()
    _notify(erp_url, subscriptions["salesOrders"], erp["id"])
    released = events.until("released")
    timings["released"] = time.monotonic() - started
    assert released["sequence"] == 2 and released["erpOrderNumber"] == number

    # First shipment: part of the first line, by DHL.
    line = next(li for li in erp["salesOrderLines"] if li["lineObjectNumber"] == first)
    started = time.monotonic()
    one = httpx.post(
        f"{erp_url}/_sim/salesOrders/{number}/ship",
        json={
            "lines": [{"sequence": line["sequence"], "quantity": 2}],
            "shippingAgentCode": "DHL",
            "packageTrackingNumber": "JD014600003828",
        },
        timeout=10,
    ).json()["shipment"]
    _notify(erp_url, subscriptions["salesShipments"], one["id"])
    partly = events.until("partially-shipped")
    timings["partially-shipped"] = time.monotonic() - started
    assert partly["sequence"] == 3
    assert partly["shipments"] == [
        {
            "number": one["number"],
            "shippedAt": one["postingDate"],
            "carrier": "DHL",
            "trackingNumber": "JD014600003828",
            "lines": [{"sku": first, "unitOfMeasure": line["unitOfMeasureCode"], "quantity": 2}],
        }
    ]
    by_sku = {li["sku"]: li for li in partly["lines"]}
    assert (by_sku[first]["ordered"], by_sku[first]["shipped"], by_sku[first]["backordered"]) == (
        5,
        2,
        3,
    )

    # Second shipment: everything else, by UPS; then the invoice.
    two = httpx.post(
        f"{erp_url}/_sim/salesOrders/{number}/ship",
        json={"shippingAgentCode": "UPS", "packageTrackingNumber": "1Z999AA10123456784"},
        timeout=10,
    ).json()["shipment"]
    _notify(erp_url, subscriptions["salesShipments"], two["id"])
    shipped = events.until("shipped")
    assert shipped["sequence"] == 4
    assert [s["trackingNumber"] for s in shipped["shipments"]] == [
        "JD014600003828",
        "1Z999AA10123456784",
    ]
    started = time.monotonic()
    invoice = httpx.post(f"{erp_url}/_sim/salesOrders/{number}/invoice", timeout=10).json()[
        "invoice"
    ]
    _notify(erp_url, subscriptions["salesInvoices"], invoice["id"])
    invoiced = events.until("invoiced")
    timings["invoiced"] = time.monotonic() - started
    assert invoiced["sequence"] == 5
    assert invoiced["invoices"][0]["number"] == invoice["number"]
    assert invoiced["invoices"][0]["dueDate"] == invoice["dueDate"]
    assert float(invoiced["invoices"][0]["amount"]) == float(invoice["totalAmountIncludingTax"])
    assert invoiced["invoices"][0]["remainingAmount"] == invoiced["invoices"][0]["amount"]
    assert invoiced["invoices"][0]["status"] == "Open"
    assert invoiced["invoices"][0]["postedAt"] == invoice["postingDate"]

    # The API shows the same state as the latest event.
    view = _get(api, order_id)
    assert view["status"] == "invoiced" and view["lifecycleSequence"] == 5
    assert [s["trackingNumber"] for s in view["shipments"]] == [
        "JD014600003828",
        "1Z999AA10123456784",
    ]
    assert view["invoices"] == invoiced["invoices"]
    assert view["progress"] == invoiced["lines"]

    # Every notification again (BC retries, a replay from the dead-letter queue): nothing new.
    for set_name, entity_id in (
        ("salesOrders", erp["id"]),
        ("salesShipments", one["id"]),
        ("salesShipments", two["id"]),
        ("salesInvoices", invoice["id"]),
    ):
        _notify(erp_url, subscriptions[set_name], entity_id)
    # The replayed notifications are processed (the order is read back) before we look.
    eventually(lambda: _get(api, order_id)["lifecycleSequence"] == 5)
    before = len(events.seen)
    events.drain(3.0)
    assert len(events.seen) == before, events.seen[before:]
    sequences = [e["sequence"] for e in events.seen]
    assert sequences == sorted(set(sequences)) == [1, 2, 3, 4, 5]
    # Within the sync policy's orders.lifecycleObjective (PT1M by default).
    assert max(timings.values()) < 60, timings
    _log.info("simulator change -> order-status event, seconds: %s", timings)


def test_a_line_deleted_in_the_erp_is_reflected_and_its_units_come_back(
    api: httpx.Client,
    admin: dict[str, str],
    bus: ServiceBusClient,
    erp_url: str,
    subscriptions: dict[str, str],
) -> None:
    keep, drop = _sellable(api, 4)[2:]

    def available(sku: str) -> int:
        item = api.get("/api/availability", params={"skus": sku, "channel": "web"}).json()
        return int(item["items"][0]["available"])

    dropped_before = available(drop)
    order = _book(api, [(keep, 1), (drop, 3)])
    order_id = order["orderId"]
    eventually(lambda: available(drop) == dropped_before - 3)
    erp = _erp_order(erp_url, order_id)
    line = next(li for li in erp["salesOrderLines"] if li["lineObjectNumber"] == drop)
    deleted = httpx.delete(
        f"{standard_api(erp_url)}/salesOrders({erp['id']})/salesOrderLines({line['id']})",
        headers={"If-Match": line["@odata.etag"]},
        timeout=10,
    )
    assert deleted.status_code == 204, deleted.text

    # A missed notification: the poll finds the change (header modified) on its own.
    assert api.post("/admin/functions/order_lifecycle_poll", json={}, headers=admin).is_success
    events = Events(bus, order_id)

    def cancelled_line() -> dict[str, Any] | None:
        events.drain(0.5)
        for event in events.seen:
            lines = {li["sku"]: li for li in event.get("lines", [])}
            if event["sequence"] >= 2 and lines.get(drop, {}).get("cancelled") == 3:
                return event
        return None

    event = eventually(cancelled_line, 60)
    lines = {li["sku"]: li for li in event["lines"]}
    assert (lines[drop]["ordered"], lines[drop]["backordered"]) == (0, 0)
    assert (lines[keep]["ordered"], lines[keep]["cancelled"]) == (1, 0)
    assert event["status"] == "booked"
    view = _get(api, order_id)
    assert {p["sku"]: p["cancelled"] for p in view["progress"]} == {keep: 0, drop: 3}
    # The ERP no longer owes the units: its read replaces the booked demand, counted once.
    eventually(lambda: available(drop) == dropped_before, 60)
    assert available(drop) == dropped_before


def _token(customer: str, channel: str = "web") -> str:
    secret = json.loads(DEMO_CHANNEL_SECRETS)[channel].encode()
    return sign(secret, channel, customer, int(time.time()) + 300)


def test_b2b_history_pages_10000_invoices_within_budget_and_only_for_its_customer(
    api: httpx.Client, erp_url: str, subscriptions: dict[str, str]
) -> None:
    customer = "C00004"
    httpx.post(
        f"{erp_url}/_sim/customers/{customer}/history",
        json={"invoices": 10_000, "paidShare": 0.25},
        timeout=120,
    ).raise_for_status()
    url = f"/api/customers/{customer}/invoices"

    def erp_invoice_reads() -> int:
        stats = httpx.get(f"{erp_url}/_sim/stats", timeout=10).json()["requests"]
        return sum(stats.get("salesInvoices", {}).get("GET", {}).values())

    # Proof of the customer: none, forged, another customer's, an unknown customer.
    assert api.get(url).status_code == 401
    forged = _token(customer)[:-4] + "0000"
    assert api.get(url, headers={"x-customer-token": forged}).status_code == 401
    other = api.get(url, headers={"x-customer-token": _token("C00001")})
    assert other.status_code == 403, other.text
    unknown = api.get(
        "/api/customers/NOPE1/invoices", headers={"x-customer-token": _token("NOPE1")}
    )
    assert unknown.status_code == 404, unknown.text

    before = erp_invoice_reads()
    started = time.monotonic()
    seen: list[str] = []
    params: dict[str, Any] = {"pageSize": 500}
    while True:
        page = api.get(url, params=params, headers={"x-customer-token": _token(customer, "b2b-eu")})
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["customerId"] == customer and body["stale"] is False and body["dataAsOf"]
        seen.extend(item["number"] for item in body["items"])
        if body["page"]["continuation"] is None:
            break
        params["continuation"] = body["page"]["continuation"]
    elapsed = time.monotonic() - started
    reads = erp_invoice_reads() - before
    assert len(seen) == len(set(seen)) == 10_000
    assert reads <= 10_000 // 500 + 3, reads
    _log.info("10,000 invoices: %s ERP requests, %.1f s through the runner", reads, elapsed)


def test_operations_page_and_audit_show_orders_waiting_and_lifecycle_drift(
    api: httpx.Client, admin: dict[str, str], erp_url: str, subscriptions: dict[str, str]
) -> None:
    (sku,) = _sellable(api, 5)[4:]
    order = _book(api, [(sku, 1)])
    order_id = order["orderId"]
    # The baseline lifecycle is recorded by the first read (the poll finds the new ERP order).
    assert api.post("/admin/functions/order_lifecycle_poll", json={}, headers=admin).is_success
    eventually(lambda: _get(api, order_id).get("lifecycleSequence") == 1, 60)

    overview = api.get("/api/ops/overview", headers=admin).json()
    section = next(
        s for s in overview["extraSections"] if s["title"].startswith("Orders after booking")
    )
    rows = {row["key"]: row["value"] for row in section["rows"]}
    assert int(rows["orders waiting for ERP progress"]) >= 1
    assert rows["oldest unshipped"].startswith("ORD-")

    def lifecycles() -> dict[str, Any]:
        report = api.post("/api/ops/audit", params={"layers": "data"}, headers=admin)
        assert report.status_code == 200, report.text
        datasets = report.json()["data"]["datasets"]
        return dict(next(d for d in datasets if d["name"] == "order lifecycles"))

    assert lifecycles()["differing"]["total"] == 0
    # Released in the ERP, and the notification lost: the audit sees the drift ...
    erp = _erp_order(erp_url, order_id)
    httpx.post(
        f"{erp_url}/_sim/salesOrders/{erp['number']}/status",
        json={"status": "Released"},
        timeout=10,
    ).raise_for_status()
    drifted = lifecycles()
    assert order_id in [row["key"] for row in drifted["differing"]["rows"]]
    assert drifted["inSync"] is False
    # ... and the poll (the safety net) heals it.
    assert api.post("/admin/functions/order_lifecycle_poll", json={}, headers=admin).is_success
    eventually(lambda: _get(api, order_id)["status"] == "released", 60)
    healed = lifecycles()
    assert order_id not in [row["key"] for row in healed["differing"]["rows"]]
