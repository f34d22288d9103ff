"""Stock level alerts: raised exactly when availability crosses zero or the low-stock level."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.domain.stock import (
    AlertScope,
    CrossingDirection,
    InvalidStockInput,
    StockLevel,
    StockThresholds,
    Threshold,
    ThresholdCrossing,
    detect_crossing,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LOW5 = StockThresholds(low_stock_level=Decimal(5))


def crossing(
    before: str, after: str, thresholds: StockThresholds = LOW5
) -> ThresholdCrossing | None:
    return detect_crossing(
        "SKU-1", AlertScope.LOCATION, "MAIN", Decimal(before), Decimal(after), thresholds, T0
    )


class TestLevels:
    @pytest.mark.parametrize(
        ("available", "level"),
        [
            ("0", StockLevel.OUT_OF_STOCK),
            ("0.01", StockLevel.LOW_STOCK),
            ("5", StockLevel.LOW_STOCK),
            ("5.01", StockLevel.IN_STOCK),
        ],
    )
    def test_level_boundaries(self, available: str, level: StockLevel) -> None:
        assert LOW5.level_of(Decimal(available)) is level

    def test_zero_low_level_switches_low_stock_off(self) -> None:
        assert StockThresholds().level_of(Decimal("0.5")) is StockLevel.IN_STOCK

    def test_negative_low_level_is_refused(self) -> None:
        with pytest.raises(InvalidStockInput):
            StockThresholds(low_stock_level=Decimal(-1))


class TestCrossings:
    def test_in_stock_to_out_of_stock(self) -> None:
        alert = crossing("12", "0")
        assert alert is not None
        assert alert.level_before is StockLevel.IN_STOCK
        assert alert.level_after is StockLevel.OUT_OF_STOCK
        assert alert.direction is CrossingDirection.DOWN
        assert alert.crossed == (Threshold.ZERO, Threshold.LOW_STOCK)

    def test_back_in_stock(self) -> None:
        alert = crossing("0", "3")
        assert alert is not None
        assert alert.direction is CrossingDirection.UP
        assert alert.level_after is StockLevel.LOW_STOCK
        assert alert.crossed == (Threshold.ZERO,)

    def test_above_to_below_low_stock(self) -> None:
        alert = crossing("8", "5")
        assert alert is not None
        assert alert.crossed == (Threshold.LOW_STOCK,)
        assert alert.level_after is StockLevel.LOW_STOCK

    @pytest.mark.parametrize(("before", "after"), [("8", "6"), ("4", "1"), ("0", "0"), ("7", "7")])
    def test_no_alert_inside_one_level(self, before: str, after: str) -> None:
        assert crossing(before, after) is None

    def test_without_a_low_level_only_zero_alerts(self) -> None:
        assert crossing("8", "1", StockThresholds()) is None
        assert crossing("1", "0", StockThresholds()) is not None

    def test_channel_scope_and_message(self) -> None:
        at = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
        alert = detect_crossing(
            "SKU-1", AlertScope.CHANNEL, "web", Decimal("6"), Decimal("0"), LOW5, at
        )
        assert alert is not None
        assert alert.to_message() == {
            "sku": "SKU-1",
            "scope": "channel",
            "channel": "web",
            "level": "out-of-stock",
            "previousLevel": "in-stock",
            "direction": "down",
            "available": "0",
            "previousAvailable": "6",
            "crossed": ["zero", "low-stock"],
            "occurredAt": "2024-05-01T12:00:00Z",
        }

    def test_float_figures_are_refused(self) -> None:
        with pytest.raises(InvalidStockInput):
            detect_crossing(
                "SKU-1",
                AlertScope.LOCATION,
                "MAIN",
                1.0,  # type: ignore[arg-type]
                Decimal(0),
                LOW5,
                T0,
            )
