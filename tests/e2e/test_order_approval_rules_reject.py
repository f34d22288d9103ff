"""Every approvable rule at ``reject`` (the default), end to end through the runner: the order
is refused with 422 naming that rule, nothing is held (stock available as before, no pending
credit) and nothing reaches the ERP, as before approvals existed.

Its own function app, Service Bus stand-in and ERP simulator on free ports, sharing only the
session's Azurite under its own table prefix. The cases are in ``tests/support/approval_rules.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.stack import LocalStack
from tests.e2e.conftest import PrivateStack
from tests.support.approval_rules import RULES, RUNNER_ENV, Probe, policy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
    with private_stack("arr", policy=policy("reject"), env=RUNNER_ENV) as started:
        yield started


@pytest.mark.parametrize("rule", RULES)
def test_a_broken_rule_at_reject_is_refused_and_nothing_is_held(probe: Probe, rule: str) -> None:
    case = probe.case(rule)
    available_before, _ = probe.stock(case.sku)
    answer = probe.submit(case)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert [v["rule"] for v in problem["violations"]] == [rule]
    assert probe.stock(case.sku) == (available_before, 0)
    assert probe.pending_credit(case.customer) == 0
    assert probe.status(problem["orderId"]) == "rejected"
    assert probe.erp_orders(problem["orderId"]) == []
