"""Folding inventory events into a position: exactly once, in sequence order.

Rules (each is what makes a redelivery or a reordering harmless):

- Duplicate: an event id the position knows (recently consumed or held), or a sequence at or
  below `last_sequence` that is not recorded as missing, or a sequence already held. It
  changes nothing.
- In order (`sequence == last_sequence + 1`): folded in, then any held successors follow.
- Ahead of a gap: a delta is held until the gap fills. A `counted` event is absolute, so it is
  folded in at once: held on-hand deltas below it are superseded (the source's count already
  includes them), held `reserved`/`released` deltas below it are folded in (a count says
  nothing about reservations), and the sequences it jumps over are recorded as missing.
- Straggler (a missing sequence arriving late): `reserved`/`released` fold in (deltas
  commute); `adjusted` folds in unless a newer count superseded it; a `counted` straggler
  is superseded by a newer count, otherwise it is `stale` (the deltas folded since cannot be
  rebased on it) and left to reconciliation.
- Covered: an event that occurred at or before the last reconciliation's ERP snapshot is
  already inside the corrected quantities; it is consumed without effect.
- A gap that never fills: after processing the batch, while the longest-held event has
  waited `hold_timeout` or more held events than `FoldPolicy.max_held` pile up, the first gap
  is skipped (recorded as missing, reported in `gaps_skipped`) and held events fold in order.

Together these give the guarantee the tests check: however a stream is duplicated, shuffled
and split into batches, the final position equals folding the deduplicated stream in
sequence order, as long as no gap timeout fired. After a skipped gap the quantities still
converge once the stragglers arrive, unless one of them is a `stale` count; the missing
ranges are bounded (`FoldPolicy.max_missing_ranges`, oldest dropped and reported in
`forgotten_missing`), and a straggler for a dropped range counts as a duplicate. In both
cases reconciliation with the ERP heals what the events could not.

A new position expects sequence 1. If the source's numbering for a key starts higher (the
projection was created after the source), the first deltas wait for the hold timeout, or
for a count, which is folded in at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from .availability import available_to_sell
from .errors import PositionMismatch
from .events import InventoryEvent, InventoryEventKind
from .position import ConsumedEvent, HeldEvent, StockPosition
from .quantities import aware_utc, non_negative_duration, positive_limit
from .sequences import (
    Ranges,
    add_range,
    keep_newest,
    ranges_contain,
    remove_sequence,
)

_ON_HAND_KINDS = frozenset({InventoryEventKind.ADJUSTED, InventoryEventKind.COUNTED})


@dataclass(frozen=True, slots=True)
class FoldPolicy:
    """Bounds that keep one position's stored state small (one table entity)."""

    max_held: int = 1000
    recent_event_ids: int = 50
    max_missing_ranges: int = 100

    def __post_init__(self) -> None:
        positive_limit(self.max_held, "max_held")
        positive_limit(self.recent_event_ids, "recent_event_ids")
        positive_limit(self.max_missing_ranges, "max_missing_ranges")


DEFAULT_FOLD_POLICY = FoldPolicy()


