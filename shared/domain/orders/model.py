"""The order as this product keeps it, and the only ways its status may change.

Every transition is a pure function returning a new `Order` (or raising
`InvalidTransition`), so the storage layer writes it with the row's ETag and, on a 412,
reloads and applies the transition again: two writers can never both move one order.

Status flow: pending -> accepted | rejected | pending-approval; pending-approval -> accepted
(approved) | rejected (rejected by a person, or the approval expired); accepted -> booked |
failed; failed -> accepted (replay) | rejected (cancelled). `pending` is internal (intake still
taking holds); the HTTP contract shows every other status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from .allocation import LineAllocation
from .violations import OrderViolation

_ZERO = Decimal(0)
# The history is kept bounded: a row holds 1 MiB and the retry budget is small anyway.
MAX_HISTORY = 200


class OrderStatus(StrEnum):
    PENDING = "pending"
    PENDING_APPROVAL = "pending-approval"
    ACCEPTED = "accepted"
    BOOKED = "booked"
    REJECTED = "rejected"
    FAILED = "failed"


class HistoryEvent(StrEnum):
    """What happened to an order (values are shown in ``GET /api/orders/{id}``)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ABANDONED = "abandoned"
    BOOKING_STARTED = "booking-started"
    BOOKING_RETRY = "booking-retry-scheduled"
    BOOKED = "booked"
    PRICE_DIFFERENCE = "erp-price-difference"
    FAILED = "failed"
    REPLAY_REQUESTED = "replay-requested"
    CANCELLED = "cancelled"
    HELD_FOR_APPROVAL = "held-for-approval"
    APPROVED = "approved"
    APPROVAL_REJECTED = "approval-rejected"
    APPROVAL_EXPIRED = "approval-expired"


class Decision(StrEnum):
    """What a person (or the expiry) decided about an order held for approval."""

    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


# Who decides when nobody did in time.
EXPIRY_APPROVER = "system:approval-expiry"


class InvalidTransition(Exception):
    """The order's current status does not allow this change."""


@dataclass(frozen=True, slots=True)
class OrderLine:
    """A priced line and the locations that serve it."""

    line: int
    sku: str
    quantity: Decimal
    unit_of_measure: str
    qty_per_unit: Decimal
    unit_price: Decimal
    line_discount_percent: Decimal
    line_amount: Decimal
    expected_unit_price: Decimal | None = None
    allocations: tuple[LineAllocation, ...] = ()
    # Accepted beyond the stock there was (the sync policy's backorder): booked with the line,
    # it waits in the ERP for stock; nothing is held for it here.
    backordered: Decimal = _ZERO

    @property
    def base_quantity(self) -> Decimal:
        return self.quantity * self.qty_per_unit

    @property
    def reserved(self) -> Decimal:
        """What the order holds for this line now, in the line's unit."""
        return sum((part.quantity for part in self.allocations), _ZERO)


@dataclass(frozen=True, slots=True)
class StockHold:
    """What the order holds at one (sku, location), in base units."""

    sku: str
    location: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    event: HistoryEvent
    detail: str = ""
    correlation_id: str | None = None
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    """One recorded decision: who, when, why."""

    at: datetime
    decision: Decision
    approver: str
    reason: str


@dataclass(frozen=True, slots=True)
class BookingClaim:
    """One booking attempt's exclusive right to talk to the ERP for this order, until `until`."""

    token: str
    until: datetime


