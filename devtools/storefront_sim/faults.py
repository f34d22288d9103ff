"""Injected failures: latency, outage (503), throttling (429) and seeded random 500s."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    outage: bool = False
    throttle: bool = False

    def combined_with(self, other: Faults) -> Faults:
        """The stronger of each fault, so a channel's faults add to the global ones."""
        return Faults(
            latency_ms=max(self.latency_ms, other.latency_ms),
            error_rate=max(self.error_rate, other.error_rate),
            outage=self.outage or other.outage,
            throttle=self.throttle or other.throttle,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "latencyMs": self.latency_ms,
            "errorRate": self.error_rate,
            "outage": self.outage,
            "throttle": self.throttle,
        }


NO_FAULTS = Faults()


class Failure(Enum):
    """Which injected failure answers a request instead of the storefront."""

    OUTAGE = 503
    THROTTLED = 429
    ERROR = 500


class FaultPlan:
    """Faults for all channels and per channel, with a seeded generator for `errorRate`."""

    def __init__(self, seed: int = 0) -> None:
        self._initial_seed = seed
        self._random = random.Random(seed)
        self._global = NO_FAULTS
        self._per_channel: dict[str, Faults] = {}

    def set(self, channel: str | None, faults: Faults, seed: int | None = None) -> None:
        """Replace the faults of one scope: a channel's, or (channel None) the global ones."""
        if channel is None:
            self._global = faults
        elif faults == NO_FAULTS:
            self._per_channel.pop(channel, None)
        else:
            self._per_channel[channel] = faults
        if seed is not None:
            self._random.seed(seed)

    def effective(self, channel: str) -> Faults:
        return self._global.combined_with(self._per_channel.get(channel, NO_FAULTS))

    def failure(self, faults: Faults) -> Failure | None:
        """The failure to answer with, if any; draws a random number only for an error rate."""
        if faults.outage:
            return Failure.OUTAGE
        if faults.throttle:
            return Failure.THROTTLED
        if faults.error_rate > 0 and self._random.random() < faults.error_rate:
            return Failure.ERROR
        return None

    def clear(self) -> None:
        """No faults, and the generator back at its initial seed so runs repeat."""
        self._global = NO_FAULTS
        self._per_channel.clear()
        self._random.seed(self._initial_seed)

    def to_json(self) -> dict[str, object]:
        return {
            "global": self._global.to_json(),
            "channels": {name: faults.to_json() for name, faults in self._per_channel.items()},
        }