class GapReason(StrEnum):
    """Why the fold stopped waiting for a missing sequence."""

    HOLD_TIMEOUT = "hold-timeout"
    BUFFER_FULL = "buffer-full"


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Sequences `first`..`last` skipped without being seen; stragglers may still fold in."""

    first: int
    last: int
    reason: GapReason


@dataclass(frozen=True, slots=True)
class FoldResult:
    """The new position and what happened to every event, for the caller to persist and log.

    The position itself is the authoritative dedup record (sequence watermark, missing
    ranges, recent ids, held events), so persisting `new_position` with an ETag condition and
    then completing every message of the batch is enough; held events live in the position,
    so their messages are safe to complete too. A caller that also keeps per-event markers
    writes one per `consumed_event_ids` in the same partition and transaction when they fit
    (99 plus the position); a filled gap can release up to `max_held` events at once, and
    markers beyond one transaction go after the position is written, so that a marker never
    exists for an event the position has not consumed.
    """

    previous_position: StockPosition
    new_position: StockPosition
    applied: tuple[InventoryEvent, ...]
    duplicates: tuple[InventoryEvent, ...]
    held: tuple[InventoryEvent, ...]
    gaps_skipped: tuple[SequenceGap, ...]
    superseded: tuple[InventoryEvent, ...]
    covered: tuple[InventoryEvent, ...]
    stale: tuple[InventoryEvent, ...]
    forgotten_missing: Ranges
    available_before: Decimal
    available_after: Decimal

    @property
    def consumed(self) -> tuple[InventoryEvent, ...]:
        """Events whose fate is final in this fold (including ones held by earlier folds)."""
        return self.applied + self.superseded + self.covered + self.stale

    @property
    def consumed_event_ids(self) -> tuple[str, ...]:
        """Ids to write dedup markers for, together with the new position."""
        return tuple(event.event_id for event in self.consumed)

    @property
    def position_changed(self) -> bool:
        """False when the batch held only duplicates: there is nothing to write."""
        return self.new_position != self.previous_position


def apply_events(
    position: StockPosition,
    events: Iterable[InventoryEvent],
    now: datetime,
    hold_timeout: timedelta,
    policy: FoldPolicy = DEFAULT_FOLD_POLICY,
) -> FoldResult:
    """Fold a batch of events for one (sku, location) into its stored position.

    Pure: the same position, events, `now` and timeout always give the same result, so the
    caller may retry after an ETag conflict by reloading and folding again. An empty batch
    still releases gaps whose hold timed out (for the periodic sweep).
    """
    now = aware_utc(now, "now")
    non_negative_duration(hold_timeout, "hold_timeout")
    batch = tuple(events)
    for event in batch:
        if event.key != position.key:
            raise PositionMismatch(f"event {event.event_id} is for {event.key}, not {position.key}")
    fold = _Fold(position, now, policy)
    # Sequence order: fewer events need holding, and which of two rival events for one
    # sequence wins no longer depends on how the broker ordered the batch.
    for event in sorted(batch, key=lambda event: (event.sequence, event.event_id)):
        fold.accept(event)
    fold.skip_gaps(hold_timeout)
    new_position, forgotten = fold.position()
    still_held = {held.event.event_id for held in new_position.held}
    return FoldResult(
        previous_position=position,
        new_position=new_position,
        applied=tuple(fold.applied),
        duplicates=tuple(fold.duplicates),
        held=tuple(event for event in fold.newly_held if event.event_id in still_held),
        gaps_skipped=tuple(fold.gaps),
        superseded=tuple(fold.superseded),
        covered=tuple(fold.covered),
        stale=tuple(fold.stale),
        forgotten_missing=forgotten,
        available_before=available_to_sell(position),
        available_after=available_to_sell(new_position),
    )


@dataclass
class _Fold:
    """Mutable working copy of one position for the length of one fold."""

    start: StockPosition
    now: datetime
    policy: FoldPolicy
    on_hand: Decimal = field(init=False)
    erp_reserved: Decimal = field(init=False)
    last_sequence: int = field(init=False)
    last_counted: int = field(init=False)
    last_event_at: datetime | None = field(init=False)
    held_by_sequence: dict[int, HeldEvent] = field(init=False)
    held_ids: set[str] = field(init=False)
    missing: Ranges = field(init=False)
    consumed_ids: dict[str, int] = field(init=False)
    applied: list[InventoryEvent] = field(default_factory=list)
    duplicates: list[InventoryEvent] = field(default_factory=list)
    newly_held: list[InventoryEvent] = field(default_factory=list)
    superseded: list[InventoryEvent] = field(default_factory=list)
    covered: list[InventoryEvent] = field(default_factory=list)
    stale: list[InventoryEvent] = field(default_factory=list)
    gaps: list[SequenceGap] = field(default_factory=list)

    def __post_init__(self) -> None:
        start = self.start
        self.on_hand = start.on_hand
        self.erp_reserved = start.erp_reserved
        self.last_sequence = start.last_sequence
        self.last_counted = start.last_counted_sequence
        self.last_event_at = start.last_event_at
        self.held_by_sequence = {held.event.sequence: held for held in start.held}
        self.held_ids = {held.event.event_id for held in start.held}
        self.missing = start.missing
        self.consumed_ids = {seen.event_id: seen.sequence for seen in start.recent_events}

    def accept(self, event: InventoryEvent) -> None:
        """Route one arriving event: duplicate, straggler, count, in order, or hold."""
        sequence = event.sequence
        if self._is_known_id(event.event_id):
            self.duplicates.append(event)
        elif sequence <= self.last_sequence:
            if ranges_contain(self.missing, sequence):
                self.missing = remove_sequence(self.missing, sequence)
                self._straggler(event)
            else:
                self.duplicates.append(event)
        elif sequence in self.held_by_sequence:
            self.duplicates.append(event)
        elif event.kind is InventoryEventKind.COUNTED:
            self._count_ahead(event)
        elif sequence == self.last_sequence + 1:
            self._advance(event)
            self._drain()
        else:
            self.held_by_sequence[sequence] = HeldEvent(event, self.now)
            self.held_ids.add(event.event_id)
            self.newly_held.append(event)

    def skip_gaps(self, hold_timeout: timedelta) -> None:
        """Stop waiting for missing sequences once the hold timed out or the buffer is full."""
        while self.held_by_sequence:
            if len(self.held_by_sequence) > self.policy.max_held:
                reason = GapReason.BUFFER_FULL
            elif (
                self.now - min(held.held_at for held in self.held_by_sequence.values())
                >= hold_timeout
            ):
                reason = GapReason.HOLD_TIMEOUT
            else:
                return
            first_held = min(self.held_by_sequence)
            gap = SequenceGap(self.last_sequence + 1, first_held - 1, reason)
            self.gaps.append(gap)
            self.missing = add_range(self.missing, gap.first, gap.last)
            self.last_sequence = gap.last
            self._drain()

    def position(self) -> tuple[StockPosition, Ranges]:
        """The resulting position, and the missing ranges dropped to stay within bounds."""
        missing, forgotten = keep_newest(self.missing, self.policy.max_missing_ranges)
        newest = sorted(
            ConsumedEvent(sequence, event_id) for event_id, sequence in self.consumed_ids.items()
        )[-self.policy.recent_event_ids :]
        held = tuple(self.held_by_sequence[s] for s in sorted(self.held_by_sequence))
        position = replace(
            self.start,
            on_hand=self.on_hand,
            erp_reserved=self.erp_reserved,
            last_sequence=self.last_sequence,
            last_counted_sequence=self.last_counted,
            last_event_at=self.last_event_at,
            recent_events=tuple(newest),
            held=held,
            missing=missing,
        )
        return position, forgotten

    def _is_known_id(self, event_id: str) -> bool:
        return event_id in self.consumed_ids or event_id in self.held_ids

    def _take_held(self, sequence: int) -> InventoryEvent:
        event = self.held_by_sequence.pop(sequence).event
        self.held_ids.discard(event.event_id)
        return event

    def _count_ahead(self, count: InventoryEvent) -> None:
        # Everything held below the count is settled now: on-hand deltas are inside the
        # count, reservation deltas are not and still fold in.
        settled = sorted(s for s in self.held_by_sequence if s < count.sequence)
        bridge_start = self.last_sequence + 1
        for sequence in settled:
            held = self._take_held(sequence)
            if held.kind in _ON_HAND_KINDS:
                self._consume(held, self.superseded)
            else:
                self._effect(held)
            self.missing = add_range(self.missing, bridge_start, sequence - 1)
            bridge_start = sequence + 1
        self.missing = add_range(self.missing, bridge_start, count.sequence - 1)
        self._advance(count)
        self._drain()

    def _straggler(self, event: InventoryEvent) -> None:
        if event.kind in _ON_HAND_KINDS and event.sequence < self.last_counted:
            self._consume(event, self.superseded)
        elif event.kind is InventoryEventKind.COUNTED and not self._is_covered(event):
            # Deltas after it were folded onto another base; only the ERP knows the truth now.
            self._consume(event, self.stale)
        else:
            self._effect(event)

    def _advance(self, event: InventoryEvent) -> None:
        self.last_sequence = event.sequence
        if event.kind is InventoryEventKind.COUNTED:
            self.last_counted = event.sequence
        self._effect(event)

    def _drain(self) -> None:
        while self.last_sequence + 1 in self.held_by_sequence:
            self._advance(self._take_held(self.last_sequence + 1))

    def _is_covered(self, event: InventoryEvent) -> bool:
        as_of = self.start.reconciled_as_of
        return as_of is not None and event.occurred_at <= as_of

    def _effect(self, event: InventoryEvent) -> None:
        if self._is_covered(event):
            self._consume(event, self.covered)
            return
        match event.kind:
            case InventoryEventKind.COUNTED:
                self.on_hand = event.quantity
            case InventoryEventKind.ADJUSTED:
                self.on_hand += event.quantity
            case InventoryEventKind.RESERVED:
                self.erp_reserved += event.quantity
            case InventoryEventKind.RELEASED:
                self.erp_reserved -= event.quantity
        self._consume(event, self.applied)

    def _consume(self, event: InventoryEvent, outcome: list[InventoryEvent]) -> None:
        outcome.append(event)
        self.consumed_ids[event.event_id] = event.sequence
        if self.last_event_at is None or event.occurred_at > self.last_event_at:
            self.last_event_at = event.occurred_at
