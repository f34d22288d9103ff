"""How long to wait before the next attempt: full-jitter backoff and the ERP's Retry-After."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime


def full_jitter_delay(
    attempt: int, base_seconds: float, max_seconds: float, random: Callable[[], float]
) -> float:
    """A delay drawn uniformly from ``[0, min(max, base * 2**(attempt-1))]``.

    Full jitter spreads retries of many callers apart, so they do not return in lockstep.
    """
    ceiling = min(max_seconds, base_seconds * (2.0 ** max(0, attempt - 1)))
    return random() * ceiling


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds):
        return max(0.0, seconds)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - now).total_seconds())
