"""Whether a customer may take on an amount of new credit, and every reason why not."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .errors import CreditError
from .figures import ZERO, CreditFigures, CreditPolicy, money


class CreditReason(StrEnum):
    """Why credit is refused (stable values: storefronts match on them)."""

    BLOCKED = "blocked"
    OVER_LIMIT = "over-limit"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class CreditAssessment:
    """The figures behind a credit decision, in LCY.

    `available` is limit - balance - open orders - pending (negative when the customer is
    already over the limit) and None when the customer has no limit.
    """

    customer_no: str
    amount: Decimal
    credit_limit: Decimal
    balance: Decimal
    open_orders: Decimal
    pending: Decimal
    overdue: Decimal
    blocked: str
    available: Decimal | None
    reasons: tuple[CreditReason, ...]

    @property
    def approved(self) -> bool:
        return not self.reasons

    @property
    def unlimited(self) -> bool:
        return self.available is None


def assess_credit(
    figures: CreditFigures, pending: Decimal, amount: Decimal, policy: CreditPolicy
) -> CreditAssessment:
    """Assess `amount` (LCY) on top of the ERP figures and this product's `pending` holds.

    Every applicable reason is listed, not only the first, so a storefront can explain all
    of them at once.
    """
    if money(amount, "amount") < 0:
        raise ValueError("amount must not be negative")
    if money(pending, "pending") < 0:
        raise ValueError("pending must not be negative")
    reasons: list[CreditReason] = []
    if figures.blocks_orders:
        reasons.append(CreditReason.BLOCKED)
    available: Decimal | None = None
    if not figures.unlimited:
        available = figures.credit_limit - figures.balance - figures.open_orders - pending
        if amount > available:
            reasons.append(CreditReason.OVER_LIMIT)
    if figures.overdue > policy.overdue_tolerance:
        reasons.append(CreditReason.OVERDUE)
    return CreditAssessment(
        customer_no=figures.customer_no,
        amount=amount,
        credit_limit=figures.credit_limit,
        balance=figures.balance,
        open_orders=figures.open_orders,
        pending=pending,
        overdue=max(figures.overdue, ZERO),
        blocked=figures.blocked,
        available=available,
        reasons=tuple(reasons),
    )


class CreditRefused(CreditError):
    """Holding credit for an order was refused; ``assessment`` says why (every reason)."""

    def __init__(self, assessment: CreditAssessment) -> None:
        self.assessment = assessment
        reasons = ", ".join(str(reason) for reason in assessment.reasons)
        super().__init__(f"credit refused for {assessment.customer_no}: {reasons}")
