"""Planning one item's write: fold its events and snapshots, decide the rows, find the alerts.

Pure (no I/O): given the rows read from the item's partition and the messages of a batch, it
returns what to write and what to publish. The caller writes with the ETags it read and, on a
conflict, reads again and plans again; because planning is pure, the retry is exact and two
racing handlers end as if they had run one after the other.

Order inside one location: events first (the fold), then ERP snapshots by read time. Both
orders end in the same state: a snapshot read after an event includes it (the correction sets
the ERP's figures), and a snapshot read before a newer event is deferred by ``reconcile``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from shared.adapters.stores.stock import StoredPosition, position_entity
from shared.adapters.tables import MAX_BATCH_BYTES, MAX_BATCH_OPERATIONS, TableOperation
from shared.domain.stock import (
    AlertScope,
    ChannelAllocation,
    InventoryEvent,
    ReconcileOutcome,
    StockPosition,
    apply_correction,
    apply_events,
    available_to_sell,
    detect_crossing,
    reconcile,
    set_safety_stock,
)
from shared.services.inventory.alerts import PendingAlert, pending_alert
from shared.services.inventory.messages import ErpStockSnapshot
from shared.services.inventory.policy import StockPolicy

_log = logging.getLogger(__name__)
# Leave room for the multipart envelope of the whole request.
_TRANSACTION_BYTES = MAX_BATCH_BYTES - 256 * 1024


@dataclass
class LocationWork:
    """What one batch brings for one location (empty for a sweep that only releases gaps)."""

    events: list[InventoryEvent] = field(default_factory=list)
    snapshots: list[ErpStockSnapshot] = field(default_factory=list)


@dataclass(frozen=True)
class PositionChange:
    """A position to write: create when ``stored.etag`` is None, else update on that ETag."""

    stored: StoredPosition
    new_position: StockPosition
    alerts: tuple[PendingAlert, ...] = ()

    def operation(self) -> TableOperation:
        entity = position_entity(self.new_position)
        if self.stored.etag is None:
            return TableOperation("create", entity)
        return TableOperation("update", entity, etag=self.stored.etag)


@dataclass
class PartitionPlan:
    """One item's changes, their alerts (location ones ride with their position) and counts."""

    sku: str
    changes: list[PositionChange] = field(default_factory=list)
    channel_alerts: list[PendingAlert] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)

    @property
    def alerts(self) -> list[PendingAlert]:
        return [alert for change in self.changes for alert in change.alerts] + list(
            self.channel_alerts
        )

    def write_groups(self) -> list[list[TableOperation]]:
        """The changes as entity-group transactions: one when it fits (the usual case).

        A position and its alert rows always share a transaction, so an alert exists exactly
        when its change does; channel alerts ride with the first group.
        """
        groups: list[list[TableOperation]] = []
        current: list[TableOperation] = [
            TableOperation("upsert", alert.to_entity()) for alert in self.channel_alerts
        ]
        size = sum(operation.estimated_bytes() for operation in current)
        for change in self.changes:
            unit = [change.operation()] + [
                TableOperation("upsert", alert.to_entity()) for alert in change.alerts
            ]
            unit_size = sum(operation.estimated_bytes() for operation in unit)
            if current and (
                len(current) + len(unit) > MAX_BATCH_OPERATIONS
                or size + unit_size > _TRANSACTION_BYTES
            ):
                groups.append(current)
                current, size = [], 0
            current.extend(unit)
            size += unit_size
        if current:
            groups.append(current)
        return groups


def _state_token(position: StockPosition) -> str:
    reconciled = position.reconciled_as_of.isoformat() if position.reconciled_as_of else ""
    return "|".join(
        [
            position.location,
            str(position.last_sequence),
            reconciled,
            str(position.on_hand),
            str(position.erp_reserved),
            str(position.erp_demand),
            str(position.expected),
            ",".join(f"{order}={e.quantity}" for order, e in sorted(position.booked.items())),
            str(position.pending_reserved),
            str(position.safety_stock),
        ]
    )