@dataclass(frozen=True, slots=True)
class Order:
    """An order and its booking state.

    `generation` counts replays and `attempt` is the newest booking attempt issued within it
    (1 = the first message); a message older than (generation, attempt) is stale.
    `claims` counts booking claims ever taken: zero means the ERP was never asked to create
    this order. `settled` means the post-booking work (holds released, status published) is
    done.
    """

    order_id: str
    status: OrderStatus
    customer_no: str
    channel: str
    currency: str
    external_order_id: str
    created_at: datetime
    updated_at: datetime
    lines: tuple[OrderLine, ...] = ()
    total_amount: Decimal = _ZERO
    credit_amount: Decimal = _ZERO
    correlation_id: str | None = None
    ship_to: Mapping[str, str] = field(default_factory=dict)
    violations: tuple[OrderViolation, ...] = ()
    generation: int = 0
    attempt: int = 0
    claims: int = 0
    claim: BookingClaim | None = None
    erp_order_number: str | None = None
    erp_order_id: str | None = None
    erp_total_amount: Decimal | None = None
    failure_reason: str | None = None
    holds_released: bool = False
    settled: bool = False
    history: tuple[HistoryEntry, ...] = ()
    # Held for approval: until when the holds are kept, and every decision taken.
    approval_until: datetime | None = None
    decisions: tuple[ApprovalDecision, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", OrderStatus(self.status))
        object.__setattr__(self, "ship_to", MappingProxyType(dict(self.ship_to)))

    @property
    def stock_holds(self) -> tuple[StockHold, ...]:
        """Base quantities per (sku, location), summed over lines, in a stable order."""
        totals: dict[tuple[str, str], Decimal] = {}
        for line in self.lines:
            for part in line.allocations:
                key = (line.sku, part.location)
                totals[key] = totals.get(key, _ZERO) + part.quantity * line.qty_per_unit
        return tuple(StockHold(sku, loc, qty) for (sku, loc), qty in sorted(totals.items()))

    def backordered_of(self, sku: str, unit_of_measure: str) -> Decimal:
        """What intake accepted as backordered for an item in a unit, summed over its lines."""
        return sum(
            (
                line.backordered
                for line in self.lines
                if line.sku == sku and line.unit_of_measure == unit_of_measure
            ),
            _ZERO,
        )

    @property
    def booked_at(self) -> datetime | None:
        """When the booking was recorded, after the ERP confirmed it (None if not booked)."""
        return next(
            (entry.at for entry in reversed(self.history) if entry.event is HistoryEvent.BOOKED),
            None,
        )

    def claim_active(self, now: datetime) -> bool:
        return self.claim is not None and self.claim.until > now


def _note(
    order: Order,
    now: datetime,
    event: HistoryEvent,
    detail: str = "",
    *,
    correlation_id: str | None = None,
    attempt: int | None = None,
) -> tuple[HistoryEntry, ...]:
    entry = HistoryEntry(now, event, detail, correlation_id or order.correlation_id, attempt)
    return (*order.history, entry)[-MAX_HISTORY:]


def _require(order: Order, *allowed: OrderStatus) -> None:
    if order.status not in allowed:
        names = ", ".join(str(s) for s in allowed)
        raise InvalidTransition(f"order {order.order_id} is {order.status}, not {names}")


def accept(order: Order, now: datetime) -> Order:
    """Holds are all taken: the order is promised to the shopper and queued for booking."""
    _require(order, OrderStatus.PENDING)
    backordered = ", ".join(
        f"{line.sku} {line.backordered.normalize():f}" for line in order.lines if line.backordered
    )
    return replace(
        order,
        status=OrderStatus.ACCEPTED,
        attempt=1,
        updated_at=now,
        history=_note(
            order, now, HistoryEvent.ACCEPTED, f"backordered: {backordered}" if backordered else ""
        ),
    )


def reject(order: Order, violations: tuple[OrderViolation, ...], now: datetime) -> Order:
    """The order breaks rules; nothing stays reserved for it."""
    _require(order, OrderStatus.PENDING)
    summary = ", ".join(sorted({str(v.rule) for v in violations}))
    return replace(
        order,
        status=OrderStatus.REJECTED,
        violations=violations,
        holds_released=True,
        updated_at=now,
        history=_note(order, now, HistoryEvent.REJECTED, summary),
    )


def hold_for_approval(
    order: Order, violations: tuple[OrderViolation, ...], until: datetime, now: datetime
) -> Order:
    """The order breaks only rules the policy routes to a person: it waits, holds kept, until
    `until` at the latest."""
    _require(order, OrderStatus.PENDING)
    summary = ", ".join(sorted({str(v.rule) for v in violations}))
    return replace(
        order,
        status=OrderStatus.PENDING_APPROVAL,
        violations=violations,
        approval_until=until,
        updated_at=now,
        history=_note(order, now, HistoryEvent.HELD_FOR_APPROVAL, f"{summary}; until {until}"),
    )


def _decided(order: Order, decision: Decision, approver: str, reason: str, now: datetime) -> Order:
    return replace(
        order, decisions=(*order.decisions, ApprovalDecision(now, decision, approver, reason))
    )


def approve(
    order: Order, approver: str, reason: str, now: datetime, correlation_id: str | None = None
) -> Order:
    """A person approves a held order: it is accepted as it stands and queued for booking.

    Refused (``InvalidTransition``) unless the order is still waiting and its approval has not
    expired, so approving twice, or after the expiry, changes nothing.
    """
    _require(order, OrderStatus.PENDING_APPROVAL)
    if order.approval_until is not None and now >= order.approval_until:
        raise InvalidTransition(
            f"order {order.order_id}: the approval expired at {order.approval_until}"
        )
    decided = _decided(order, Decision.APPROVED, approver, reason, now)
    return replace(
        decided,
        status=OrderStatus.ACCEPTED,
        attempt=1,
        updated_at=now,
        history=_note(
            order,
            now,
            HistoryEvent.APPROVED,
            f"{approver}: {reason}",
            correlation_id=correlation_id,
        ),
    )


def reject_held(
    order: Order, approver: str, reason: str, now: datetime, correlation_id: str | None = None
) -> Order:
    """A person rejects a held order: rejected; its holds still need releasing."""
    _require(order, OrderStatus.PENDING_APPROVAL)
    decided = _decided(order, Decision.REJECTED, approver, reason, now)
    return replace(
        decided,
        status=OrderStatus.REJECTED,
        holds_released=False,
        updated_at=now,
        history=_note(
            order,
            now,
            HistoryEvent.APPROVAL_REJECTED,
            f"{approver}: {reason}",
            correlation_id=correlation_id,
        ),
    )


def expire_approval(order: Order, now: datetime) -> Order:
    """Nobody decided in time: rejected with the reason; its holds still need releasing."""
    _require(order, OrderStatus.PENDING_APPROVAL)
    if order.approval_until is None or now < order.approval_until:
        raise InvalidTransition(f"order {order.order_id}: the approval has not expired")
    reason = f"approval expired at {order.approval_until.isoformat()}"
    decided = _decided(order, Decision.EXPIRED, EXPIRY_APPROVER, reason, now)
    return replace(
        decided,
        status=OrderStatus.REJECTED,
        holds_released=False,
        updated_at=now,
        history=_note(order, now, HistoryEvent.APPROVAL_EXPIRED, reason),
    )


def abandon(order: Order, reason: str, now: datetime) -> Order:
    """An intake that never finished: the order is rejected; its holds still need releasing."""
    _require(order, OrderStatus.PENDING)
    return replace(
        order,
        status=OrderStatus.REJECTED,
        holds_released=False,
        updated_at=now,
        history=_note(order, now, HistoryEvent.ABANDONED, reason),
    )


def claim_booking(
    order: Order,
    generation: int,
    attempt: int,
    claim: BookingClaim,
    now: datetime,
    *,
    correlation_id: str | None = None,
    delivery_count: int | None = None,
) -> Order:
    """Take the exclusive right to book (attempt `attempt` of `generation`)."""
    _require(order, OrderStatus.ACCEPTED)
    if order.claim_active(now):
        raise InvalidTransition(f"order {order.order_id} is being booked by another attempt")
    detail = f"delivery {delivery_count}" if delivery_count else ""
    return replace(
        order,
        generation=max(order.generation, generation),
        attempt=max(order.attempt, attempt),
        claims=order.claims + 1,
        claim=claim,
        updated_at=now,
        history=_note(
            order,
            now,
            HistoryEvent.BOOKING_STARTED,
            detail,
            correlation_id=correlation_id,
            attempt=attempt,
        ),
    )


def schedule_retry(
    order: Order, token: str, next_attempt: int, retry_at: datetime, reason: str, now: datetime
) -> Order:
    """The attempt failed for a passing reason: give up the claim, issue the next attempt."""
    _require(order, OrderStatus.ACCEPTED)
    claim = None if order.claim is not None and order.claim.token == token else order.claim
    return replace(
        order,
        attempt=max(order.attempt, next_attempt),
        claim=claim,
        failure_reason=reason,
        updated_at=now,
        history=_note(
            order,
            now,
            HistoryEvent.BOOKING_RETRY,
            f"{reason}; attempt {next_attempt} at {retry_at.isoformat()}",
            attempt=next_attempt - 1,
        ),
    )


def release_claim(order: Order, token: str, now: datetime) -> Order:
    """Give the claim back early (the attempt ended without booking and without a retry)."""
    if order.claim is None or order.claim.token != token:
        return order
    return replace(order, claim=None, updated_at=now)


def record_booked(
    order: Order,
    erp_order_number: str,
    erp_order_id: str,
    erp_total_amount: Decimal | None,
    detail: str,
    now: datetime,
) -> Order:
    """The ERP has the order (created now or found): it is booked, whoever held the claim."""
    if order.status is OrderStatus.BOOKED:
        return order
    # A failed order can turn out booked: the ERP is the truth (an attempt whose claim ran
    # out may still have created it).
    _require(order, OrderStatus.ACCEPTED, OrderStatus.FAILED)
    history = _note(order, now, HistoryEvent.BOOKED, f"{erp_order_number} {detail}".strip())
    updated = replace(
        order,
        status=OrderStatus.BOOKED,
        erp_order_number=erp_order_number,
        erp_order_id=erp_order_id,
        erp_total_amount=erp_total_amount,
        claim=None,
        failure_reason=None,
        updated_at=now,
        history=history,
    )
    if erp_total_amount is not None and erp_total_amount != order.total_amount:
        note = (
            f"ERP total {erp_total_amount} {order.currency}, accepted total "
            f"{order.total_amount} {order.currency}"
        )
        updated = replace(updated, history=_note(updated, now, HistoryEvent.PRICE_DIFFERENCE, note))
    return updated


def record_failed(order: Order, reason: str, now: datetime) -> Order:
    """Booking gave up (retry budget spent or the ERP refused): replayable later."""
    if order.status is OrderStatus.FAILED:
        return order
    _require(order, OrderStatus.ACCEPTED)
    return replace(
        order,
        status=OrderStatus.FAILED,
        failure_reason=reason,
        claim=None,
        updated_at=now,
        history=_note(order, now, HistoryEvent.FAILED, reason, attempt=order.attempt),
    )


def request_replay(order: Order, now: datetime, correlation_id: str | None) -> Order:
    """Book a failed (or stuck accepted) order again: a new generation starting at attempt 1.

    Messages of older generations become stale, so whatever is left of them is skipped. An
    accepted order can only be replayed while no attempt holds its claim.
    """
    _require(order, OrderStatus.FAILED, OrderStatus.ACCEPTED)
    if order.claim_active(now):
        raise InvalidTransition(f"order {order.order_id} is being booked right now")
    return replace(
        order,
        status=OrderStatus.ACCEPTED,
        generation=order.generation + 1,
        attempt=1,
        claim=None,
        updated_at=now,
        history=_note(
            order,
            now,
            HistoryEvent.REPLAY_REQUESTED,
            f"after: {order.failure_reason or 'failure'}",
            correlation_id=correlation_id,
        ),
    )


def cancel(order: Order, reason: str, now: datetime, correlation_id: str | None) -> Order:
    """An operator gives up on a failed order: rejected; its holds still need releasing."""
    _require(order, OrderStatus.FAILED)
    return replace(
        order,
        status=OrderStatus.REJECTED,
        holds_released=False,
        updated_at=now,
        history=_note(order, now, HistoryEvent.CANCELLED, reason, correlation_id=correlation_id),
    )


def mark_holds_released(order: Order, now: datetime) -> Order:
    if order.holds_released:
        return order
    return replace(order, holds_released=True, updated_at=now)


def mark_settled(order: Order, now: datetime) -> Order:
    """Booked and its post-booking work is done."""
    _require(order, OrderStatus.BOOKED)
    if order.settled:
        return order
    return replace(order, settled=True, holds_released=True, updated_at=now)
