"""Injected faults: latency, random 500s, outage, throttling and lost responses."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    outage: bool = False
    throttle: bool = False
    # For the next N POSTs to salesOrders: commit the order, then lose the answer.
    drop_response_after_commit: int = 0
    drop_mode: str = "500"  # "500": answer 500; "close": close the connection mid-response
    # A salesOrders POST takes this long after it got a processing slot, before it commits
    # (BC validating and locking under load): lookups in other slots meanwhile find nothing.
    commit_delay_ms: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def as_json(self) -> dict[str, object]:
        return {
            "latencyMs": self.latency_ms,
            "errorRate": self.error_rate,
            "outage": self.outage,
            "throttle": self.throttle,
            "dropResponseAfterCommit": self.drop_response_after_commit,
            "dropMode": self.drop_mode,
            "commitDelayMs": self.commit_delay_ms,
        }

    def take_drop(self) -> str | None:
        """Consume one lost-response ticket; the mode when one was pending."""
        if self.drop_response_after_commit <= 0:
            return None
        self.drop_response_after_commit -= 1
        return self.drop_mode

    def random_failure(self) -> bool:
        return self.error_rate > 0 and self.rng.random() < self.error_rate
