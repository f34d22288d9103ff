"""Named errors of the stock domain.

`InvalidInventoryEvent` is permanent: the Service Bus handler dead-letters the message at once
with `dead_letter_reason` / `dead_letter_description`. `InsufficientStock` and
`ReservationConflict` are business refusals the order intake turns into 422 violations.
The rest signal a programming or configuration error.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

# Service Bus caps the dead-letter description; keep well below it so the broker never rejects
# the dead-letter call itself.
_MAX_DESCRIPTION = 1024


class StockError(Exception):
    """Base class of every stock domain error, so callers can catch the family."""


class InvalidEventReason(StrEnum):
    """Why an inventory message cannot be processed (stable: operators filter on it)."""

    UNPARSEABLE = "unparseable"
    UNKNOWN_KIND = "unknown-kind"
    NEGATIVE_COUNT = "negative-count"
    NON_POSITIVE_RESERVATION = "non-positive-reservation"
    INVALID_FIELD = "invalid-field"


class InvalidInventoryEvent(StockError, ValueError):
    """A message on `inventory-events` that no retry can fix; dead-letter it with this reason."""

    def __init__(self, reason: InvalidEventReason, description: str) -> None:
        self.reason = reason
        self.description = description[:_MAX_DESCRIPTION]
        super().__init__(f"{reason}: {self.description}")

    @property
    def dead_letter_reason(self) -> str:
        """The short, filterable value for the dead-letter `reason`."""
        return str(self.reason)

    @property
    def dead_letter_description(self) -> str:
        """The human-readable detail for the dead-letter `error_description`."""
        return self.description


class PositionMismatch(StockError, ValueError):
    """An event or snapshot for another (sku, location) was handed to a position's fold."""


class InvalidStockInput(StockError, ValueError):
    """A quantity, identifier or setting handed to the domain breaks an invariant."""


class InsufficientStock(StockError):
    """A reservation asks for more than is available to sell; nothing was reserved."""

    def __init__(self, sku: str, location: str, requested: Decimal, available: Decimal) -> None:
        self.sku = sku
        self.location = location
        self.requested = requested
        self.available = available
        super().__init__(
            f"{sku} at {location}: requested {requested}, available to sell {available}"
        )


class ReservationConflict(StockError):
    """The order already holds a reservation of a different quantity here.

    Reserving is idempotent per order id; a changed amount is a different request, so it is
    refused rather than silently replacing the first one (release first to change it).
    """

    def __init__(self, order_id: str, held: Decimal, requested: Decimal) -> None:
        self.order_id = order_id
        self.held = held
        self.requested = requested
        super().__init__(f"order {order_id} already reserves {held}, not {requested}")


class UnknownChannel(StockError, LookupError):
    """Availability was asked for a channel the allocation configuration does not name."""


class StaleCorrection(StockError):
    """A reconciliation correction no longer fits the position (newer events arrived since)."""
