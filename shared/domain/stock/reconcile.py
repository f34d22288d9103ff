"""Reconciliation: bring a projection back to the ERP's figures without losing newer events.

The ERP/WMS own on-hand stock, the ERP's reservations and its outstanding sales-order demand,
so a read of the ERP is the truth as of the moment it was read (`erp_as_of`). Three races
decide the rules:

- The position holds an event newer than the snapshot (`last_event_at > erp_as_of`): the
  snapshot misses it, and overwriting would undo it. Reconciliation is deferred; the next run
  (with a fresher read) catches up. A correction computed earlier is refused for the same
  reason (`StaleCorrection`) if such an event was folded in meanwhile.
- Events that occurred before the snapshot may still be on their way (queued, held for a
  gap, or stragglers). The snapshot already includes them, so the correction records
  `reconciled_as_of`; the fold then consumes any event that occurred at or before it without
  effect ("covered") instead of counting it twice.

- Orders this product booked are counted as `booked` demand from the moment the ERP confirmed
  them. A read started after `booked_at` includes the order, so its demand figure replaces
  that entry ("confirmed"); a read started earlier may not, so the entry stays on top of it.
  Neither a gap (units back in availability) nor a double count survives a read.

The rules compare the source's `occurredAt` and `booked_at` with the ERP read time, so they
assume one clock; skew shrinks or widens the window by that much, and a later reconciliation
corrects what slips through. Take `erp_as_of` as the time the read was *sent*: everything
committed before it is inside the answer, which is the safe side of every rule above.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from .errors import InvalidStockInput, PositionMismatch, StaleCorrection
from .position import StockPosition
from .quantities import ZERO, aware_utc, finite_quantity


class ReconcileOutcome(StrEnum):
    """What a comparison with the ERP found."""

    IN_SYNC = "in-sync"
    CONFIRMED = "confirmed-bookings"
    DRIFTED = "drifted"
    DEFERRED_NEWER_EVENTS = "deferred-newer-events"
    SUPERSEDED_SNAPSHOT = "superseded-snapshot"


@dataclass(frozen=True, slots=True)
class ErpStockFigures:
    """One ERP row for (sku, location): on hand, reservations outside the sales-order demand,
    outstanding sales-order demand and expected receipts.

    `demand` / `expected` of None mean the source did not carry them (an older message): the
    projection keeps what it has.
    """

    on_hand: Decimal
    reserved: Decimal
    demand: Decimal | None = None
    expected: Decimal | None = None

    def __post_init__(self) -> None:
        # Negative ERP on hand is accepted (Business Central can allow negative inventory).
        finite_quantity(self.on_hand, "erp on hand")
        for name in ("reserved", "demand", "expected"):
            value = getattr(self, name)
            if value is not None and finite_quantity(value, f"erp {name}") < 0:
                raise InvalidStockInput(f"erp {name} must not be negative, got {value}")


@dataclass(frozen=True, slots=True)
class StockCorrection:
    """The ERP's figures as absolute targets, and the booked orders the read includes.

    Absolute targets (not deltas) make applying it twice harmless; the drifts say by how much
    the projection was off, for the audit log.
    """

    sku: str
    location: str
    figures: ErpStockFigures
    confirmed_orders: frozenset[str]
    as_of: datetime

    @property
    def on_hand(self) -> Decimal:
        return self.figures.on_hand

    @property
    def erp_reserved(self) -> Decimal:
        return self.figures.reserved


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The comparison of one position with one ERP read."""

    outcome: ReconcileOutcome
    on_hand_drift: Decimal
    erp_reserved_drift: Decimal
    correction: StockCorrection | None
    demand_drift: Decimal = ZERO
    expected_drift: Decimal = ZERO

    @property
    def drift_size(self) -> Decimal:
        """Every figure's drift, summed in absolute terms."""
        return (
            abs(self.on_hand_drift)
            + abs(self.erp_reserved_drift)
            + abs(self.demand_drift)
            + abs(self.expected_drift)
        )


