"""An approval nobody gives, end to end through the runner: with the sync policy holding
short stock for 2 seconds only, the ``orders_sweep`` timer (run on demand, as an operator
would; its schedule is paused so that only these runs sweep) rejects the held order with the
reason and gives back its stock and credit holds. And the same expiry in a separate process
(``tests.support.crash_after_decision``) SIGKILLed the moment the expiry decision is written:
the next sweep gives every hold back once and publishes the rejection once.

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
from tests.support.approval_rules import Case, Probe
from tests.support.crash_after_decision import decide_in_a_dying_process
from tests.support.order_events import Events
from tests.support.stock_setup import count_stock, sellable_item
from tests.waiting import eventually

pytestmark = pytest.mark.slow

CUSTOMER = "C00001"
SKU = "IT-000001"
POLICY = {
    "orders": {"approvals": {"holdFor": "PT2S", "rules": {"insufficient-stock": "hold"}}},
    "housekeeping": {"orderSweep": {"interval": "PT1M", "paused": True}},
}
# Known to the crashing process too (the stack's settings do not carry it).
ENV = {"TABLE_PREFIX": "apx" + uuid.uuid4().hex[:8]}


@pytest.fixture(scope="module")
def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
    with private_stack("apx", policy=POLICY, env=ENV) as started:
        yield started


def _main(api: httpx.Client, sku: str = SKU) -> dict[str, Any] | None:
    response = api.get(f"/api/availability?skus={sku}&channel=web")
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


@pytest.mark.parametrize(
    "writes", [1, 2], ids=["killed-after-the-expiry", "killed-after-the-holds-came-back"]
)
def test_an_expiry_killed_after_a_write_is_finished_once_by_the_next_sweep(
    probe: Probe,
    stack: LocalStack,
    azurite_connection: str,
    api: httpx.Client,
    admin: dict[str, str],
    bus: ServiceBusClient,
    writes: int,
) -> None:
    """The process dies after the expiry decision's write (1) or after the second write, the
    holds marked given back (2). Either way the next sweep leaves the order given back once,
    ``rejected`` published once and counted once in the impact report."""
    sku = sellable_item(api, CUSTOMER, skip=frozenset({SKU}))
    count_stock(bus, sku, "MAIN", 2)
    eventually(lambda: (line := _main(api, sku)) is not None and Decimal(line["onHand"]) == 2)
    available_before, held_before = probe.stock(sku)
    credit_before = probe.pending_credit(CUSTOMER)
    counted_before = probe.rejected_at_approval()
    short = Case(
        "insufficient-stock", CUSTOMER, sku, [{"sku": sku, "quantity": int(available_before) + 1}]
    )
    answer = probe.submit(short)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "pending-approval"
    order_id = str(answer.json()["orderId"])
    until = datetime.fromisoformat(answer.json()["approvalUntil"])
    total = Decimal(api.get(f"/api/orders/{order_id}").json()["totalAmount"])
    holding = (Decimal(0), held_before + available_before)  # all there is, held
    assert probe.stock(sku) == holding
    assert probe.pending_credit(CUSTOMER) == credit_before + total
    events = Events(bus, order_id)
    events.until("pending-approval")

    eventually(lambda: datetime.now(UTC) > until, 10)
    decide_in_a_dying_process(stack, azurite_connection, POLICY, ENV, "expire", order_id, writes)
    view = api.get(f"/api/orders/{order_id}").json()
    assert view["status"] == "rejected"
    assert [(d["decision"], d["approver"]) for d in view["decisions"]] == [
        ("expired", "system:approval-expiry")
    ]
    if writes == 1:  # the dead process gave nothing back
        assert probe.stock(sku) == holding
        assert probe.pending_credit(CUSTOMER) == credit_before + total
    else:  # it gave the holds back, and died before telling anyone
        assert probe.stock(sku) == (available_before, held_before)
        assert probe.pending_credit(CUSTOMER) == credit_before
    assert [e["status"] for e in events.drain()] == ["pending-approval"]

    probe.sweep()
    eventually(lambda: probe.stock(sku) == (available_before, held_before), 30)
    assert probe.pending_credit(CUSTOMER) == credit_before
    rejected = events.until("rejected", 30)
    assert rejected["orderId"] == order_id
    eventually(lambda: probe.rejected_at_approval() == counted_before + 1, 30)

    probe.sweep()  # again: nothing left to give back, nothing to say twice
    assert probe.stock(sku) == (available_before, held_before)
    assert probe.pending_credit(CUSTOMER) == credit_before
    assert [e["status"] for e in events.drain()] == ["pending-approval", "rejected"]
    view = api.get(f"/api/orders/{order_id}").json()
    assert [d["decision"] for d in view["decisions"]] == ["expired"]
    assert probe.rejected_at_approval() == counted_before + 1
    waiting = api.get("/api/ops/approvals", headers=admin).json()["items"]
    assert order_id not in [item["orderId"] for item in waiting]
    assert probe.erp_orders(order_id) == []
