"""Everything the simulator remembers, in one object the routes share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from devtools.storefront_sim.catalog import Catalogs
from devtools.storefront_sim.channels import ChannelSecrets, default_channels
from devtools.storefront_sim.faults import FaultPlan
from devtools.storefront_sim.payload import MAX_OPERATIONS
from devtools.storefront_sim.replay import ReplayCache
from devtools.storefront_sim.stats import RequestStats
from shared.domain.content.signing import DEFAULT_TOLERANCE

MAX_BODY_BYTES = 16 * 1024 * 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SimulatorOptions:
    """How the simulator behaves; the defaults are the demo configuration."""

    channels: ChannelSecrets = field(default_factory=default_channels)
    tolerance: timedelta = DEFAULT_TOLERANCE
    seed: int = 0
    max_operations: int = MAX_OPERATIONS
    max_body_bytes: int = MAX_BODY_BYTES
    clock: Callable[[], datetime] = utc_now


class SimulatorState:
    """Catalogs, received log, replay cache, faults and request counts."""

    def __init__(self, options: SimulatorOptions | None = None) -> None:
        self.options = options or SimulatorOptions()
        self.catalogs = Catalogs()
        self.replays = ReplayCache(self.options.tolerance)
        self.faults = FaultPlan(self.options.seed)
        self.stats = RequestStats()

    def secrets(self, channel: str) -> tuple[bytes, ...] | None:
        return self.options.channels.get(channel)

    def now(self) -> datetime:
        return self.options.clock()

    def reset(self) -> None:
        """Back to the state right after start-up (`POST /_sim/reset`)."""
        self.catalogs.clear()
        self.replays.clear()
        self.faults.clear()
        self.stats.clear()
