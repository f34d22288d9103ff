"""Available to sell per location and per channel, and channel allocation config."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.domain.stock import (
    ChannelAllocation,
    ChannelAllocations,
    InvalidStockInput,
    LocationAvailability,
    PositionMismatch,
    StockPosition,
    UnknownChannel,
    available_to_sell,
    channel_availability,
    set_safety_stock,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def position(
    location: str = "MAIN",
    on_hand: str = "0",
    erp_reserved: str = "0",
    safety: str = "0",
    pending: dict[str, str] | None = None,
    last_event_at: datetime | None = None,
    sku: str = "SKU-1",
) -> StockPosition:
    return StockPosition(
        sku=sku,
        location=location,
        on_hand=Decimal(on_hand),
        erp_reserved=Decimal(erp_reserved),
        safety_stock=Decimal(safety),
        reservations={order: Decimal(qty) for order, qty in (pending or {}).items()},
        last_event_at=last_event_at,
    )


class TestAvailableToSell:
    def test_on_hand_minus_every_reservation_minus_safety_stock(self) -> None:
        stock = position(on_hand="100", erp_reserved="20", safety="5", pending={"o1": "7.5"})
        assert available_to_sell(stock) == Decimal("67.5")

    def test_never_below_zero(self) -> None:
        assert available_to_sell(position(on_hand="3", erp_reserved="10")) == 0
        assert available_to_sell(position(on_hand="-4")) == 0
        assert available_to_sell(position(on_hand="5", safety="6")) == 0

    def test_negative_erp_reserved_never_adds_stock(self) -> None:
        assert available_to_sell(position(on_hand="10", erp_reserved="-4")) == 10

    def test_safety_stock_can_be_changed(self) -> None:
        stock = set_safety_stock(position(on_hand="10"), Decimal(4))
        assert available_to_sell(stock) == 6
        with pytest.raises(InvalidStockInput):
            set_safety_stock(stock, Decimal(-1))

    def test_location_breakdown_uses_the_contract_fields(self) -> None:
        stock = position(on_hand="50", erp_reserved="10", safety="2", pending={"o1": "3"})
        line = LocationAvailability.of(stock)
        assert line == LocationAvailability(
            location="MAIN",
            available=Decimal(35),
            on_hand=Decimal(50),
            erp_demand=Decimal(0),
            reserved=Decimal(10),
            pending_holds=Decimal(3),
            safety_stock=Decimal(2),
            expected=Decimal(0),
        )


class TestChannelAllocations:
    def test_config_with_all_and_listed_locations(self) -> None:
        allocations = ChannelAllocations.from_config({"web": "*", "b2b-nordics": ["OSLO", "STO"]})
        assert allocations.for_channel("web").locations is None
        nordics = allocations.for_channel("b2b-nordics")
        assert nordics.locations == frozenset({"OSLO", "STO"})
        assert nordics.allows("OSLO")
        assert not nordics.allows("MAIN")

    def test_unknown_channel_is_a_named_error(self) -> None:
        allocations = ChannelAllocations.from_config({"web": "*"})
        with pytest.raises(UnknownChannel):
            allocations.for_channel("b2c")

    @pytest.mark.parametrize(
        "raw",
        [
            {"web": []},
            {"web": "all"},
            {"web": ["MAIN", ""]},
            {"": "*"},
            {"web shop": "*"},
            ["web"],
            "web",
        ],
    )
    def test_malformed_config_is_refused(self, raw: object) -> None:
        with pytest.raises(InvalidStockInput):
            ChannelAllocations.from_config(raw)


class TestChannelAvailability:
    def test_sums_the_allowed_locations_only(self) -> None:
        stock = [
            position("OSLO", on_hand="10", last_event_at=T0),
            position("MAIN", on_hand="100"),
            position("STO", on_hand="5", erp_reserved="1"),
        ]
        nordics = ChannelAllocation("b2b-nordics", frozenset({"OSLO", "STO"}))
        answer = channel_availability("SKU-1", stock, nordics)
        assert answer.available == 14
        assert [line.location for line in answer.locations] == ["OSLO", "STO"]

    def test_an_oversold_location_does_not_eat_another_ones_stock(self) -> None:
        stock = [position("A", on_hand="2", erp_reserved="9"), position("B", on_hand="4")]
        answer = channel_availability("SKU-1", stock, ChannelAllocation("web", None))
        assert answer.available == 4

    def test_as_of_is_the_newest_event(self) -> None:
        later = datetime(2024, 5, 2, tzinfo=UTC)
        stock = [position("A", last_event_at=T0), position("B", last_event_at=later)]
        answer = channel_availability("SKU-1", stock, ChannelAllocation("web", None))
        assert answer.as_of == later

    def test_no_positions_means_nothing_available(self) -> None:
        answer = channel_availability("SKU-1", [], ChannelAllocation("web", None))
        assert answer.available == 0
        assert answer.locations == ()
        assert answer.as_of is None

    def test_position_of_another_item_is_refused(self) -> None:
        with pytest.raises(PositionMismatch):
            channel_availability("SKU-1", [position(sku="SKU-2")], ChannelAllocation("web", None))

    def test_two_positions_for_one_location_are_refused(self) -> None:
        with pytest.raises(PositionMismatch):
            channel_availability(
                "SKU-1", [position("A"), position("A")], ChannelAllocation("web", None)
            )
