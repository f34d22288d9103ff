"""What to do with a message on the ``orders`` queue, given the order as stored.

Decided from the stored order alone, so every delivery of every copy of a message reaches
the same conclusion: duplicates and stale retries become cheap no-ops, and only the current
attempt of an accepted order whose claim is free may talk to the ERP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .model import Order, OrderStatus


class Disposition(StrEnum):
    BOOK = "book"  # claim the order and book it in the ERP
    DEFER = "defer"  # another attempt holds the claim: look again when it ends
    SETTLE = "settle"  # booked, but the post-booking work is unfinished
    SKIP = "skip"  # nothing to do (duplicate, stale, rejected)
    DEAD_LETTER = "dead-letter"  # this message is the one that failed: keep it dead-lettered


@dataclass(frozen=True, slots=True)
class BookingDecision:
    disposition: Disposition
    reason: str
    defer_until: datetime | None = None


def decide(order: Order, generation: int, attempt: int, now: datetime) -> BookingDecision:
    """The disposition of message (generation, attempt) for `order` at `now`."""
    if order.status is OrderStatus.BOOKED:
        if order.settled:
            return BookingDecision(Disposition.SKIP, "already booked")
        return BookingDecision(Disposition.SETTLE, "booked; post-booking work unfinished")
    if order.status is OrderStatus.REJECTED:
        return BookingDecision(Disposition.SKIP, "order was rejected")
    if order.status is OrderStatus.PENDING_APPROVAL:
        # Approval sends the first message (attempt 1) once the order is accepted.
        return BookingDecision(Disposition.SKIP, "order awaits approval")
    if order.status is OrderStatus.PENDING:
        # Messages are sent only after acceptance; the outbox sends one once it is accepted.
        return BookingDecision(Disposition.SKIP, "order not accepted yet")
    current = (order.generation, order.attempt)
    if (generation, attempt) < current:
        return BookingDecision(Disposition.SKIP, f"stale message {generation}.{attempt}")
    if order.status is OrderStatus.FAILED:
        if (generation, attempt) == current:
            return BookingDecision(Disposition.DEAD_LETTER, order.failure_reason or "failed")
        return BookingDecision(Disposition.SKIP, "order failed; message is not the failing one")
    if order.claim is not None and order.claim_active(now):
        return BookingDecision(
            Disposition.DEFER, "another attempt is booking", defer_until=order.claim.until
        )
    return BookingDecision(Disposition.BOOK, "current attempt")
