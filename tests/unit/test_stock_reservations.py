"""This product's pending reservations: refused when short, idempotent per order id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.domain.stock import (
    InsufficientStock,
    InvalidStockInput,
    InventoryEvent,
    InventoryEventKind,
    ReservationConflict,
    StockPosition,
    apply_events,
    available_to_sell,
    release,
    reserve,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def stocked(on_hand: str = "10", safety: str = "0") -> StockPosition:
    return StockPosition(
        sku="SKU-1", location="MAIN", on_hand=Decimal(on_hand), safety_stock=Decimal(safety)
    )


class TestReserve:
    def test_reserving_lowers_available(self) -> None:
        change = reserve(stocked("10"), Decimal(4), "order-1")
        assert change.changed
        assert change.available_before == 10
        assert change.available_after == 6
        assert dict(change.position.reservations) == {"order-1": Decimal(4)}
        assert change.position.pending_reserved == 4

    def test_exactly_what_is_available_can_be_reserved(self) -> None:
        change = reserve(stocked("10", safety="2"), Decimal(8), "order-1")
        assert available_to_sell(change.position) == 0

    def test_more_than_available_is_refused_and_nothing_held(self) -> None:
        start = reserve(stocked("10", safety="2"), Decimal(5), "order-1").position
        with pytest.raises(InsufficientStock) as refused:
            reserve(start, Decimal("3.01"), "order-2")
        assert refused.value.available == 3
        assert refused.value.requested == Decimal("3.01")
        assert "order-2" not in start.reservations

    def test_repeating_a_reservation_changes_nothing(self) -> None:
        first = reserve(stocked("10"), Decimal(10), "order-1")
        again = reserve(first.position, Decimal(10), "order-1")
        assert not again.changed
        assert again.position == first.position

    def test_a_different_amount_for_the_same_order_conflicts(self) -> None:
        first = reserve(stocked("10"), Decimal(2), "order-1")
        with pytest.raises(ReservationConflict) as conflict:
            reserve(first.position, Decimal(3), "order-1")
        assert conflict.value.held == 2

    @pytest.mark.parametrize("quantity", [Decimal(0), Decimal(-1), Decimal("NaN")])
    def test_quantity_must_be_positive(self, quantity: Decimal) -> None:
        with pytest.raises(InvalidStockInput):
            reserve(stocked(), quantity, "order-1")

    def test_order_id_must_be_given(self) -> None:
        with pytest.raises(InvalidStockInput):
            reserve(stocked(), Decimal(1), "")


class TestRelease:
    def test_release_gives_the_stock_back_once(self) -> None:
        held = reserve(stocked("10"), Decimal(4), "order-1").position
        first = release(held, "order-1")
        assert first.changed
        assert first.quantity == 4
        assert first.available_after == 10
        second = release(first.position, "order-1")
        assert not second.changed
        assert second.quantity == 0
        assert second.position == first.position

    def test_release_of_an_unknown_order_changes_nothing(self) -> None:
        held = reserve(stocked("10"), Decimal(4), "order-1").position
        change = release(held, "order-9")
        assert not change.changed
        assert change.position == held

    def test_releasing_one_order_keeps_the_others(self) -> None:
        position = reserve(stocked("10"), Decimal(4), "order-1").position
        position = reserve(position, Decimal(3), "order-2").position
        assert dict(release(position, "order-1").position.reservations) == {"order-2": Decimal(3)}


def test_reservations_survive_event_folds() -> None:
    held = reserve(stocked("10"), Decimal(4), "order-1").position
    count = InventoryEvent(
        event_id="c1",
        sku="SKU-1",
        location="MAIN",
        kind=InventoryEventKind.COUNTED,
        quantity=Decimal(3),
        sequence=1,
        occurred_at=T0,
        source="wms",
    )
    result = apply_events(held, [count], T0, timedelta(minutes=5))
    assert dict(result.new_position.reservations) == {"order-1": Decimal(4)}
    assert result.available_after == 0
    assert result.available_before == 6
