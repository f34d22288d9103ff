"""A process killed between an approval decision and what follows it (issue 19), end to end:
a separate process (``tests.support.crash_after_decision``) approves or rejects a held order
through the real stores on Azurite and is SIGKILLed the moment the decision is written.
Approved: the booking message was never sent; the next ``orders_sweep`` sends it from the
outbox (or the next approve call sends it at once) and the order is booked once in the ERP.
Rejected: the holds were never given back; the next sweep (or the next reject call) gives them
back once, well before the approval would have expired. The expiry killed the same way is in
``tests/e2e/test_order_approval_expiry.py``, whose stack holds orders for 2 s only.

Its own function app, Service Bus stand-in and ERP simulator on free ports, sharing only the
session's Azurite under its own table prefix.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from devtools.stack import LocalStack
from tests.e2e.conftest import PrivateStack
from tests.support.approval_rules import RUNNER_ENV, Case, Probe, policy
from tests.support.crash_after_decision import decide_in_a_dying_process
from tests.waiting import eventually

pytestmark = pytest.mark.slow

POLICY = policy("hold")  # holdFor PT1H: no expiry gets in the way
RULE = "quantity-over-threshold"
ENV = {
    **RUNNER_ENV,
    "TABLE_PREFIX": "apc" + uuid.uuid4().hex[:8],
    # The sweeper takes outbox entries older than this (the least the settings allow).
    "ORDER_INTAKE_TIMEOUT_SECONDS": "10",
}


@pytest.fixture(scope="module")
def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
    with private_stack("apc", policy=POLICY, env=ENV) as started:
        yield started


def _decide_and_die(stack: LocalStack, azurite_connection: str, verb: str, order_id: str) -> None:
    decide_in_a_dying_process(stack, azurite_connection, POLICY, ENV, verb, order_id)


def _held(probe: Probe, case: Case) -> str:
    answer = probe.submit(case)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "pending-approval"
    return str(answer.json()["orderId"])


def _sweep(probe: Probe) -> None:
    answer = probe.api.post("/admin/functions/orders_sweep", json={}, headers=probe.admin)
    assert answer.status_code == 202, answer.text


def _decisions(probe: Probe, order_id: str) -> list[tuple[str, str]]:
    view = probe.api.get(f"/api/orders/{order_id}").json()
    return [(d["decision"], d["approver"]) for d in view["decisions"]]


@pytest.mark.parametrize("finisher", ["sweep", "call"])
def test_an_approval_killed_before_its_booking_message_is_booked_once(
    probe: Probe, stack: LocalStack, azurite_connection: str, finisher: str
) -> None:
    case = probe.case(RULE)
    order_id = _held(probe, case)
    _decide_and_die(stack, azurite_connection, "approve", order_id)
    assert probe.status(order_id) == "accepted"  # decided, and nothing sent for booking
    assert _decisions(probe, order_id) == [("approved", "Kim Crash")]
    assert probe.erp_orders(order_id) == []

    if finisher == "call":
        # Approving again sends the booking message the dead process never sent.
        repeated = probe.decide(order_id, "approve")
        assert repeated.status_code == 200 and repeated.json()["changed"] is False
        eventually(lambda: probe.status(order_id) == "booked", 30)
    else:

        def booked() -> bool:
            if probe.status(order_id) == "booked":
                return True
            _sweep(probe)  # the timer, run on demand; the outbox entry must be 10 s old first
            return False

        eventually(booked, 90)
    assert len(probe.erp_orders(order_id)) == 1
    again = probe.decide(order_id, "approve")
    assert again.status_code == 200 and again.json()["changed"] is False
    _sweep(probe)
    assert len(probe.erp_orders(order_id)) == 1
    assert _decisions(probe, order_id) == [("approved", "Kim Crash")]


@pytest.mark.parametrize("finisher", ["sweep", "call"])
def test_a_rejection_killed_before_its_holds_are_released_is_finished_once(
    probe: Probe, stack: LocalStack, azurite_connection: str, finisher: str
) -> None:
    case = probe.case(RULE)
    available_before, _ = probe.stock(case.sku)
    credit_before = probe.pending_credit(case.customer)
    order_id = _held(probe, case)
    total = Decimal(probe.api.get(f"/api/orders/{order_id}").json()["totalAmount"])
    _decide_and_die(stack, azurite_connection, "reject", order_id)
    assert probe.status(order_id) == "rejected"
    # The dead process gave nothing back.
    assert probe.stock(case.sku)[1] == case.lines[0]["quantity"]
    assert probe.pending_credit(case.customer) == credit_before + total

    if finisher == "call":
        again = probe.decide(order_id, "reject")
        assert again.status_code == 200 and again.json()["changed"] is False
    else:
        _sweep(probe)
    eventually(lambda: probe.stock(case.sku) == (available_before, 0), 30)
    assert probe.pending_credit(case.customer) == credit_before
    assert _decisions(probe, order_id) == [("rejected", "Kim Crash")]
    waiting = probe.api.get("/api/ops/approvals", headers=probe.admin).json()["items"]
    assert order_id not in [item["orderId"] for item in waiting]
    assert probe.erp_orders(order_id) == []
