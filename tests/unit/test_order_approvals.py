"""Orders held for approval, the pure parts: the policy per rule, which orders wait, the
transitions and their guards, the partial stock allocation, the row round trip, the status
event and the ERP payload of an order approved short of stock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from shared.adapters.erp.models import Location
from shared.adapters.stores.order_rows import order_entity, order_from_entity
from shared.config.policy import PolicyError, load_policy
from shared.domain.credit import (
    CreditFigures,
    CreditPolicy,
    CreditRefused,
    PendingCredit,
    hold_credit,
)
from shared.domain.orders import (
    EXPIRY_APPROVER,
    ApprovalAction,
    Decision,
    Disposition,
    InvalidTransition,
    LineAllocation,
    LineDemand,
    Order,
    OrderLine,
    OrderRule,
    OrderStatus,
    OrderViolation,
    allocate,
    approval_needed,
    approve,
    decide,
    expire_approval,
    hold_for_approval,
    reject_held,
)
from shared.services.orders.erp import LocationDirectory, sales_order_payload
from shared.services.orders.messages import status_event

D = Decimal
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
UNTIL = NOW + timedelta(hours=1)
SHORT = OrderViolation(OrderRule.INSUFFICIENT_STOCK, "short", "A", 0, {"requested": "5"})
PRICE = OrderViolation(OrderRule.PRICE_MISMATCH, "price", "A", 0)
HOLD = ApprovalAction.HOLD


def _pending() -> Order:
    line = OrderLine(
        0, "A", D(5), "PCS", D(1), D("10"), D(0), D("50"), None, (LineAllocation("MAIN", D(3)),)
    )
    return Order(
        order_id="ORD-01JD7Q0000000000000000000A",
        status=OrderStatus.PENDING,
        customer_no="C00001",
        channel="web",
        currency="USD",
        external_order_id="shop-1",
        created_at=NOW,
        updated_at=NOW,
        lines=(line,),
        total_amount=D("50"),
        credit_amount=D("50"),
    )


def _held() -> Order:
    return hold_for_approval(_pending(), (SHORT,), UNTIL, NOW)


# ---- policy ------------------------------------------------------------------------------


def test_the_shipped_policy_rejects_every_rule_and_holds_for_a_day() -> None:
    approvals = load_policy().orders.approvals
    assert approvals.hold_for == timedelta(hours=24)
    assert set(approvals.rules.values()) == {"reject"}
    assert len(approvals.rules) == 6
    limits = approvals.quantity_limits  # no limit: behaviour as before the rule existed
    assert limits.customers == {} and limits.items == {} and limits.default is None


def test_an_override_puts_one_rule_at_hold() -> None:
    approvals = load_policy(
        '{"orders": {"approvals": {"holdFor": "PT2H", "rules": {"insufficient-stock": "hold"}}}}'
    ).orders.approvals
    assert approvals.hold_for == timedelta(hours=2)
    assert approvals.rules["insufficient-stock"] == "hold"
    assert approvals.rules["price-mismatch"] == "reject"  # deep merge keeps the others


def test_quantity_limits_are_read_as_decimals_per_customer_and_item() -> None:
    approvals = load_policy(
        '{"orders": {"approvals": {"rules": {"quantity-over-threshold": "hold"}, '
        '"quantityLimits": {"customers": {"C00001": 100}, "items": {"IT-1": "12.5"}, '
        '"default": 500}}}}'
    ).orders.approvals
    assert approvals.rules["quantity-over-threshold"] == "hold"
    limits = approvals.quantity_limits
    assert limits.customers == {"C00001": D(100)} and limits.items == {"IT-1": D("12.5")}
    assert limits.default == D(500)


@pytest.mark.parametrize(
    ("override", "mentions"),
    [
        ('{"orders": {"approvals": {"rules": {"unknown-item": "hold"}}}}', "unknown-item"),
        ('{"orders": {"approvals": {"rules": {"price-mismatch": "maybe"}}}}', "price-mismatch"),
        ('{"orders": {"approvals": {"holdFor": "PT0S"}}}', "holdFor"),
        ('{"orders": {"approvals": {"holdFor": 3600}}}', "holdFor"),
        ('{"orders": {"approvals": {"quantityLimits": {"items": {"A": 0}}}}}', "items"),
        ('{"orders": {"approvals": {"quantityLimits": {"default": "-1"}}}}', "default"),
        ('{"orders": {"approvals": {"quantityLimits": {"customers": {"C1": "x"}}}}}', "C1"),
        ('{"orders": {"approvals": {"quantityLimits": {"skus": {"A": 5}}}}}', "skus"),
    ],
)
def test_a_bad_approvals_policy_fails_naming_the_field(override: str, mentions: str) -> None:
    with pytest.raises(PolicyError) as failed:
        load_policy(override)
    assert mentions in str(failed.value)


# ---- which orders wait -------------------------------------------------------------------


def test_an_order_waits_only_when_every_broken_rule_is_at_hold() -> None:
    assert approval_needed([SHORT], {"insufficient-stock": HOLD})
    assert approval_needed([SHORT, PRICE], {"insufficient-stock": HOLD, "price-mismatch": HOLD})
    assert not approval_needed([SHORT, PRICE], {"insufficient-stock": HOLD})
    assert not approval_needed([SHORT], {"insufficient-stock": ApprovalAction.REJECT})
    assert not approval_needed([SHORT], {})  # reject is the default
    assert not approval_needed([], {"insufficient-stock": HOLD})  # nothing to approve


def test_a_short_line_takes_what_there_is_only_when_held() -> None:
    demand = [LineDemand(0, "A", D(5), D(1))]
    stock = {"A": {"MAIN": D(3), "EAST": D(1)}}
    strict = allocate(demand, stock, lambda _: True)
    assert strict.allocations == {} and strict.shortages[0].available == D(4)
    partial = allocate(demand, stock, lambda _: True, partial=True)
    assert partial.allocations[0] == (LineAllocation("MAIN", D(3)), LineAllocation("EAST", D(1)))
    assert partial.shortages[0].requested == D(5)  # still reported: the person decides


def test_credit_is_held_beyond_the_limit_only_for_an_order_waiting_for_approval() -> None:
    figures = CreditFigures("C1", D(100), D(90), D(0), D(0), "", NOW)
    pending = PendingCredit("C1")
    with pytest.raises(CreditRefused):
        hold_credit(pending, "O1", D(50), figures, CreditPolicy())
    held = hold_credit(pending, "O1", D(50), figures, CreditPolicy(), refused_allowed=True)
    assert held.pending.holds == {"O1": D(50)}


# ---- transitions -------------------------------------------------------------------------


def test_a_held_order_is_approved_once_and_records_who_when_why() -> None:
    approved = approve(_held(), "Fran", "ok to backorder", NOW + timedelta(minutes=5), "c-1")
    assert approved.status is OrderStatus.ACCEPTED and approved.attempt == 1
    assert [(d.decision, d.approver, d.reason, d.at) for d in approved.decisions] == [
        (Decision.APPROVED, "Fran", "ok to backorder", NOW + timedelta(minutes=5))
    ]
    assert [str(h.event) for h in approved.history] == ["held-for-approval", "approved"]
    with pytest.raises(InvalidTransition):
        approve(approved, "Fran", "again", NOW)
    with pytest.raises(InvalidTransition):
        reject_held(approved, "Pat", "no", NOW)


def test_an_approval_at_or_after_the_deadline_is_refused_and_the_expiry_only_then() -> None:
    with pytest.raises(InvalidTransition, match="expired"):
        approve(_held(), "Fran", "late", UNTIL)
    with pytest.raises(InvalidTransition, match="not expired"):
        expire_approval(_held(), UNTIL - timedelta(microseconds=1))
    expired = expire_approval(_held(), UNTIL)
    assert expired.status is OrderStatus.REJECTED and not expired.holds_released
    assert expired.decisions[0].approver == EXPIRY_APPROVER
    assert "approval expired" in expired.decisions[0].reason


def test_a_rejected_held_order_still_has_its_holds_to_release() -> None:
    rejected = reject_held(_held(), "Pat", "no", NOW)
    assert rejected.status is OrderStatus.REJECTED and not rejected.holds_released
    with pytest.raises(InvalidTransition):
        expire_approval(rejected, UNTIL)


def test_only_a_pending_order_can_be_held_and_booking_skips_a_held_one() -> None:
    with pytest.raises(InvalidTransition):
        hold_for_approval(_held(), (SHORT,), UNTIL, NOW)
    assert decide(_held(), 0, 1, NOW).disposition is Disposition.SKIP


# ---- shapes ------------------------------------------------------------------------------


def test_a_held_and_decided_order_round_trips_its_row() -> None:
    for order in (_held(), approve(_held(), "Fran", "ok", NOW), expire_approval(_held(), UNTIL)):
        assert order_from_entity(order_entity(order)) == order


def test_status_events_carry_the_wait_and_the_decision() -> None:
    waiting = status_event(_held(), NOW)
    assert waiting["status"] == "pending-approval"
    assert waiting["approvalUntil"] == UNTIL.isoformat()
    assert waiting["rules"] == ["insufficient-stock"]
    rejected = status_event(reject_held(_held(), "Pat", "not now", NOW), NOW)
    assert rejected["status"] == "rejected" and rejected["reason"] == "not now"
    assert rejected["decision"]["approver"] == "Pat"


class _Erp:
    async def iter_locations(self) -> Any:
        yield Location(id=MAIN_ID, code="MAIN")


MAIN_ID = uuid4()


async def test_an_order_approved_short_of_stock_is_booked_whole() -> None:
    payload = await sales_order_payload(_pending(), _Erp(), LocationDirectory())  # type: ignore[arg-type]
    assert [(line.quantity, line.location_id) for line in payload.sales_order_lines] == [
        (D(5), MAIN_ID)
    ]
    nothing_there = replace(_pending(), lines=(replace(_pending().lines[0], allocations=()),))
    payload = await sales_order_payload(nothing_there, _Erp(), LocationDirectory())  # type: ignore[arg-type]
    assert [(line.quantity, line.location_id) for line in payload.sales_order_lines] == [
        (D(5), None)
    ]
