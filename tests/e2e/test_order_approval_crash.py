"""A process killed between an approval decision and what follows it (issue 19), end to end:
a separate process (``tests.support.crash_after_decision``) approves or rejects a held order
through the real stores on Azurite and is SIGKILLed the moment the decision is written.
Approved: the booking message was never sent; the next ``orders_sweep`` sends it from the
outbox (or the next approve call sends it at once) and the order is booked once in the ERP.
Rejected, killed after the decision's write: the holds were never given back; killed after
the order's second write: the holds are back and marked so, but ``rejected`` was never
published and the order is still listed. Either way the next sweep (or the next reject call)
gives every hold back once, publishes ``rejected`` once and takes the order off the list, well
before the approval would have expired. The expiry killed the same way is in
``tests/e2e/test_order_approval_expiry.py``, whose stack holds orders for 2 s only.

Its own function app, Service Bus stand-in and ERP simulator on free ports, sharing only the
session's Azurite under its own table prefix. The ``orders_sweep`` schedule is paused: only
the tests sweep, and each waits for its run to end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from devtools.stack import LocalStack
from shared.adapters.stores.approvals import is_listed
from shared.adapters.tables import TableStore
from tests.e2e.conftest import PrivateStack
from tests.support.approval_rules import RUNNER_ENV, Case, Probe, policy
from tests.support.crash_after_decision import decide_in_a_dying_process
from tests.support.order_events import Events
from tests.waiting import eventually

pytestmark = pytest.mark.slow

POLICY = {
    **policy("hold"),  # holdFor PT1H: no expiry gets in the way
    # Only the tests sweep (on demand): a scheduled run could finish what a dead process left
    # before the test looks at it, or before the repeated call the test means to finish it.
    "housekeeping": {"orderSweep": {"interval": "PT1M", "paused": True}},
}
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


def _decide_and_die(
    stack: LocalStack, azurite_connection: str, verb: str, order_id: str, writes: int = 1
) -> None:
    decide_in_a_dying_process(stack, azurite_connection, POLICY, ENV, verb, order_id, writes)


def _held(probe: Probe, case: Case) -> str:
    answer = probe.submit(case)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "pending-approval"
    return str(answer.json()["orderId"])


def _listed(azurite_connection: str, order_id: str) -> bool:
    """Whether the order still has its row on the approvals list (``OrderApprovals``), read
    from the store: the list API shows held orders only, but a decided order keeps its row
    until everything after its decision is done, and the sweep looks at every row."""

    async def read() -> bool:
        tables = TableStore.from_connection_string(azurite_connection, prefix=ENV["TABLE_PREFIX"])
        try:
            return await is_listed(tables, order_id)
        finally:
            await tables.close()

    return asyncio.run(read())


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
            probe.sweep()  # the timer, run on demand; the outbox entry must be 10 s old first
            return False

        eventually(booked, 90)
    assert len(probe.erp_orders(order_id)) == 1
    again = probe.decide(order_id, "approve")
    assert again.status_code == 200 and again.json()["changed"] is False
    probe.sweep()
    assert len(probe.erp_orders(order_id)) == 1
    assert _decisions(probe, order_id) == [("approved", "Kim Crash")]


@pytest.mark.parametrize(
    "writes", [1, 2], ids=["killed-after-the-decision", "killed-after-the-holds-came-back"]
)
@pytest.mark.parametrize("finisher", ["sweep", "call"])
def test_a_rejection_killed_after_a_write_is_finished_once(
    probe: Probe, stack: LocalStack, azurite_connection: str, finisher: str, writes: int
) -> None:
    """The process dies after the rejection's write (1: nothing given back) or after the
    order's second write (2: the holds given back and marked so, the status not published,
    the order still listed). The next sweep or reject call leaves the holds given back once,
    ``rejected`` published once, the order counted once and off the list; nothing is booked,
    and a further sweep changes nothing."""
    case = probe.case(RULE)
    available_before, _ = probe.stock(case.sku)
    given_back = (available_before, Decimal(0))  # nothing of this order held
    # The approvals above booked orders of this customer, which the product counts as pending
    # for the ERP's replica lag (30 s) after booking: wait until they are the ERP's alone, so
    # that what follows moves the pending credit by this order only.
    eventually(lambda: probe.pending_credit(case.customer) == 0, 60)
    credit_before = probe.pending_credit(case.customer)
    counted_before = probe.rejected_at_approval()
    order_id = _held(probe, case)
    total = Decimal(probe.api.get(f"/api/orders/{order_id}").json()["totalAmount"])
    events = Events(probe.bus, order_id)
    events.until("pending-approval")
    _decide_and_die(stack, azurite_connection, "reject", order_id, writes)
    assert probe.status(order_id) == "rejected"
    if writes == 1:  # the dead process gave nothing back
        assert probe.stock(case.sku)[1] == case.lines[0]["quantity"]
        assert probe.pending_credit(case.customer) == credit_before + total
    else:  # it gave the holds back, and died before telling anyone
        assert probe.stock(case.sku) == given_back
        assert probe.pending_credit(case.customer) == credit_before
    assert [e["status"] for e in events.drain()] == ["pending-approval"]
    assert _listed(azurite_connection, order_id)

    if finisher == "call":
        again = probe.decide(order_id, "reject")
        assert again.status_code == 200 and again.json()["changed"] is False
    else:
        probe.sweep()
    eventually(lambda: probe.stock(case.sku) == given_back, 30)
    assert probe.pending_credit(case.customer) == credit_before
    assert events.until("rejected", 30)["orderId"] == order_id
    eventually(lambda: probe.rejected_at_approval() == counted_before + 1, 30)

    probe.sweep()  # again: nothing left to give back, nothing to say twice
    assert probe.stock(case.sku) == given_back
    assert probe.pending_credit(case.customer) == credit_before
    assert [e["status"] for e in events.drain()] == ["pending-approval", "rejected"]
    assert probe.rejected_at_approval() == counted_before + 1
    assert _decisions(probe, order_id) == [("rejected", "Kim Crash")]
    assert not _listed(azurite_connection, order_id)
    waiting = probe.api.get("/api/ops/approvals", headers=probe.admin).json()["items"]
    assert order_id not in [item["orderId"] for item in waiting]
    assert probe.erp_orders(order_id) == []
