"""Business Central's per-principal request limits: concurrent requests and a sliding window.

A principal is the bearer token (or "anonymous"). Over ``max_concurrent`` in flight the
request is refused with 429 at once (BC would queue first; refusing is the simple, stricter
variant). Over ``requests_per_window`` in the sliding window it is refused with a
Retry-After that says when the oldest counted request leaves the window.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LimitSettings:
    max_concurrent: int = 5
    requests_per_window: int = 6000
    window_seconds: float = 300.0

    def as_json(self) -> dict[str, float | int]:
        return {
            "maxConcurrent": self.max_concurrent,
            "requestsPerWindow": self.requests_per_window,
            "windowSeconds": self.window_seconds,
        }


@dataclass(frozen=True)
class Refusal:
    reason: str
    retry_after: int


class Limiter:
    """Admission control per principal. Not thread-safe: the simulator is one event loop."""

    def __init__(
        self, settings: LimitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._in_flight: dict[str, int] = {}
        self._admitted: dict[str, deque[float]] = {}

    def configure(self, settings: LimitSettings) -> None:
        self.settings = settings

    def clear(self) -> None:
        self._admitted.clear()

    def try_acquire(self, principal: str) -> Refusal | None:
        """Admit one request (None) or say why not; an admitted request must be released."""
        settings = self.settings
        if self._in_flight.get(principal, 0) >= settings.max_concurrent:
            return Refusal(
                f"Too many concurrent requests for this principal (limit "
                f"{settings.max_concurrent}).",
                1,
            )
        now = self._clock()
        window = self._admitted.setdefault(principal, deque())
        horizon = now - settings.window_seconds
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= settings.requests_per_window:
            wait = window[0] + settings.window_seconds - now if window else 1.0
            return Refusal(
                f"Rate limit exceeded: more than {settings.requests_per_window} requests in "
                f"{settings.window_seconds:g} seconds for this principal.",
                max(1, math.ceil(wait)),
            )
        window.append(now)
        self._in_flight[principal] = self._in_flight.get(principal, 0) + 1
        return None

    def release(self, principal: str) -> None:
        remaining = self._in_flight.get(principal, 0) - 1
        if remaining > 0:
            self._in_flight[principal] = remaining
        else:
            self._in_flight.pop(principal, None)
