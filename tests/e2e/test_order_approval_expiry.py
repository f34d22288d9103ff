"""An approval nobody gives, end to end through the runner: with the sync policy holding
short stock for 2 seconds only, the ``orders_sweep`` timer (run on demand, as an operator
would) rejects the held order with the reason and gives back its stock and credit holds.

Its own function app, Service Bus stand-in and ERP simulator on free ports, sharing only the
session's Azurite under its own table prefix.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from devtools.stack import LocalStack
from tests.e2e.conftest import PrivateStack
from tests.waiting import eventually

pytestmark = pytest.mark.slow

CUSTOMER = "C00001"
SKU = "IT-000001"
POLICY = {"orders": {"approvals": {"holdFor": "PT2S", "rules": {"insufficient-stock": "hold"}}}}


@pytest.fixture(scope="module")
def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
    with private_stack("apx", policy=POLICY) as started:
        yield started


def _main(api: httpx.Client) -> dict[str, Any] | None:
    response = api.get(f"/api/availability?skus={SKU}&channel=web")
    if response.status_code != 200:
        return None
    return next(
        (
            dict(line)
            for line in response.json()["items"][0]["locations"]
            if line["location"] == "MAIN"
        ),
        None,
    )


def test_an_expired_approval_is_rejected_with_the_reason_and_gives_back_its_holds(
    api: httpx.Client, admin: dict[str, str], bus: ServiceBusClient
) -> None:
    published = api.post("/admin/functions/price_publish_full", json={"input": ""}, headers=admin)
    assert published.status_code == 202
    quote = {"customerId": CUSTOMER, "lines": [{"sku": SKU, "quantity": 1}]}
    eventually(lambda: api.post("/api/prices/quote", json=quote).status_code == 200, 60)
    count = {
        "eventId": f"{SKU}|MAIN|1",
        "sku": SKU,
        "location": "MAIN",
        "kind": "counted",
        "quantity": "2",
        "sequence": 1,
        "occurredAt": datetime.now(UTC).isoformat(),
        "source": "wms",
    }
    with bus.get_queue_sender("inventory-events") as sender:
        sender.send_messages(ServiceBusMessage(json.dumps(count), message_id=count["eventId"]))
    eventually(lambda: (line := _main(api)) is not None and Decimal(line["onHand"]) == 2)

    body = {
        "customerId": CUSTOMER,
        "externalOrderId": "shop-expiry",
        "channel": "web",
        "lines": [{"sku": SKU, "quantity": 3}],
    }
    answer = api.post("/api/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert answer.status_code == 202, answer.text
    order_id = answer.json()["orderId"]
    assert answer.json()["status"] == "pending-approval"
    held = _main(api)
    assert held is not None and Decimal(held["pendingHolds"]) == 2

    def swept_and_rejected() -> bool:
        run = api.post("/admin/functions/orders_sweep", json={"input": ""}, headers=admin)
        assert run.status_code == 202
        return bool(api.get(f"/api/orders/{order_id}").json()["status"] == "rejected")

    eventually(swept_and_rejected, 30)
    view = api.get(f"/api/orders/{order_id}").json()
    assert [(d["decision"], d["approver"]) for d in view["decisions"]] == [
        ("expired", "system:approval-expiry")
    ]
    assert view["decisions"][0]["reason"].startswith("approval expired at")
    after = _main(api)
    assert after is not None and Decimal(after["pendingHolds"]) == 0
    late = api.post(
        f"/api/ops/orders/{order_id}/approve",
        json={"approver": "Fran", "reason": "too late"},
        headers=admin,
    )
    assert late.status_code == 409 and "expired" in late.json()["detail"]
    credit = api.post("/api/credit/check", json={"customerId": CUSTOMER, "amount": "1.00"})
    assert credit.status_code == 200 and Decimal(credit.json()["pendingAmount"]) == 0
