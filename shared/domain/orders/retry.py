"""When a booking that failed for a passing reason is tried again, and when to give up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class BookingRetryPolicy:
    """Exponential backoff with equal jitter, capped, within a budget of attempts.

    Attempt n (1-based) failing waits about base x 2^(n-1) (half fixed, half random, so
    orders that failed together during an outage do not all come back at the same second).
    """

    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=15)
    max_delay: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay <= timedelta(0) or self.max_delay < self.base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")

    def exhausted(self, attempt: int) -> bool:
        """Whether attempt `attempt` (1-based) was the last one allowed."""
        return attempt >= self.max_attempts

    def delay(
        self, attempt: int, random_fraction: float, at_least: timedelta | None = None
    ) -> timedelta:
        """How long to wait after attempt `attempt` failed; `at_least` honours Retry-After."""
        if attempt < 1:
            raise ValueError("attempts are 1-based")
        if not 0.0 <= random_fraction < 1.0:
            raise ValueError("random_fraction must be in [0, 1)")
        step = min(self.max_delay, self.base_delay * (1 << min(attempt - 1, 30)))
        delay = step / 2 + step / 2 * random_fraction
        if at_least is not None and at_least > delay:
            delay = min(at_least, self.max_delay)
        return delay
