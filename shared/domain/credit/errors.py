"""Named errors of the credit domain."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .assessment import CreditAssessment


class CreditError(Exception):
    """Base class of every credit domain error, so callers can catch the family."""


class InvalidCreditInput(CreditError, ValueError):
    """An amount, time or identifier handed to the domain breaks an invariant."""


class CreditRefused(CreditError):
    """Holding credit for an order was refused; ``assessment`` says why (every reason)."""

    def __init__(self, assessment: CreditAssessment) -> None:
        self.assessment = assessment
        reasons = ", ".join(str(reason) for reason in assessment.reasons)
        super().__init__(f"credit refused for {assessment.customer_no}: {reasons}")


class HoldConflict(CreditError):
    """The order already holds a different amount; a changed amount is a different request."""

    def __init__(self, order_id: str, held: Decimal, requested: Decimal) -> None:
        self.order_id = order_id
        self.held = held
        self.requested = requested
        super().__init__(f"order {order_id} already holds {held}, not {requested}")
