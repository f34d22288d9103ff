"""What happened to an order, in the terms the business impact report counts.

Intake rejections are grouped into a few categories by the kind of manual work they would
have caused had the order reached the ERP: a price to correct, stock that was not there, a
credit hold to release, a customer or item master-data problem, or something else.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from .violations import OrderRule, OrderViolation


class OutcomeKind(StrEnum):
    REJECTED_AT_INTAKE = "rejected-at-intake"
    BOOKED = "booked"
    FAILED_AT_BOOKING = "failed-at-booking"
    # Held for approval and rejected by a person or by the expiry (its holds given back).
    REJECTED_AT_APPROVAL = "rejected-at-approval"


class ProblemCategory(StrEnum):
    PRICE_MISMATCH = "price-mismatch"
    STOCK_CONFLICT = "stock-conflict"
    CREDIT_HOLD = "credit-hold"
    CUSTOMER = "customer-blocked-or-unknown"
    ITEM = "item-blocked-or-unknown"
    OTHER = "other"


_CATEGORY_OF: dict[OrderRule, ProblemCategory] = {
    OrderRule.PRICE_MISMATCH: ProblemCategory.PRICE_MISMATCH,
    # No price at all would reach the ERP as a zero-priced line: a price correction too.
    OrderRule.NO_PRICE: ProblemCategory.PRICE_MISMATCH,
    OrderRule.INSUFFICIENT_STOCK: ProblemCategory.STOCK_CONFLICT,
    OrderRule.CREDIT_OVER_LIMIT: ProblemCategory.CREDIT_HOLD,
    OrderRule.CREDIT_OVERDUE: ProblemCategory.CREDIT_HOLD,
    OrderRule.UNKNOWN_CUSTOMER: ProblemCategory.CUSTOMER,
    OrderRule.CUSTOMER_BLOCKED: ProblemCategory.CUSTOMER,
    OrderRule.UNKNOWN_ITEM: ProblemCategory.ITEM,
    OrderRule.ITEM_BLOCKED: ProblemCategory.ITEM,
    OrderRule.UNIT_OF_MEASURE_NOT_SOLD: ProblemCategory.ITEM,
}


def category_of(rule: OrderRule) -> ProblemCategory:
    return _CATEGORY_OF.get(rule, ProblemCategory.OTHER)


def categories_of(violations: Iterable[OrderViolation]) -> tuple[ProblemCategory, ...]:
    """The distinct categories of an order's violations, in declaration order."""
    found = {category_of(violation.rule) for violation in violations}
    return tuple(category for category in ProblemCategory if category in found)


def needs_manual_correction(categories: Iterable[ProblemCategory]) -> bool:
    """Anything but a stock conflict would have been corrected by hand in the ERP."""
    return any(category is not ProblemCategory.STOCK_CONFLICT for category in categories)


def is_stock_conflict(categories: Iterable[ProblemCategory]) -> bool:
    """A stock conflict that reached the ERP is an oversold order."""
    return ProblemCategory.STOCK_CONFLICT in set(categories)
