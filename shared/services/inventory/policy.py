"""The stock rules: hold timeout, thresholds, safety stock, channel allocations.

Built once per process from the settings by the composition root (``shared.bootstrap``), or by
tests directly, so the inventory services take one small immutable object instead of reaching
for global settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType

from shared.config.channels import Channel
from shared.domain.stock import (
    DEFAULT_FOLD_POLICY,
    ChannelAllocation,
    FoldPolicy,
    StockThresholds,
    UnknownChannel,
)


def allocation_of(name: str, channel: Channel, sells_expected: bool = False) -> ChannelAllocation:
    """The domain's allocation for a configured channel (``"*"`` sells from every location)."""
    if channel.locations == "*":
        return ChannelAllocation(name, None, sells_expected)
    return ChannelAllocation(name, frozenset(channel.locations), sells_expected)


def _no_channels() -> Mapping[str, ChannelAllocation]:
    return MappingProxyType({})


@dataclass(frozen=True)
class StockPolicy:
    """Everything configurable about folding events, alerting and answering availability."""

    hold_timeout: timedelta = timedelta(minutes=2)
    thresholds: StockThresholds = field(default_factory=StockThresholds)
    safety_stock: Decimal = Decimal(0)
    channels: Mapping[str, ChannelAllocation] = field(default_factory=_no_channels)
    fold_policy: FoldPolicy = DEFAULT_FOLD_POLICY

    def channel(self, name: str) -> ChannelAllocation:
        """The allocation of a configured channel; ``UnknownChannel`` otherwise."""
        try:
            return self.channels[name]
        except KeyError:
            raise UnknownChannel(f"channel {name!r} is not configured") from None
