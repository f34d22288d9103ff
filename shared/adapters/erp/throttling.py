"""Business Central's per-principal limits, enforced on our side so the ERP rarely says 429.

Two gates a request passes before it is sent, held until it completes:
- at most ``max_concurrent`` in flight (BC processes 5 at once and queues the rest);
- at most ``requests_per_window`` within any ``window_seconds`` (6,000 per 5 minutes).
Callers wait for a free slot instead of failing. A 429's Retry-After pauses every caller of
the client, because the limit is per principal, not per request.
"""

from __future__ import annotations

import asyncio
from collections import deque

from shared.adapters.erp.clock import Clock


class SlotWaitTooLong(Exception):
    """The next free slot comes after the caller's deadline; waiting would be pointless."""

    def __init__(self, wait_seconds: float) -> None:
        super().__init__(f"next request slot in {wait_seconds:.1f}s, after the call deadline")
        self.wait_seconds = wait_seconds


class RequestBudget:
    """A sliding-window request budget that makes callers wait for a free slot.

    A slot is taken when a request is about to be sent and stays taken until ``window``
    seconds after the request *completes*. The ERP counts a request when it arrives, which is
    somewhere between our send and the response; holding the slot from send to
    completion + window keeps every window of arrival times within the limit, however late
    a request travels.
    """

    def __init__(self, limit: int, window_seconds: float, clock: Clock) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._in_flight = 0
        self._expiries: deque[float] = deque()
        self._resume_at = 0.0
        # One waiter at a time at the front, so slots go out in arrival order.
        self._turn = asyncio.Lock()
        self._slot_freed = asyncio.Event()
        self.waits = 0

    async def acquire(self, deadline: float | None = None) -> None:
        """Wait until the budget (and any Retry-After pause) allows one more request.

        Raises ``SlotWaitTooLong`` at once when the slot would only free after ``deadline``
        (monotonic seconds), so a live caller is told now instead of timing out later.
        """
        async with self._turn:
            waited = False
            while True:
                now = self._clock.monotonic()
                if now < self._resume_at:
                    self._check_deadline(self._resume_at, now, deadline)
                    waited = True
                    await self._clock.sleep(self._resume_at - now)
                    continue
                while self._expiries and self._expiries[0] <= now:
                    self._expiries.popleft()
                if self._in_flight + len(self._expiries) < self._limit:
                    self._in_flight += 1
                    if waited:
                        self.waits += 1
                    return
                waited = True
                if self._expiries:
                    self._check_deadline(self._expiries[0], now, deadline)
                    await self._clock.sleep(self._expiries[0] - now)
                else:
                    # Every slot is held by a request still in flight: wait for one to end.
                    self._slot_freed.clear()
                    await self._slot_freed.wait()

    @staticmethod
    def _check_deadline(free_at: float, now: float, deadline: float | None) -> None:
        if deadline is not None and free_at > deadline:
            raise SlotWaitTooLong(free_at - now)

    def release(self) -> None:
        """Mark one request complete; its slot frees a window later."""
        self._in_flight -= 1
        self._expiries.append(self._clock.monotonic() + self._window)
        self._slot_freed.set()

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (the ERP's Retry-After)."""
        if seconds > 0:
            self._resume_at = max(self._resume_at, self._clock.monotonic() + seconds)

    @property
    def used(self) -> int:
        """Slots taken in the current window, including requests in flight."""
        now = self._clock.monotonic()
        return self._in_flight + sum(1 for t in self._expiries if t > now)