def _confirmed(position: StockPosition, as_of: datetime) -> frozenset[str]:
    """Booked orders a read started at `as_of` is certain to include."""
    return frozenset(
        order_id for order_id, entry in position.booked.items() if entry.booked_at < as_of
    )


def reconcile(
    position: StockPosition, figures: ErpStockFigures, erp_as_of: datetime
) -> Reconciliation:
    """Compare the position with the ERP's figures read at `erp_as_of`.

    Returns the correction to apply when they differ (or when the read confirms booked
    orders), none when they agree, and no correction either when the position already folded
    in an event newer than the read (deferred) or was corrected to a newer read (superseded).
    The demand drift compares the ERP's figure with the projection's demand *as the ERP
    should see it*: its last figure plus the booked orders the read must include.
    """
    as_of = aware_utc(erp_as_of, "erp_as_of")
    confirmed = _confirmed(position, as_of)
    on_hand_drift = figures.on_hand - position.on_hand
    reserved_drift = figures.reserved - position.erp_reserved
    demand_drift = ZERO
    if figures.demand is not None:
        included = sum((position.booked[o].quantity for o in confirmed), ZERO)
        demand_drift = figures.demand - (position.erp_demand + included)
    expected_drift = ZERO if figures.expected is None else figures.expected - position.expected
    drifts = (on_hand_drift, reserved_drift, demand_drift, expected_drift)

    def found(outcome: ReconcileOutcome, correction: StockCorrection | None) -> Reconciliation:
        return Reconciliation(outcome, *drifts[:2], correction, *drifts[2:])

    if position.last_event_at is not None and position.last_event_at > as_of:
        return found(ReconcileOutcome.DEFERRED_NEWER_EVENTS, None)
    if position.reconciled_as_of is not None and position.reconciled_as_of > as_of:
        return found(ReconcileOutcome.SUPERSEDED_SNAPSHOT, None)
    if figures.demand is None:
        confirmed = frozenset()  # a read without demand cannot stand in for booked orders
    drifted = any(drift != 0 for drift in drifts)
    if not drifted and not confirmed:
        return found(ReconcileOutcome.IN_SYNC, None)
    correction = StockCorrection(position.sku, position.location, figures, confirmed, as_of)
    return found(ReconcileOutcome.DRIFTED if drifted else ReconcileOutcome.CONFIRMED, correction)


def apply_correction(position: StockPosition, correction: StockCorrection) -> StockPosition:
    """The position set to the ERP's figures as of the correction's read.

    Raises `StaleCorrection` when the position folded in an event newer than the read since
    the correction was computed, or was corrected to a newer read (reconcile again with a
    fresh read). Applying the same correction twice gives the same position. Pending holds
    and safety stock are this product's and stay as they are; booked orders the read
    includes leave `booked`, because the ERP's demand counts them now.
    """
    if (correction.sku, correction.location) != position.key:
        raise PositionMismatch(
            f"correction for {(correction.sku, correction.location)} given to {position.key}"
        )
    if position.last_event_at is not None and position.last_event_at > correction.as_of:
        raise StaleCorrection(
            f"{position.key}: event at {position.last_event_at.isoformat()} is newer than "
            f"the ERP snapshot of {correction.as_of.isoformat()}"
        )
    if position.reconciled_as_of is not None and position.reconciled_as_of > correction.as_of:
        # A newer read was applied already; the older figures would undo it.
        raise StaleCorrection(
            f"{position.key}: already reconciled to the snapshot of "
            f"{position.reconciled_as_of.isoformat()}"
        )
    figures = correction.figures
    booked = {
        order_id: entry
        for order_id, entry in position.booked.items()
        if order_id not in correction.confirmed_orders
    }
    return replace(
        position,
        on_hand=figures.on_hand,
        erp_reserved=figures.reserved,
        erp_demand=position.erp_demand if figures.demand is None else figures.demand,
        expected=position.expected if figures.expected is None else figures.expected,
        booked=booked,
        reconciled_as_of=correction.as_of,
        demand_as_of=position.demand_as_of if figures.demand is None else correction.as_of,
    )
