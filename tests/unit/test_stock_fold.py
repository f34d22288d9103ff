"""Rules of the inventory event fold, one at a time (exactly once, order, gaps, counts)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.domain.stock import (
    ConsumedEvent,
    FoldPolicy,
    GapReason,
    InvalidStockInput,
    InventoryEvent,
    InventoryEventKind,
    PositionMismatch,
    SequenceRange,
    StockPosition,
    apply_events,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LONG = timedelta(hours=1)


def ev(
    sequence: int,
    kind: str = "adjusted",
    quantity: str = "1",
    *,
    event_id: str | None = None,
    at: datetime | None = None,
    location: str = "MAIN",
) -> InventoryEvent:
    return InventoryEvent(
        event_id=event_id or f"e{sequence}",
        sku="SKU-1",
        location=location,
        kind=InventoryEventKind(kind),
        quantity=Decimal(quantity),
        sequence=sequence,
        occurred_at=at or T0 + timedelta(seconds=sequence),
        source="wms",
    )


def fresh(**changes: object) -> StockPosition:
    return replace(StockPosition.new("SKU-1", "MAIN"), **changes)  # type: ignore[arg-type]


def seqs(events: tuple[InventoryEvent, ...]) -> list[int]:
    return [event.sequence for event in events]


class TestInOrder:
    def test_each_kind_changes_its_quantity(self) -> None:
        events = [
            ev(1, "counted", "10"),
            ev(2, "adjusted", "-3"),
            ev(3, "reserved", "4"),
            ev(4, "released", "1.5"),
        ]
        result = apply_events(fresh(), events, T0, LONG)
        position = result.new_position
        assert position.on_hand == Decimal("7")
        assert position.erp_reserved == Decimal("2.5")
        assert position.last_sequence == 4
        assert position.last_counted_sequence == 1
        assert position.last_event_at == T0 + timedelta(seconds=4)
        assert seqs(result.applied) == [1, 2, 3, 4]
        assert result.available_before == 0
        assert result.available_after == Decimal("4.5")

    def test_count_replaces_on_hand_and_keeps_erp_reserved(self) -> None:
        start = fresh(on_hand=Decimal(50), erp_reserved=Decimal(5), last_sequence=9)
        result = apply_events(start, [ev(10, "counted", "12")], T0, LONG)
        assert result.new_position.on_hand == 12
        assert result.new_position.erp_reserved == 5

    def test_arrival_order_inside_a_batch_does_not_matter(self) -> None:
        events = [ev(3, "counted", "8"), ev(1, "adjusted", "5"), ev(4, "adjusted", "-2"), ev(2)]
        forward = apply_events(fresh(), events, T0, LONG).new_position
        backward = apply_events(fresh(), list(reversed(events)), T0, LONG).new_position
        assert forward == backward
        assert forward.on_hand == 6

    def test_last_event_time_is_the_newest_occurrence_not_the_last_arrival(self) -> None:
        late_clock = ev(1, at=T0 + timedelta(hours=2))
        result = apply_events(fresh(), [late_clock, ev(2, at=T0)], T0, LONG)
        assert result.new_position.last_event_at == T0 + timedelta(hours=2)


class TestDuplicates:
    def test_redelivered_event_changes_nothing(self) -> None:
        first = apply_events(fresh(), [ev(1, "adjusted", "5")], T0, LONG)
        again = apply_events(first.new_position, [ev(1, "adjusted", "5")], T0, LONG)
        assert again.new_position == first.new_position
        assert seqs(again.duplicates) == [1]
        assert again.applied == ()
        assert not again.position_changed
        assert again.consumed_event_ids == ()

    def test_same_event_id_with_another_sequence_is_a_duplicate(self) -> None:
        first = apply_events(fresh(), [ev(1, "adjusted", "5", event_id="x")], T0, LONG)
        again = apply_events(first.new_position, [ev(2, "adjusted", "5", event_id="x")], T0, LONG)
        assert again.new_position.on_hand == 5
        assert again.new_position.last_sequence == 1
        assert seqs(again.duplicates) == [2]

    def test_another_event_claiming_an_applied_sequence_is_a_duplicate(self) -> None:
        first = apply_events(fresh(), [ev(1, "adjusted", "5")], T0, LONG)
        impostor = ev(1, "adjusted", "100", event_id="other")
        again = apply_events(first.new_position, [impostor], T0, LONG)
        assert again.new_position.on_hand == 5
        assert again.duplicates == (impostor,)

    def test_copies_inside_one_batch_fold_once(self) -> None:
        result = apply_events(fresh(), [ev(1, "adjusted", "5")] * 3, T0, LONG)
        assert result.new_position.on_hand == 5
        assert len(result.applied) == 1
        assert len(result.duplicates) == 2

    def test_redelivery_of_a_held_event_is_a_duplicate(self) -> None:
        first = apply_events(fresh(), [ev(3, "adjusted", "5")], T0, LONG)
        again = apply_events(first.new_position, [ev(3, "adjusted", "5")], T0, LONG)
        assert seqs(again.duplicates) == [3]
        assert again.new_position == first.new_position

    def test_second_event_for_a_held_sequence_is_a_duplicate(self) -> None:
        first = apply_events(fresh(), [ev(3, "adjusted", "5")], T0, LONG)
        rival = ev(3, "adjusted", "9", event_id="rival")
        again = apply_events(first.new_position, [rival], T0, LONG)
        assert again.duplicates == (rival,)
        assert [held.event.event_id for held in again.new_position.held] == ["e3"]


class TestOutOfOrder:
    def test_event_after_a_gap_waits_until_the_gap_fills(self) -> None:
        held = apply_events(fresh(), [ev(2, "adjusted", "5"), ev(3, "adjusted", "1")], T0, LONG)
        assert held.new_position.on_hand == 0
        assert held.new_position.last_sequence == 0
        assert seqs(held.held) == [2, 3]
        assert held.consumed_event_ids == ()
        filled = apply_events(held.new_position, [ev(1, "counted", "10")], T0, LONG)
        assert filled.new_position.on_hand == 16
        assert filled.new_position.held == ()
        assert seqs(filled.applied) == [1, 2, 3]
        assert filled.consumed_event_ids == ("e1", "e2", "e3")

    def test_held_event_records_its_arrival_time(self) -> None:
        result = apply_events(fresh(), [ev(5)], T0 + timedelta(minutes=3), LONG)
        assert result.new_position.held[0].held_at == T0 + timedelta(minutes=3)
        assert result.new_position.gap_deadline(LONG) == T0 + timedelta(minutes=3) + LONG

    def test_held_events_stay_held_while_the_gap_is_open(self) -> None:
        first = apply_events(fresh(), [ev(3)], T0, LONG)
        second = apply_events(first.new_position, [ev(5)], T0 + timedelta(minutes=1), LONG)
        assert [held.event.sequence for held in second.new_position.held] == [3, 5]
        assert seqs(second.held) == [5]


class TestCounts:
    def test_count_ahead_of_a_gap_applies_at_once(self) -> None:
        result = apply_events(fresh(), [ev(5, "counted", "20")], T0, LONG)
        position = result.new_position
        assert position.on_hand == 20
        assert position.last_sequence == 5
        assert position.last_counted_sequence == 5
        assert position.missing == (SequenceRange(1, 4),)

    def test_count_supersedes_held_on_hand_deltas_below_it(self) -> None:
        held = apply_events(fresh(), [ev(2, "adjusted", "7"), ev(6, "adjusted", "1")], T0, LONG)
        result = apply_events(held.new_position, [ev(4, "counted", "20")], T0, LONG)
        assert seqs(result.superseded) == [2]
        assert result.new_position.on_hand == 20
        assert [h.event.sequence for h in result.new_position.held] == [6]
        assert result.new_position.missing == (SequenceRange(1, 1), SequenceRange(3, 3))
        assert "e2" in result.consumed_event_ids

    def test_count_folds_in_held_reservation_deltas_below_it(self) -> None:
        held = apply_events(fresh(), [ev(2, "reserved", "3")], T0, LONG)
        result = apply_events(held.new_position, [ev(4, "counted", "20")], T0, LONG)
        assert result.new_position.erp_reserved == 3
        assert seqs(result.applied) == [2, 4]

    def test_count_releases_held_successors(self) -> None:
        held = apply_events(fresh(), [ev(5, "adjusted", "-2")], T0, LONG)
        result = apply_events(held.new_position, [ev(4, "counted", "10")], T0, LONG)
        assert result.new_position.on_hand == 8
        assert result.new_position.last_sequence == 5
        assert result.new_position.held == ()

    def test_straggling_delta_below_a_count_is_superseded(self) -> None:
        counted = apply_events(fresh(), [ev(3, "counted", "10")], T0, LONG)
        late = apply_events(counted.new_position, [ev(2, "adjusted", "5")], T0, LONG)
        assert late.new_position.on_hand == 10
        assert seqs(late.superseded) == [2]
        assert late.new_position.missing == (SequenceRange(1, 1),)
        assert late.consumed_event_ids == ("e2",)

    def test_straggling_reservation_below_a_count_still_applies(self) -> None:
        counted = apply_events(fresh(), [ev(3, "counted", "10")], T0, LONG)
        late = apply_events(counted.new_position, [ev(1, "reserved", "4")], T0, LONG)
        assert late.new_position.erp_reserved == 4
        assert late.new_position.missing == (SequenceRange(2, 2),)

    def test_straggling_count_below_a_newer_count_is_superseded(self) -> None:
        counted = apply_events(fresh(), [ev(3, "counted", "10")], T0, LONG)
        late = apply_events(counted.new_position, [ev(2, "counted", "99")], T0, LONG)
        assert late.new_position.on_hand == 10
        assert seqs(late.superseded) == [2]

    def test_repeat_of_a_straggler_is_a_duplicate(self) -> None:
        counted = apply_events(fresh(), [ev(3, "counted", "10")], T0, LONG)
        late = apply_events(counted.new_position, [ev(1, "reserved", "4")], T0, LONG)
        again = apply_events(late.new_position, [ev(1, "reserved", "4")], T0, LONG)
        assert again.new_position.erp_reserved == 4
        assert seqs(again.duplicates) == [1]


class TestGapsThatNeverFill:
    def test_hold_timeout_skips_the_gap_and_applies_held_events(self) -> None:
        held = apply_events(fresh(), [ev(3, "adjusted", "5"), ev(4, "adjusted", "1")], T0, LONG)
        later = T0 + LONG
        swept = apply_events(held.new_position, [], later, LONG)
        assert [(g.first, g.last, g.reason) for g in swept.gaps_skipped] == [
            (1, 2, GapReason.HOLD_TIMEOUT)
        ]
        assert swept.new_position.on_hand == 6
        assert swept.new_position.last_sequence == 4
        assert swept.new_position.missing == (SequenceRange(1, 2),)
        assert seqs(swept.applied) == [3, 4]

    def test_no_skip_before_the_timeout(self) -> None:
        held = apply_events(fresh(), [ev(3)], T0, LONG)
        swept = apply_events(held.new_position, [], T0 + LONG - timedelta(seconds=1), LONG)
        assert swept.gaps_skipped == ()
        assert not swept.position_changed

    def test_timeout_counts_from_arrival_not_from_occurrence(self) -> None:
        old_event = ev(3, at=T0 - timedelta(days=2))
        result = apply_events(fresh(), [old_event], T0, LONG)
        assert result.gaps_skipped == ()
        assert seqs(result.held) == [3]

    def test_every_gap_before_a_timed_out_event_is_skipped(self) -> None:
        first = apply_events(fresh(), [ev(5)], T0, LONG)
        second = apply_events(first.new_position, [ev(3)], T0 + timedelta(minutes=30), LONG)
        swept = apply_events(second.new_position, [], T0 + LONG, LONG)
        assert [(g.first, g.last) for g in swept.gaps_skipped] == [(1, 2), (4, 4)]
        assert swept.new_position.held == ()
        assert swept.new_position.missing == (SequenceRange(1, 2), SequenceRange(4, 4))

    def test_full_buffer_skips_the_gap(self) -> None:
        policy = FoldPolicy(max_held=3)
        result = apply_events(fresh(), [ev(s) for s in range(3, 7)], T0, LONG, policy)
        assert [(g.first, g.last, g.reason) for g in result.gaps_skipped] == [
            (1, 2, GapReason.BUFFER_FULL)
        ]
        assert result.new_position.on_hand == 4
        assert result.new_position.held == ()

    def test_buffer_at_its_limit_keeps_waiting(self) -> None:
        policy = FoldPolicy(max_held=3)
        result = apply_events(fresh(), [ev(s) for s in range(3, 6)], T0, LONG, policy)
        assert result.gaps_skipped == ()
        assert len(result.new_position.held) == 3

    def test_zero_timeout_never_holds(self) -> None:
        result = apply_events(fresh(), [ev(4, "adjusted", "2")], T0, timedelta(0))
        assert result.new_position.on_hand == 2
        assert result.held == ()

    def test_straggler_after_a_skipped_gap_still_applies(self) -> None:
        skipped = apply_events(fresh(), [ev(2, "adjusted", "5")], T0, timedelta(0))
        late = apply_events(skipped.new_position, [ev(1, "adjusted", "3")], T0, LONG)
        assert late.new_position.on_hand == 8
        assert late.new_position.missing == ()
        assert seqs(late.applied) == [1]

    def test_straggling_count_after_a_skipped_gap_is_stale(self) -> None:
        skipped = apply_events(fresh(), [ev(2, "adjusted", "5")], T0, timedelta(0))
        late = apply_events(skipped.new_position, [ev(1, "counted", "40")], T0, LONG)
        assert late.new_position.on_hand == 5
        assert seqs(late.stale) == [1]
        assert late.consumed_event_ids == ("e1",)

    def test_missing_ranges_are_bounded_and_the_oldest_forgotten(self) -> None:
        policy = FoldPolicy(max_missing_ranges=2)
        events = [ev(2), ev(4), ev(6), ev(8)]
        result = apply_events(fresh(), events, T0, timedelta(0), policy)
        assert result.new_position.missing == (SequenceRange(5, 5), SequenceRange(7, 7))
        assert result.forgotten_missing == (SequenceRange(1, 1), SequenceRange(3, 3))
        forgotten = apply_events(result.new_position, [ev(1)], T0, LONG, policy)
        assert seqs(forgotten.duplicates) == [1]


class TestBookkeeping:
    def test_recent_event_ids_keep_the_newest_sequences_only(self) -> None:
        policy = FoldPolicy(recent_event_ids=3)
        result = apply_events(fresh(), [ev(s) for s in range(1, 7)], T0, LONG, policy)
        assert result.new_position.recent_events == (
            ConsumedEvent(4, "e4"),
            ConsumedEvent(5, "e5"),
            ConsumedEvent(6, "e6"),
        )

    def test_known_ids_include_held_events(self) -> None:
        result = apply_events(fresh(), [ev(1), ev(3)], T0, LONG)
        assert result.new_position.known_event_ids == frozenset({"e1", "e3"})

    def test_pending_reservations_and_safety_stock_are_left_alone(self) -> None:
        start = fresh(reservations={"o1": Decimal(2)}, safety_stock=Decimal(1))
        result = apply_events(start, [ev(1, "counted", "10")], T0, LONG)
        assert dict(result.new_position.reservations) == {"o1": Decimal(2)}
        assert result.available_after == 7

    def test_event_for_another_position_is_refused(self) -> None:
        with pytest.raises(PositionMismatch):
            apply_events(fresh(), [ev(1, location="OTHER")], T0, LONG)

    def test_naive_now_is_refused(self) -> None:
        with pytest.raises(InvalidStockInput):
            apply_events(fresh(), [ev(1)], datetime(2024, 5, 1), LONG)

    def test_negative_timeout_is_refused(self) -> None:
        with pytest.raises(InvalidStockInput):
            apply_events(fresh(), [ev(1)], T0, timedelta(seconds=-1))

    def test_position_input_is_never_modified(self) -> None:
        start = fresh()
        apply_events(start, [ev(1, "counted", "5"), ev(3)], T0, LONG)
        assert start == fresh()
