"""Every approvable rule at ``hold``, end to end through the runner (issue 19): the order waits
(202 ``pending-approval``, its stock and credit held); rejected, every hold comes back (stock
available again, no pending credit) and nothing reaches the ERP; approved, it is booked once
(one ERP sales order with the order's id as externalDocumentNumber).

Its own function app, Service Bus stand-in and ERP simulator on free ports, sharing only the
session's Azurite under its own table prefix. The cases are in ``tests/support/approval_rules.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from devtools.stack import LocalStack
from tests.e2e.conftest import PrivateStack
from tests.support.approval_rules import RULES, RUNNER_ENV, Probe, policy
from tests.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
    with private_stack("arh", policy=policy("hold"), env=RUNNER_ENV) as started:
        yield started


@pytest.mark.parametrize("rule", RULES)
def test_a_held_order_is_rejected_with_every_hold_back_or_approved_and_booked_once(
    probe: Probe, rule: str
) -> None:
    case = probe.case(rule)
    available_before, held_before = probe.stock(case.sku)
    credit_before = probe.pending_credit(case.customer)
    assert held_before == 0

    # Held, then rejected: every hold back, nothing in the ERP.
    first = probe.submit(case)
    assert first.status_code == 202, first.text
    waiting = first.json()
    order_id = waiting["orderId"]
    assert waiting["status"] == "pending-approval"
    assert [v["rule"] for v in waiting["violations"]] == [rule]
    _, held = probe.stock(case.sku)
    assert held > 0
    assert probe.pending_credit(case.customer) == credit_before + Decimal(waiting["totalAmount"])
    rejected = probe.decide(order_id, "reject")
    assert rejected.status_code == 202, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert probe.stock(case.sku) == (available_before, 0)
    assert probe.pending_credit(case.customer) == credit_before
    assert probe.status(order_id) == "rejected" and probe.erp_orders(order_id) == []

    # Held again, then approved: booked once.
    second = probe.submit(case)
    assert second.status_code == 202, second.text
    order_id = second.json()["orderId"]
    assert second.json()["status"] == "pending-approval"
    if rule == "customer-blocked":
        refused = probe.decide(order_id, "approve")  # the ERP still blocks the customer
        assert refused.status_code == 409 and "blocked" in refused.json()["detail"]
        case.unbreak()
    approved = probe.decide(order_id, "approve")
    assert approved.status_code == 202, approved.text
    assert approved.json()["status"] == "accepted"
    eventually(lambda: probe.status(order_id) == "booked", 60)
    assert len(probe.erp_orders(order_id)) == 1
    again = probe.decide(order_id, "approve")
    assert again.status_code == 200 and again.json()["changed"] is False
    assert len(probe.erp_orders(order_id)) == 1
