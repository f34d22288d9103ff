"""Stock level alerts: out of stock, low stock, back in stock.

Storefronts subscribe to level changes rather than to every quantity change: a shop hides the
buy button at zero and shows "only a few left" below the low-stock level. Two thresholds split
available-to-sell into three levels; an alert is raised exactly when a move crosses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .errors import InvalidStockInput
from .quantities import ZERO, aware_utc, finite_quantity, identifier


class StockLevel(StrEnum):
    """Where available-to-sell stands against the thresholds (ordered low to high)."""

    OUT_OF_STOCK = "out-of-stock"
    LOW_STOCK = "low-stock"
    IN_STOCK = "in-stock"

    @property
    def rank(self) -> int:
        """Position in the order out < low < in, to tell a drop from a rise."""
        return _RANK[self]


_RANK = {StockLevel.OUT_OF_STOCK: 0, StockLevel.LOW_STOCK: 1, StockLevel.IN_STOCK: 2}


class Threshold(StrEnum):
    """A configured boundary between two levels."""

    ZERO = "zero"
    LOW_STOCK = "low-stock"


class CrossingDirection(StrEnum):
    """Whether availability fell or rose across the thresholds."""

    DOWN = "down"
    UP = "up"


class AlertScope(StrEnum):
    """What the alert is about: one stocking location, or a channel's total over its locations."""

    LOCATION = "location"
    CHANNEL = "channel"


@dataclass(frozen=True, slots=True)
class StockThresholds:
    """The configured levels.

    Zero is always a threshold: available 0 is out of stock. `low_stock_level` is the
    inclusive upper bound of low stock: 0 < available <= level is low stock. A level of zero
    switches the low-stock threshold off.
    """

    low_stock_level: Decimal = ZERO

    def __post_init__(self) -> None:
        if finite_quantity(self.low_stock_level, "low_stock_level") < 0:
            raise InvalidStockInput("low_stock_level must not be negative")

    def level_of(self, available: Decimal) -> StockLevel:
        """The level of an available-to-sell figure."""
        finite_quantity(available, "available")
        if available <= 0:
            return StockLevel.OUT_OF_STOCK
        if available <= self.low_stock_level:
            return StockLevel.LOW_STOCK
        return StockLevel.IN_STOCK

    def crossed(self, before: Decimal, after: Decimal) -> tuple[Threshold, ...]:
        """Every threshold lying between `before` and `after` (a side change of each)."""
        found = []
        if (before > 0) != (after > 0):
            found.append(Threshold.ZERO)
        if self.low_stock_level > 0 and (before > self.low_stock_level) != (
            after > self.low_stock_level
        ):
            found.append(Threshold.LOW_STOCK)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class ThresholdCrossing:
    """An alert to publish: availability of `sku` in a scope moved across a threshold."""

    sku: str
    scope: AlertScope
    scope_id: str
    level_before: StockLevel
    level_after: StockLevel
    available_before: Decimal
    available_after: Decimal
    crossed: tuple[Threshold, ...]
    at: datetime

    @property
    def direction(self) -> CrossingDirection:
        """Down when stock got scarcer, up when it came back."""
        rising = self.level_after.rank > self.level_before.rank
        return CrossingDirection.UP if rising else CrossingDirection.DOWN

    def to_message(self) -> dict[str, Any]:
        """The JSON-ready event body (quantities as decimal strings, UTC ISO time)."""
        return {
            "sku": self.sku,
            "scope": str(self.scope),
            str(self.scope): self.scope_id,
            "level": str(self.level_after),
            "previousLevel": str(self.level_before),
            "direction": str(self.direction),
            "available": str(self.available_after),
            "previousAvailable": str(self.available_before),
            "crossed": [str(threshold) for threshold in self.crossed],
            "occurredAt": self.at.isoformat().replace("+00:00", "Z"),
        }


def detect_crossing(
    sku: str,
    scope: AlertScope,
    scope_id: str,
    available_before: Decimal,
    available_after: Decimal,
    thresholds: StockThresholds,
    at: datetime,
) -> ThresholdCrossing | None:
    """The alert for a move of available-to-sell, or None when no threshold lies between.

    Call it with `FoldResult.available_before/after` (or a reservation's) per location, and
    with the channel totals before and after for channel-level alerts.
    """
    identifier(sku, "sku")
    identifier(scope_id, "scope_id")
    crossed = thresholds.crossed(
        finite_quantity(available_before, "available_before"),
        finite_quantity(available_after, "available_after"),
    )
    if not crossed:
        return None
    return ThresholdCrossing(
        sku=sku,
        scope=scope,
        scope_id=scope_id,
        level_before=thresholds.level_of(available_before),
        level_after=thresholds.level_of(available_after),
        available_before=available_before,
        available_after=available_after,
        crossed=crossed,
        at=aware_utc(at, "at"),
    )
