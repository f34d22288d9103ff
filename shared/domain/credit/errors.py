"""Named errors of the credit domain (``CreditRefused`` is beside the assessment it carries)."""

from __future__ import annotations

from decimal import Decimal


class CreditError(Exception):
    """Base class of every credit domain error, so callers can catch the family."""


class InvalidCreditInput(CreditError, ValueError):
    """An amount, time or identifier handed to the domain breaks an invariant."""


class HoldConflict(CreditError):
    """The order already holds a different amount; a changed amount is a different request."""

    def __init__(self, order_id: str, held: Decimal, requested: Decimal) -> None:
        self.order_id = order_id
        self.held = held
        self.requested = requested
        super().__init__(f"order {order_id} already holds {held}, not {requested}")
