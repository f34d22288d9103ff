"""Invariants of a stored position, its stored form, and the missing-sequence ranges."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.stock import (
    ConsumedEvent,
    HeldEvent,
    InvalidStockInput,
    InventoryEvent,
    InventoryEventKind,
    SequenceRange,
    StockPosition,
    apply_events,
    position_from_record,
    position_to_record,
    reserve,
)
from shared.domain.stock.sequences import add_range, keep_newest, ranges_contain, remove_sequence

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ev(sequence: int, kind: str = "adjusted", quantity: str = "1") -> InventoryEvent:
    return InventoryEvent(
        event_id=f"e{sequence}",
        sku="SKU-1",
        location="MAIN",
        kind=InventoryEventKind(kind),
        quantity=Decimal(quantity),
        sequence=sequence,
        occurred_at=T0 + timedelta(seconds=sequence),
        source="wms",
    )


def busy_position() -> StockPosition:
    """A position using every field: reservations, held events, missing ranges, correction."""
    start = replace(
        StockPosition.new("SKU-1", "MAIN", safety_stock=Decimal("1.5")),
        reconciled_as_of=T0 - timedelta(days=1),
    )
    events = [ev(1, "counted", "40"), ev(2, "reserved", "2.25"), ev(5, "counted", "30"), ev(8)]
    position = apply_events(start, events, T0, timedelta(hours=1)).new_position
    return reserve(position, Decimal("4.5"), "order-1").position


class TestPositionInvariants:
    def test_new_position_is_empty(self) -> None:
        position = StockPosition.new("SKU-1", "MAIN")
        zero = Decimal(0)
        assert (position.on_hand, position.erp_reserved, position.pending_reserved) == (
            zero,
            zero,
            zero,
        )
        assert position.last_sequence == 0
        assert position.oldest_held_at is None
        assert position.gap_deadline(timedelta(minutes=5)) is None

    @pytest.mark.parametrize(
        "changes",
        [
            {"sku": ""},
            {"location": " MAIN"},
            {"on_hand": 1.5},
            {"on_hand": Decimal("Infinity")},
            {"safety_stock": Decimal(-1)},
            {"reservations": {"o1": Decimal(0)}},
            {"reservations": {"": Decimal(1)}},
            {"last_event_at": datetime(2024, 5, 1)},  # naive on purpose
            {"last_counted_sequence": 3},
            {"last_sequence": -1},
            {"last_sequence": 5, "missing": (SequenceRange(4, 5),)},
            {"last_sequence": 9, "missing": (SequenceRange(1, 2), SequenceRange(3, 4))},
            {"held": (HeldEvent(ev(2), T0), HeldEvent(ev(1), T0))},
            {"last_sequence": 2, "held": (HeldEvent(ev(2), T0),)},
        ],
    )
    def test_broken_invariants_are_refused(self, changes: dict[str, Any]) -> None:
        with pytest.raises(InvalidStockInput):
            replace(StockPosition.new("SKU-1", "MAIN"), **changes)

    def test_reservations_cannot_be_changed_in_place(self) -> None:
        position = busy_position()
        with pytest.raises(TypeError):
            position.reservations["order-2"] = Decimal(1)  # type: ignore[index]

    def test_times_are_kept_in_utc(self) -> None:
        local = datetime(2024, 5, 1, 14, 0, tzinfo=UTC).astimezone()
        position = replace(StockPosition.new("SKU-1", "MAIN"), last_event_at=local)
        assert position.last_event_at is not None
        assert position.last_event_at.tzinfo is UTC


class TestRecords:
    def test_round_trip_keeps_every_field(self) -> None:
        position = busy_position()
        assert position.held
        assert position.missing
        record = position_to_record(position)
        assert position_from_record(record) == position
        assert position_from_record(json.dumps(record)) == position

    def test_record_is_plain_json_with_decimal_strings(self) -> None:
        record = position_to_record(busy_position())
        assert record["onHand"] == "30"
        assert record["reservations"] == {"order-1": "4.5"}
        assert record["held"][0]["event"]["eventId"] == "e8"
        assert record["lastEventAt"] == "2024-05-01T12:00:05Z"  # e8 is still held
        json.dumps(record)  # raises if anything is not JSON

    @pytest.mark.parametrize(
        "damage",
        [
            {"v": 2},
            {"onHand": "NaN"},
            {"lastSequence": -1},
            {"safetyStock": "-1"},
            {"missing": [[5, 3]]},
            {"held": [{"event": {"eventId": "x"}, "heldAt": "2024-05-01T00:00:00Z"}]},
            {"surprise": True},
        ],
    )
    def test_corrupt_record_is_refused(self, damage: dict[str, Any]) -> None:
        record = {**position_to_record(busy_position()), **damage}
        with pytest.raises(InvalidStockInput):
            position_from_record(record)

    def test_unreadable_record_is_refused(self) -> None:
        with pytest.raises(InvalidStockInput):
            position_from_record("{not json")

    def test_recent_events_round_trip_in_order(self) -> None:
        position = busy_position()
        restored = position_from_record(position_to_record(position))
        assert restored.recent_events == tuple(sorted(restored.recent_events))
        assert ConsumedEvent(5, "e5") in restored.recent_events


class TestSequenceRanges:
    def test_adding_merges_touching_and_overlapping_ranges(self) -> None:
        ranges = add_range((), 5, 6)
        ranges = add_range(ranges, 1, 2)
        assert ranges == (SequenceRange(1, 2), SequenceRange(5, 6))
        assert add_range(ranges, 3, 4) == (SequenceRange(1, 6),)
        assert add_range(ranges, 2, 9) == (SequenceRange(1, 9),)
        assert add_range(ranges, 4, 3) == ranges

    def test_removing_splits_a_range(self) -> None:
        ranges = (SequenceRange(1, 5),)
        assert remove_sequence(ranges, 3) == (SequenceRange(1, 2), SequenceRange(4, 5))
        assert remove_sequence(ranges, 1) == (SequenceRange(2, 5),)
        assert remove_sequence((SequenceRange(4, 4),), 4) == ()
        assert remove_sequence(ranges, 9) == ranges

    def test_membership(self) -> None:
        ranges = (SequenceRange(2, 3), SequenceRange(10, 2_000_000))
        assert [ranges_contain(ranges, s) for s in (1, 2, 3, 4, 10, 2_000_000, 2_000_001)] == [
            False,
            True,
            True,
            False,
            True,
            True,
            False,
        ]
        assert not ranges_contain((), 1)

    def test_keeping_the_newest_drops_the_lowest(self) -> None:
        ranges = (SequenceRange(1, 1), SequenceRange(3, 3), SequenceRange(5, 5))
        assert keep_newest(ranges, 2) == (ranges[1:], ranges[:1])
        assert keep_newest(ranges, 3) == (ranges, ())

    @pytest.mark.parametrize(("first", "last"), [(0, 1), (3, 2)])
    def test_invalid_range_is_refused(self, first: int, last: int) -> None:
        with pytest.raises(InvalidStockInput):
            SequenceRange(first, last)
