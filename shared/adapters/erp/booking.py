"""Booking a sales order at most once, even when the create's answer is lost.

The order's ``externalDocumentNumber`` (this product's order id) is the idempotency key on
the ERP side: look before creating, never resend a create blindly, and after an ambiguous
failure look again. Two concurrent bookings of one order are excluded by the product's own
claim in Table storage, not here: check-then-create alone races.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.adapters.erp.errors import (
    ErpAmbiguousResult,
    ErpThrottled,
    ErpTransientError,
    ErpUnavailable,
)
from shared.adapters.erp.models import SalesOrder, SalesOrderCreate


class BookingOutcome(StrEnum):
    CREATED = "created"
    # The order was already in BC before this call (an earlier attempt created it).
    ALREADY_EXISTED = "already_existed"
    # This call's create had no clear answer, and the order turned up on a later lookup.
    FOUND_AFTER_AMBIGUOUS_CREATE = "found_after_ambiguous_create"


@dataclass(frozen=True)
class BookingResult:
    order: SalesOrder
    outcome: BookingOutcome

    @property
    def created(self) -> bool:
        """True only when this call's create was confirmed by the ERP's own answer."""
        return self.outcome is BookingOutcome.CREATED


FindOrder = Callable[[str], Awaitable[SalesOrder | None]]
CreateOrder = Callable[[SalesOrderCreate], Awaitable[SalesOrder]]
Sleep = Callable[[float], Awaitable[None]]
Now = Callable[[], datetime]


@dataclass
class CreateAttempt:
    """Filled in when the create is sent, so a caller that gives up on the whole booking
    (its own timeout) still knows whether, and when, a create may be on its way."""

    sent_at: datetime | None = None


async def book_sales_order_once(
    payload: SalesOrderCreate,
    *,
    find: FindOrder,
    create: CreateOrder,
    sleep: Sleep,
    lookup_attempts: int,
    lookup_delay_seconds: float,
    now: Now,
    answer_limit: timedelta,
    attempt: CreateAttempt | None = None,
    look_first: bool = True,
) -> BookingResult:
    """Return the order for ``payload.external_document_number``, creating it only if absent.

    ``look_first=False`` skips the look-up before the create: only for a caller that knows
    from its own durable record that no earlier attempt can have reached the ERP (the first
    claim ever taken on the order), which saves one request per booked order. The look-up
    after an ambiguous create is never skipped.

    Raises ``ErpAmbiguousResult`` when the create's outcome stays unknown (the order is not
    visible yet and may still be committing); when the create got no answer at all, its
    ``decided_by`` = when the create was sent + ``answer_limit``, and a caller must not create
    again before then (BC may hold the create in its queue for minutes). ``ErpUnavailable``
    when the ERP could not be asked. A retry of this function after ``decided_by`` is safe.
    """
    key = payload.external_document_number
    if look_first:
        existing = await find(key)
        if existing is not None:
            return BookingResult(existing, BookingOutcome.ALREADY_EXISTED)
    sent_at = now()
    if attempt is not None:
        attempt.sent_at = sent_at
    try:
        return BookingResult(await create(payload), BookingOutcome.CREATED)
    except ErpAmbiguousResult as ambiguous:
        if ambiguous.status_code is None:
            # No answer at all (timeout, connection lost): BC may still hold the create in
            # its queue and commit it until its own limit. An answer (even a 5xx) means BC
            # has finished with the request, so the lookups below can be trusted.
            ambiguous.decided_by = sent_at + answer_limit
        return await _confirm_after_ambiguity(
            key, ambiguous, find, sleep, lookup_attempts, lookup_delay_seconds
        )


async def _confirm_after_ambiguity(
    key: str,
    ambiguous: ErpAmbiguousResult,
    find: FindOrder,
    sleep: Sleep,
    attempts: int,
    delay_seconds: float,
) -> BookingResult:
    last_transient: ErpTransientError | None = None
    for attempt in range(attempts):
        if attempt:
            # BC may still be committing a create whose response we lost: give it time.
            await sleep(delay_seconds * attempt)
        try:
            found = await find(key)
        except (ErpUnavailable, ErpThrottled) as exc:
            last_transient = exc
            continue
        last_transient = None
        if found is not None:
            return BookingResult(found, BookingOutcome.FOUND_AFTER_AMBIGUOUS_CREATE)
    # Not found (or not askable) yet: the create may still be waiting in BC's queue, so the
    # outcome stays ambiguous until BC's own limit for that request has passed.
    outcome = "the ERP cannot be asked now" if last_transient else "the order is not visible yet"
    raise ErpAmbiguousResult(
        f"order {key}: create outcome unknown and {outcome}",
        status_code=ambiguous.status_code,
        entity_set=ambiguous.entity_set,
        correlation_id=ambiguous.correlation_id,
        decided_by=ambiguous.decided_by,
    ) from (last_transient or ambiguous)