def _fold_location(
    start: StockPosition,
    work: LocationWork,
    policy: StockPolicy,
    now: datetime,
    tally: Counter[str],
) -> StockPosition:
    position = start
    if position.safety_stock != policy.safety_stock:
        # The setting is the source of safety stock; stored positions follow it on next write.
        position = set_safety_stock(position, policy.safety_stock)
    result = apply_events(position, work.events, now, policy.hold_timeout, policy.fold_policy)
    tally.update(
        applied=len(result.applied),
        duplicates=len(result.duplicates),
        held=len(result.held),
        superseded=len(result.superseded),
        covered=len(result.covered),
        stale=len(result.stale),
        gapsSkipped=len(result.gaps_skipped),
    )
    for gap in result.gaps_skipped:
        _log.warning(
            "%s@%s: sequences %d..%d never arrived (%s); folded on without them",
            start.sku,
            start.location,
            gap.first,
            gap.last,
            gap.reason,
        )
    position = result.new_position
    for snapshot in sorted(work.snapshots, key=lambda snap: (snap.as_of, snap.event_id)):
        outcome = reconcile(position, snapshot.figures, snapshot.as_of)
        if outcome.correction is None:
            tally[_SNAPSHOT_TALLY[outcome.outcome]] += 1
            continue
        position = apply_correction(position, outcome.correction)
        tally["corrected"] += 1
        _log.info(
            "%s@%s corrected to the ERP (%s): on hand %+s, reserved %+s, demand %+s, "
            "expected %+s, bookings confirmed %d",
            start.sku,
            start.location,
            snapshot.origin,
            outcome.on_hand_drift,
            outcome.erp_reserved_drift,
            outcome.demand_drift,
            outcome.expected_drift,
            len(outcome.correction.confirmed_orders),
        )
    return position


_SNAPSHOT_TALLY = {
    ReconcileOutcome.IN_SYNC: "snapshotsInSync",
    ReconcileOutcome.DEFERRED_NEWER_EVENTS: "snapshotsDeferred",
    ReconcileOutcome.SUPERSEDED_SNAPSHOT: "snapshotsSuperseded",
    ReconcileOutcome.CONFIRMED: "corrected",
    ReconcileOutcome.DRIFTED: "corrected",
}


def _channel_total(
    positions: Mapping[str, StockPosition], allocation: ChannelAllocation
) -> Decimal:
    return sum(
        (
            available_to_sell(p, with_expected=allocation.sells_expected)
            for location, p in positions.items()
            if allocation.allows(location)
        ),
        Decimal(0),
    )


def plan_partition(
    sku: str,
    stored: Mapping[str, StoredPosition],
    work: Mapping[str, LocationWork],
    policy: StockPolicy,
    now: datetime,
) -> PartitionPlan:
    """Fold ``work`` into the item's ``stored`` positions (keyed by location); pure."""
    plan = PartitionPlan(sku)
    before = {location: entry.position for location, entry in stored.items()}
    after = dict(before)
    changed: list[tuple[StoredPosition, StockPosition]] = []
    for location in sorted(work):
        entry = stored.get(location) or StoredPosition(
            StockPosition.new(sku, location, policy.safety_stock), None
        )
        new_position = _fold_location(entry.position, work[location], policy, now, plan.tally)
        if new_position == entry.position and entry.etag is not None:
            continue
        if entry.etag is None and new_position == StockPosition.new(
            sku, location, policy.safety_stock
        ):
            continue  # nothing happened to a key that was never stored: nothing to store
        changed.append((entry, new_position))
        after[location] = new_position
    for entry, new_position in changed:
        location = new_position.location
        crossing = detect_crossing(
            sku,
            AlertScope.LOCATION,
            location,
            available_to_sell(entry.position) if entry.etag is not None else Decimal(0),
            available_to_sell(new_position),
            policy.thresholds,
            now,
        )
        alerts = (pending_alert(crossing, _state_token(new_position)),) if crossing else ()
        plan.changes.append(PositionChange(entry, new_position, alerts))
    if changed:
        token = ";".join(_state_token(p) for _, p in changed)
        for name, allocation in sorted(policy.channels.items()):
            crossing = detect_crossing(
                sku,
                AlertScope.CHANNEL,
                name,
                _channel_total(before, allocation),
                _channel_total(after, allocation),
                policy.thresholds,
                now,
            )
            if crossing:
                plan.channel_alerts.append(pending_alert(crossing, token))
    plan.tally["alerts"] += len(plan.alerts)
    return plan


def group_by_partition(
    messages: Sequence[InventoryEvent | ErpStockSnapshot],
) -> dict[str, dict[str, LocationWork]]:
    """Messages by item (the table partition), then by location."""
    grouped: dict[str, dict[str, LocationWork]] = {}
    for message in messages:
        work = grouped.setdefault(message.sku, {}).setdefault(message.location, LocationWork())
        if isinstance(message, ErpStockSnapshot):
            work.snapshots.append(message)
        else:
            work.events.append(message)
    return grouped
