"""A circuit breaker shared by every call of one client, so an ERP outage is not amplified.

closed --N consecutive failures--> open --open period over--> half-open --probe ok--> closed
                                    ^------------------- probe failed ----------------'
Failures are what say the ERP is unwell: 5xx, timeouts, connection errors. A 4xx (including
429) proves the ERP is answering, so it counts as a success here.
"""

from __future__ import annotations

from enum import StrEnum

from shared.adapters.erp.clock import Clock
from shared.adapters.erp.errors import ErpUnavailable


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Fails fast with ``ErpUnavailable`` while open; lets one probe through when half-open."""

    def __init__(self, failure_threshold: int, open_seconds: float, clock: Clock) -> None:
        self._threshold = failure_threshold
        self._open_seconds = open_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.openings = 0

    @property
    def state(self) -> BreakerState:
        """The state as a caller arriving now would see it."""
        if self._state is BreakerState.OPEN and self._open_period_over():
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def answering(self) -> bool:
        """Closed, and the last call answered: nothing has failed since the last success."""
        return self._state is BreakerState.CLOSED and self._consecutive_failures == 0

    def admit(self) -> bool:
        """Let a call through or raise ``ErpUnavailable``; True when the call is the probe."""
        if self._state is BreakerState.OPEN:
            if not self._open_period_over():
                raise ErpUnavailable(self._fail_fast_message())
            self._state = BreakerState.HALF_OPEN
        if self._state is BreakerState.HALF_OPEN:
            if self._probe_in_flight:
                raise ErpUnavailable("ERP circuit half-open: a probe request is in flight")
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        """The ERP answered: close the circuit."""
        self._consecutive_failures = 0
        self._probe_in_flight = False
        self._state = BreakerState.CLOSED

    def record_failure(self) -> None:
        """The ERP failed to answer properly: count it, and open at the threshold."""
        self._probe_in_flight = False
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._consecutive_failures += 1
        if self._state is BreakerState.CLOSED and self._consecutive_failures >= self._threshold:
            self._open()

    def release_probe(self) -> None:
        """The probe ended without a verdict (cancelled): let the next caller probe."""
        self._probe_in_flight = False

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock.monotonic()
        self._consecutive_failures = 0
        self.openings += 1

    def _open_period_over(self) -> bool:
        return self._clock.monotonic() - self._opened_at >= self._open_seconds

    def _fail_fast_message(self) -> str:
        remaining = self._open_seconds - (self._clock.monotonic() - self._opened_at)
        return f"ERP circuit open after repeated failures; next probe in {remaining:.1f}s"
