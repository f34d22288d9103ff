"""Business Central's per-principal request limits: a processing queue and a sliding window.

A principal is the bearer token (or "anonymous"). Like Business Central online, at most
``max_concurrent`` requests are processed at once; further ones wait in a FIFO queue of at
most ``queue_size`` (BC: about 95), and one more is refused at once with 429. A request that
waited ``queue_timeout_seconds`` (BC: 8 minutes) without a slot is answered 503. A queued
request is *not* abandoned when its client gives up: it is processed when its turn comes, as
in BC, so a create can commit after the client stopped waiting. Over
``requests_per_window`` in the sliding window a request is refused with a Retry-After that
says when the oldest counted request leaves the window.

``hold`` occupies slots for a while, as requests of other instances sharing the principal
would, so tests can put a request in the queue on purpose.
"""

from __future__ import annotations

import asyncio
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
    queue_size: int = 95
    queue_timeout_seconds: float = 480.0

    def as_json(self) -> dict[str, float | int]:
        return {
            "maxConcurrent": self.max_concurrent,
            "requestsPerWindow": self.requests_per_window,
            "windowSeconds": self.window_seconds,
            "queueSize": self.queue_size,
            "queueTimeoutSeconds": self.queue_timeout_seconds,
        }


@dataclass(frozen=True)
class Refusal:
    reason: str
    retry_after: int
    status: int = 429


class Limiter:
    """Admission control per principal, on the simulator's one event loop."""

    def __init__(
        self, settings: LimitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._in_flight: dict[str, int] = {}
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        self._admitted: dict[str, deque[float]] = {}
        self.queued_max = 0

    def configure(self, settings: LimitSettings) -> None:
        self.settings = settings

    def clear(self) -> None:
        self._admitted.clear()
        self.queued_max = 0

    def queued(self, principal: str | None = None) -> int:
        if principal is not None:
            return len(self._queues.get(principal, ()))
        return sum(len(queue) for queue in self._queues.values())

    def _window_refusal(self, principal: str) -> Refusal | None:
        settings = self.settings
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
        return None

    async def acquire(self, principal: str) -> Refusal | None:
        """Admit one request (None), after queueing if need be, or say why not.

        An admitted request must be released.
        """
        refusal = self._window_refusal(principal)
        if refusal is not None:
            return refusal
        settings = self.settings
        queue = self._queues.setdefault(principal, deque())
        if self._in_flight.get(principal, 0) < settings.max_concurrent and not queue:
            self._in_flight[principal] = self._in_flight.get(principal, 0) + 1
            return None
        if len(queue) >= settings.queue_size:
            return Refusal(
                f"Too many requests: {settings.max_concurrent} are being processed and "
                f"{len(queue)} are queued for this principal.",
                1,
            )
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(turn)
        self.queued_max = max(self.queued_max, self.queued())
        try:
            await asyncio.wait_for(asyncio.shield(turn), settings.queue_timeout_seconds)
        except TimeoutError:
            if turn.done() and not turn.cancelled():
                return None  # the slot was handed over just as the wait ended
            turn.cancel()
            if turn in queue:
                queue.remove(turn)
            return Refusal(
                "The request waited too long for a free slot and was not processed.",
                5,
                status=503,
            )
        return None

    def release(self, principal: str) -> None:
        """Hand the slot to the longest-waiting request, or free it."""
        queue = self._queues.get(principal)
        while queue:
            turn = queue.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot changes hands; in-flight stays the same
                return
        remaining = self._in_flight.get(principal, 0) - 1
        if remaining > 0:
            self._in_flight[principal] = remaining
        else:
            self._in_flight.pop(principal, None)

    def hold(self, principal: str, slots: int, seconds: float) -> None:
        """Occupy ``slots`` processing slots for ``seconds`` (other callers' requests)."""
        self._in_flight[principal] = self._in_flight.get(principal, 0) + slots
        loop = asyncio.get_running_loop()
        for _ in range(slots):
            loop.call_later(seconds, self.release, principal)
