"""Orders held for approval end to end through the runner (issue 19): HTTP intake with the
sync policy at ``hold`` for short stock and price mismatches (``SYNC_POLICY``), the admin
routes, Service Bus booking, the ERP simulator, the operations page.

Its own function app, Service Bus stand-in and ERP simulator on free ports, sharing only the
session's Azurite under its own table prefix. Stock arrives as ``counted`` inventory events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from azure.servicebus import ServiceBusClient

from devtools.erp_sim.testing import standard_api
from devtools.stack import LocalStack
from tests.e2e.conftest import PrivateStack
from tests.support.stock_setup import count_stock
from tests.waiting import eventually

pytestmark = pytest.mark.slow

CUSTOMER = "C00001"
POLICY = {
    "orders": {
        "approvals": {
            "holdFor": "PT1H",
            "rules": {"insufficient-stock": "hold", "price-mismatch": "hold"},
        }
    }
}


@pytest.fixture(scope="module")
def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
    with private_stack("apr", policy=POLICY) as started:
        yield started


def _availability(api: httpx.Client, sku: str, location: str) -> dict[str, Any] | None:
    response = api.get(f"/api/availability?skus={quote(sku, safe='')}&channel=web")
    if response.status_code != 200:
        return None
    for line in response.json()["items"][0]["locations"]:
        if line["location"] == location:
            return dict(line)
    return None


def _stock(api: httpx.Client, bus: ServiceBusClient, sku: str, location: str, qty: int) -> None:
    count_stock(bus, sku, location, qty)

    def counted() -> bool:
        line = _availability(api, sku, location)
        return line is not None and Decimal(line["onHand"]) == qty

    eventually(counted)


@pytest.fixture(scope="module")
def published(api: httpx.Client, admin: dict[str, str]) -> None:
    response = api.post("/admin/functions/price_publish_full", json={"input": ""}, headers=admin)
    assert response.status_code == 202
    body = {"customerId": CUSTOMER, "lines": [{"sku": "IT-000001", "quantity": 1}]}
    eventually(lambda: api.post("/api/prices/quote", json=body).status_code == 200, 60)


def _submit(api: httpx.Client, lines: list[dict[str, Any]]) -> httpx.Response:
    body = {
        "customerId": CUSTOMER,
        "externalOrderId": f"shop-{uuid.uuid4().hex[:8]}",
        "channel": "web",
        "lines": lines,
    }
    return api.post("/api/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})


def _decide(
    api: httpx.Client, admin: dict[str, str], order_id: str, verb: str, who: str = "Fran"
) -> httpx.Response:
    return api.post(
        f"/api/ops/orders/{order_id}/{verb}",
        json={"approver": who, "reason": f"{verb} in e2e"},
        headers=admin,
    )


def _erp_orders(erp_url: str, order_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{standard_api(erp_url)}/salesOrders",
        params={"$filter": f"externalDocumentNumber eq '{order_id}'"},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json()["value"])


def test_a_short_order_waits_is_approved_over_http_and_booked_once(
    api: httpx.Client,
    admin: dict[str, str],
    bus: ServiceBusClient,
    erp_url: str,
    published: None,
) -> None:
    sku = "IT-000001"
    _stock(api, bus, sku, "MAIN", 2)
    answer = _submit(api, [{"sku": sku, "quantity": 3}])
    assert answer.status_code == 202, answer.text
    body = answer.json()
    order_id = body["orderId"]
    assert body["status"] == "pending-approval" and body["approvalUntil"]
    assert [v["rule"] for v in body["violations"]] == ["insufficient-stock"]
    seen = api.get(f"/api/orders/{order_id}").json()
    assert seen["status"] == "pending-approval" and seen["violations"][0]["available"] == "2"
    line = _availability(api, sku, "MAIN")
    assert line is not None and Decimal(line["pendingHolds"]) == 2

    listed = api.get("/api/ops/approvals", headers=admin)
    assert listed.status_code == 200
    assert order_id in [item["orderId"] for item in listed.json()["items"]]
    assert api.get("/api/ops/approvals").status_code == 401  # function key is not enough
    overview = api.get("/api/ops/overview", headers=admin).json()
    section = next(s for s in overview["extraSections"] if "approval" in s["title"])
    assert order_id in [row["key"] for row in section["rows"]]

    nobody = api.post(
        f"/api/ops/orders/{order_id}/approve", json={"reason": "no name"}, headers=admin
    )
    assert nobody.status_code == 422 and nobody.headers["content-type"].startswith(
        "application/problem+json"
    )
    first = _decide(api, admin, order_id, "approve")
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "accepted" and first.json()["changed"] is True
    again = _decide(api, admin, order_id, "approve")
    assert again.status_code == 200 and again.json()["changed"] is False

    eventually(lambda: api.get(f"/api/orders/{order_id}").json()["status"] == "booked", 60)
    erp = _erp_orders(erp_url, order_id)
    assert len(erp) == 1
    view = api.get(f"/api/orders/{order_id}").json()
    assert [(d["decision"], d["approver"]) for d in view["decisions"]] == [("approved", "Fran")]
    waiting = api.get("/api/ops/approvals", headers=admin).json()["items"]
    assert order_id not in [item["orderId"] for item in waiting]


def test_a_rejected_order_gives_back_every_hold(
    api: httpx.Client, admin: dict[str, str], bus: ServiceBusClient, erp_url: str, published: None
) -> None:
    sku = "IT-000002"
    _stock(api, bus, sku, "MAIN", 10)
    quote_body = {"customerId": CUSTOMER, "lines": [{"sku": sku, "quantity": 2}]}
    price = Decimal(api.post("/api/prices/quote", json=quote_body).json()["lines"][0]["unitPrice"])
    answer = _submit(api, [{"sku": sku, "quantity": 2, "expectedUnitPrice": str(price + 1)}])
    assert answer.status_code == 202, answer.text
    order_id = answer.json()["orderId"]
    held = _availability(api, sku, "MAIN")
    assert held is not None and Decimal(held["pendingHolds"]) == 2

    rejected = _decide(api, admin, order_id, "reject", who="Pat")
    assert rejected.status_code == 202, rejected.text
    assert rejected.json()["status"] == "rejected"
    back = _availability(api, sku, "MAIN")
    assert back is not None and Decimal(back["pendingHolds"]) == 0
    view = api.get(f"/api/orders/{order_id}").json()
    assert view["status"] == "rejected"
    assert [(d["decision"], d["approver"], d["reason"]) for d in view["decisions"]] == [
        ("rejected", "Pat", "reject in e2e")
    ]
    late = _decide(api, admin, order_id, "approve")
    assert late.status_code == 409 and "rejected by Pat" in late.json()["detail"]
    assert _erp_orders(erp_url, order_id) == []


def test_concurrent_approve_and_reject_calls_leave_one_outcome(
    api: httpx.Client, admin: dict[str, str], bus: ServiceBusClient, erp_url: str, published: None
) -> None:
    sku = "IT-000020"
    _stock(api, bus, sku, "MAIN", 1)
    answer = _submit(api, [{"sku": sku, "quantity": 4}])
    assert answer.status_code == 202, answer.text
    order_id = answer.json()["orderId"]
    verbs = ["approve", "reject"] * 4
    with ThreadPoolExecutor(len(verbs)) as pool:
        answers = list(
            pool.map(
                lambda pair: _decide(api, admin, order_id, pair[1], f"ops-{pair[0]}"),
                enumerate(verbs),
            )
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(202) == 1, [(a.status_code, a.text) for a in answers]
    assert set(statuses) <= {200, 202, 409}
    view = api.get(f"/api/orders/{order_id}").json()
    assert len(view["decisions"]) == 1
    if view["decisions"][0]["decision"] == "approved":
        eventually(lambda: api.get(f"/api/orders/{order_id}").json()["status"] == "booked", 60)
        assert len(_erp_orders(erp_url, order_id)) == 1
    else:
        line = _availability(api, sku, "MAIN")
        assert line is not None and Decimal(line["pendingHolds"]) == 0
        assert _erp_orders(erp_url, order_id) == []


def test_with_reject_for_other_rules_intake_refuses_as_today(
    api: httpx.Client, published: None
) -> None:
    answer = _submit(api, [{"sku": "NO-SUCH-ITEM", "quantity": 1}])
    assert answer.status_code == 422
    assert [v["rule"] for v in answer.json()["violations"]] == ["unknown-item"]
