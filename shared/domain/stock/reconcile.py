"""Reconciliation: bring a projection back to the ERP's figures without losing newer events.

The ERP/WMS own on-hand and ERP-reserved stock, so a periodic read of the ERP is the truth
as of the moment it was read (`erp_as_of`). Two races decide the rules:

- The position holds an event newer than the snapshot (`last_event_at > erp_as_of`): the
  snapshot misses it, and overwriting would undo it. Reconciliation is deferred; the next run
  (with a fresher read) catches up. A correction computed earlier is refused for the same
  reason (`StaleCorrection`) if such an event was folded in meanwhile.
- Events that occurred before the snapshot may still be on their way (queued, held for a
  gap, or stragglers). The snapshot already includes them, so the correction records
  `reconciled_as_of`; the fold then consumes any event that occurred at or before it without
  effect ("covered") instead of counting it twice.

Both rules compare the source's `occurredAt` with the ERP read time, so they assume the
ERP/WMS stamp events on the clock the snapshot time comes from; skew shrinks or widens the
window by that much, and a later reconciliation corrects what slips through. Take
`erp_as_of` as the time the ERP answered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from .errors import InvalidStockInput, PositionMismatch, StaleCorrection
from .position import StockPosition
from .quantities import aware_utc, finite_quantity


class ReconcileOutcome(StrEnum):
    """What a comparison with the ERP found."""

    IN_SYNC = "in-sync"
    DRIFTED = "drifted"
    DEFERRED_NEWER_EVENTS = "deferred-newer-events"
    SUPERSEDED_SNAPSHOT = "superseded-snapshot"


@dataclass(frozen=True, slots=True)
class StockCorrection:
    """A synthetic count of on hand and a reset of ERP-reserved to the ERP's figures.

    Absolute targets (not deltas) make applying it twice harmless; the drifts say by how much
    the projection was off, for the audit log.
    """

    sku: str
    location: str
    on_hand: Decimal
    on_hand_drift: Decimal
    erp_reserved: Decimal
    erp_reserved_drift: Decimal
    as_of: datetime


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The comparison of one position with one ERP snapshot."""

    outcome: ReconcileOutcome
    on_hand_drift: Decimal
    erp_reserved_drift: Decimal
    correction: StockCorrection | None


def reconcile(
    position: StockPosition,
    erp_on_hand: Decimal,
    erp_reserved: Decimal,
    erp_as_of: datetime,
) -> Reconciliation:
    """Compare the position with the ERP's figures read at `erp_as_of`.

    Returns the correction to apply when they differ, none when they agree, and no correction
    either when the position already folded in an event newer than the snapshot (deferred)
    or was corrected to a newer snapshot (this read is superseded).
    Negative ERP on hand is accepted (Business Central can allow negative inventory);
    negative ERP reservations are not.
    """
    finite_quantity(erp_on_hand, "erp_on_hand")
    if finite_quantity(erp_reserved, "erp_reserved") < 0:
        raise InvalidStockInput(f"erp_reserved must not be negative, got {erp_reserved}")
    as_of = aware_utc(erp_as_of, "erp_as_of")
    on_hand_drift = erp_on_hand - position.on_hand
    reserved_drift = erp_reserved - position.erp_reserved
    if position.last_event_at is not None and position.last_event_at > as_of:
        return Reconciliation(
            ReconcileOutcome.DEFERRED_NEWER_EVENTS, on_hand_drift, reserved_drift, None
        )
    if position.reconciled_as_of is not None and position.reconciled_as_of > as_of:
        return Reconciliation(
            ReconcileOutcome.SUPERSEDED_SNAPSHOT, on_hand_drift, reserved_drift, None
        )
    if on_hand_drift == 0 and reserved_drift == 0:
        return Reconciliation(ReconcileOutcome.IN_SYNC, on_hand_drift, reserved_drift, None)
    correction = StockCorrection(
        sku=position.sku,
        location=position.location,
        on_hand=erp_on_hand,
        on_hand_drift=on_hand_drift,
        erp_reserved=erp_reserved,
        erp_reserved_drift=reserved_drift,
        as_of=as_of,
    )
    return Reconciliation(ReconcileOutcome.DRIFTED, on_hand_drift, reserved_drift, correction)


def apply_correction(position: StockPosition, correction: StockCorrection) -> StockPosition:
    """The position set to the ERP's figures as of the correction's snapshot.

    Raises `StaleCorrection` when the position folded in an event newer than the snapshot
    since the correction was computed, or was corrected to a newer snapshot (reconcile again
    with a fresh read). Applying the same correction twice gives the same position. Pending
    reservations and safety stock are this product's and stay as they are.
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
        # A newer snapshot was applied already; the older figures would undo it.
        raise StaleCorrection(
            f"{position.key}: already reconciled to the snapshot of "
            f"{position.reconciled_as_of.isoformat()}"
        )
    return replace(
        position,
        on_hand=correction.on_hand,
        erp_reserved=correction.erp_reserved,
        reconciled_as_of=correction.as_of,
    )
