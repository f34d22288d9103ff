"""Reconciliation with the ERP: corrections, and the races with events around the snapshot."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.domain.stock import (
    ErpStockFigures,
    InvalidStockInput,
    InventoryEvent,
    InventoryEventKind,
    PositionMismatch,
    ReconcileOutcome,
    StaleCorrection,
    StockPosition,
    apply_correction,
    apply_events,
    reconcile,
    reserve,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LONG = timedelta(hours=1)


def ev(sequence: int, kind: str, quantity: str, at: datetime) -> InventoryEvent:
    return InventoryEvent(
        event_id=f"e{sequence}",
        sku="SKU-1",
        location="MAIN",
        kind=InventoryEventKind(kind),
        quantity=Decimal(quantity),
        sequence=sequence,
        occurred_at=at,
        source="wms",
    )


def folded(*events: InventoryEvent) -> StockPosition:
    return apply_events(StockPosition.new("SKU-1", "MAIN"), events, T0, LONG).new_position


class TestReconcile:
    def test_matching_figures_need_no_correction(self) -> None:
        position = folded(ev(1, "counted", "10", T0), ev(2, "reserved", "2", T0))
        result = reconcile(
            position, ErpStockFigures(Decimal(10), Decimal(2)), T0 + timedelta(minutes=1)
        )
        assert result.outcome is ReconcileOutcome.IN_SYNC
        assert result.correction is None

    def test_drift_gives_an_absolute_correction(self) -> None:
        position = folded(ev(1, "counted", "10", T0), ev(2, "reserved", "2", T0))
        result = reconcile(
            position, ErpStockFigures(Decimal(7), Decimal(3)), T0 + timedelta(minutes=1)
        )
        assert result.outcome is ReconcileOutcome.DRIFTED
        assert result.on_hand_drift == -3
        assert result.erp_reserved_drift == 1
        correction = result.correction
        assert correction is not None
        assert (correction.on_hand, correction.erp_reserved) == (Decimal(7), Decimal(3))
        corrected = apply_correction(position, correction)
        assert (corrected.on_hand, corrected.erp_reserved) == (Decimal(7), Decimal(3))
        assert corrected.reconciled_as_of == T0 + timedelta(minutes=1)
        assert corrected.last_sequence == position.last_sequence

    def test_position_with_a_newer_event_is_not_overwritten(self) -> None:
        position = folded(ev(1, "counted", "10", T0 + timedelta(minutes=5)))
        result = reconcile(
            position, ErpStockFigures(Decimal(4), Decimal(0)), T0 + timedelta(minutes=1)
        )
        assert result.outcome is ReconcileOutcome.DEFERRED_NEWER_EVENTS
        assert result.correction is None
        assert result.on_hand_drift == -6

    def test_never_touched_position_can_be_corrected(self) -> None:
        position = StockPosition.new("SKU-1", "MAIN")
        correction = reconcile(position, ErpStockFigures(Decimal(4), Decimal(0)), T0).correction
        assert correction is not None
        assert apply_correction(position, correction).on_hand == 4

    def test_negative_erp_on_hand_is_accepted_but_not_negative_reservations(self) -> None:
        position = StockPosition.new("SKU-1", "MAIN")
        assert (
            reconcile(position, ErpStockFigures(Decimal(-2), Decimal(0)), T0).correction is not None
        )
        with pytest.raises(InvalidStockInput):
            reconcile(position, ErpStockFigures(Decimal(0), Decimal(-1)), T0)

    def test_naive_snapshot_time_is_refused(self) -> None:
        with pytest.raises(InvalidStockInput):
            reconcile(
                StockPosition.new("SKU-1", "MAIN"),
                ErpStockFigures(Decimal(1), Decimal(0)),
                T0.replace(tzinfo=None),
            )

    def test_older_snapshot_than_the_last_correction_is_superseded(self) -> None:
        position = replace(StockPosition.new("SKU-1", "MAIN"), reconciled_as_of=T0)
        result = reconcile(
            position, ErpStockFigures(Decimal(5), Decimal(0)), T0 - timedelta(minutes=1)
        )
        assert result.outcome is ReconcileOutcome.SUPERSEDED_SNAPSHOT
        assert result.correction is None


class TestApplyCorrection:
    def test_applying_twice_gives_the_same_position(self) -> None:
        position = folded(ev(1, "counted", "10", T0))
        correction = reconcile(
            position, ErpStockFigures(Decimal(8), Decimal(0)), T0 + timedelta(minutes=1)
        )
        assert correction.correction is not None
        once = apply_correction(position, correction.correction)
        assert apply_correction(once, correction.correction) == once

    def test_correction_is_refused_after_a_newer_event_was_folded_in(self) -> None:
        position = folded(ev(1, "counted", "10", T0))
        result = reconcile(
            position, ErpStockFigures(Decimal(8), Decimal(0)), T0 + timedelta(minutes=1)
        )
        assert result.correction is not None
        moved = apply_events(
            position, [ev(2, "adjusted", "5", T0 + timedelta(minutes=2))], T0, LONG
        ).new_position
        with pytest.raises(StaleCorrection):
            apply_correction(moved, result.correction)

    def test_older_correction_does_not_undo_a_newer_one(self) -> None:
        position = StockPosition.new("SKU-1", "MAIN")
        old = reconcile(position, ErpStockFigures(Decimal(1), Decimal(0)), T0).correction
        new = reconcile(
            position, ErpStockFigures(Decimal(2), Decimal(0)), T0 + timedelta(minutes=1)
        ).correction
        assert old is not None
        assert new is not None
        corrected = apply_correction(position, new)
        with pytest.raises(StaleCorrection):
            apply_correction(corrected, old)

    def test_pending_reservations_and_safety_stock_stay(self) -> None:
        position = replace(folded(ev(1, "counted", "10", T0)), safety_stock=Decimal(1))
        position = reserve(position, Decimal(3), "order-1").position
        correction = reconcile(
            position, ErpStockFigures(Decimal(9), Decimal(0)), T0 + timedelta(seconds=1)
        )
        assert correction.correction is not None
        corrected = apply_correction(position, correction.correction)
        assert dict(corrected.reservations) == {"order-1": Decimal(3)}
        assert corrected.safety_stock == 1

    def test_correction_for_another_position_is_refused(self) -> None:
        other = StockPosition.new("SKU-2", "MAIN")
        correction = reconcile(other, ErpStockFigures(Decimal(1), Decimal(0)), T0).correction
        assert correction is not None
        with pytest.raises(PositionMismatch):
            apply_correction(StockPosition.new("SKU-1", "MAIN"), correction)


class TestEventsAroundTheSnapshot:
    def test_event_in_flight_during_the_read_is_not_counted_twice(self) -> None:
        # The ERP already shows the adjustment (-2 at 12:00:30) when it is read at 12:01,
        # but the event reaches the projection only after the correction.
        position = folded(ev(1, "counted", "10", T0))
        snapshot_at = T0 + timedelta(minutes=1)
        correction = reconcile(
            position, ErpStockFigures(Decimal(8), Decimal(0)), snapshot_at
        ).correction
        assert correction is not None
        corrected = apply_correction(position, correction)
        late = apply_events(
            corrected, [ev(2, "adjusted", "-2", T0 + timedelta(seconds=30))], T0, LONG
        )
        assert late.new_position.on_hand == 8
        assert [event.sequence for event in late.covered] == [2]
        assert late.new_position.last_sequence == 2
        assert late.consumed_event_ids == ("e2",)

    def test_event_after_the_snapshot_still_applies(self) -> None:
        position = folded(ev(1, "counted", "10", T0))
        snapshot_at = T0 + timedelta(minutes=1)
        correction = reconcile(
            position, ErpStockFigures(Decimal(8), Decimal(0)), snapshot_at
        ).correction
        assert correction is not None
        corrected = apply_correction(position, correction)
        later = apply_events(
            corrected, [ev(2, "reserved", "3", snapshot_at + timedelta(seconds=1))], T0, LONG
        )
        assert later.new_position.erp_reserved == 3
        assert later.covered == ()

    def test_held_event_older_than_the_snapshot_is_covered_when_released(self) -> None:
        position = folded(ev(1, "counted", "10", T0))
        waiting = apply_events(
            position, [ev(3, "adjusted", "-4", T0 + timedelta(seconds=20))], T0, LONG
        ).new_position
        correction = reconcile(
            waiting, ErpStockFigures(Decimal(5), Decimal(0)), T0 + timedelta(minutes=1)
        )
        assert correction.correction is not None
        corrected = apply_correction(waiting, correction.correction)
        filled = apply_events(
            corrected, [ev(2, "adjusted", "-1", T0 + timedelta(seconds=10))], T0, LONG
        )
        assert filled.new_position.on_hand == 5
        assert [event.sequence for event in filled.covered] == [2, 3]
