"""Available to sell, per location and per storefront channel.

available = on hand - the ERP's outstanding sales-order demand (plus orders booked here that no
ERP read has shown yet) - ERP reservations outside that demand - this product's pending holds -
safety stock, never below zero. Expected receipts (open purchase orders) count only for a
channel whose sync policy says so. A channel sells from the locations its allocation allows;
its figure is the sum of those locations' figures, so one oversold location never eats another
one's stock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import StringConstraints, TypeAdapter, ValidationError

from .errors import InvalidStockInput, PositionMismatch, UnknownChannel
from .events import LocationCode
from .position import StockPosition
from .quantities import ZERO


def available_to_sell(position: StockPosition, *, with_expected: bool = False) -> Decimal:
    """What a storefront may still sell from this position; never below zero.

    `with_expected` adds the open purchase-order quantity, for channels that sell against
    receipts on their way.
    """
    supply = position.on_hand + (max(position.expected, ZERO) if with_expected else ZERO)
    return max(ZERO, supply - position.committed - position.safety_stock)


@dataclass(frozen=True, slots=True)
class LocationAvailability:
    """One location's line of the availability answer (fields of the HTTP contract)."""

    location: str
    available: Decimal
    on_hand: Decimal
    erp_demand: Decimal
    reserved: Decimal
    pending_holds: Decimal
    safety_stock: Decimal
    expected: Decimal

    @classmethod
    def of(cls, position: StockPosition, *, with_expected: bool = False) -> LocationAvailability:
        """The breakdown of one position."""
        return cls(
            location=position.location,
            available=available_to_sell(position, with_expected=with_expected),
            on_hand=position.on_hand,
            erp_demand=position.demand,
            reserved=position.reserved,
            pending_holds=position.pending_reserved,
            safety_stock=position.safety_stock,
            expected=max(position.expected, ZERO),
        )


@dataclass(frozen=True, slots=True)
class SkuAvailability:
    """One item's availability for a channel; `as_of` is the newest event folded in (or None)."""

    sku: str
    available: Decimal
    locations: tuple[LocationAvailability, ...]
    as_of: datetime | None


@dataclass(frozen=True, slots=True)
class ChannelAllocation:
    """Which locations a storefront channel sells from; `locations=None` means every one.

    `sells_expected`: the channel also sells receipts expected from open purchase orders.
    """

    channel: str
    locations: frozenset[str] | None
    sells_expected: bool = False

    def allows(self, location: str) -> bool:
        """Whether stock at `location` counts for this channel."""
        return self.locations is None or location in self.locations


ChannelName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]
# Config shape: {"web": "*", "b2b-nordics": ["OSLO", "STOCKHOLM"]}.
_AllocationConfig = dict[ChannelName, Literal["*"] | list[LocationCode]]
_ALLOCATION_CONFIG: TypeAdapter[_AllocationConfig] = TypeAdapter(_AllocationConfig)


@dataclass(frozen=True, slots=True)
class ChannelAllocations:
    """Every configured channel's allocation, looked up by channel name."""

    by_channel: Mapping[str, ChannelAllocation]

    @classmethod
    def from_config(cls, raw: object) -> ChannelAllocations:
        """Parse `{"channel": "*" | ["LOC", ...]}`; raise `InvalidStockInput` if malformed.

        An empty location list is refused: a channel that sells from nowhere is a typo, and
        silently showing everything out of stock would be worse than failing at start-up.
        """
        try:
            parsed = _ALLOCATION_CONFIG.validate_python(raw)
        except ValidationError as exc:
            raise InvalidStockInput(f"channel allocation config: {exc}") from exc
        allocations: dict[str, ChannelAllocation] = {}
        for channel, locations in parsed.items():
            if locations == "*":
                allocations[channel] = ChannelAllocation(channel, None)
            elif not locations:
                raise InvalidStockInput(f"channel {channel!r} has no locations")
            else:
                allocations[channel] = ChannelAllocation(channel, frozenset(locations))
        return cls(allocations)

    def for_channel(self, channel: str) -> ChannelAllocation:
        """The allocation of `channel`; raise `UnknownChannel` if it is not configured."""
        try:
            return self.by_channel[channel]
        except KeyError:
            raise UnknownChannel(f"channel {channel!r} is not configured") from None


def channel_availability(
    sku: str, positions: Iterable[StockPosition], allocation: ChannelAllocation
) -> SkuAvailability:
    """Availability of `sku` for a channel: the allowed locations, each and summed.

    `positions` are the item's stored positions (any locations); a location with no position
    has never had stock and is simply absent from the answer.
    """
    lines: list[LocationAvailability] = []
    newest: datetime | None = None
    for position in positions:
        if position.sku != sku:
            raise PositionMismatch(f"position {position.key} is not for {sku!r}")
        if not allocation.allows(position.location):
            continue
        lines.append(LocationAvailability.of(position, with_expected=allocation.sells_expected))
        if position.last_event_at is not None and (
            newest is None or position.last_event_at > newest
        ):
            newest = position.last_event_at
    lines.sort(key=lambda line: line.location)
    if len({line.location for line in lines}) != len(lines):
        raise PositionMismatch(f"two positions for one location of {sku!r}")
    total = sum((line.available for line in lines), ZERO)
    return SkuAvailability(sku=sku, available=total, locations=tuple(lines), as_of=newest)
