"""Small statistics the connectivity layer reports: percentiles and the budget share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal


class NoSamples(ValueError):
    """A percentile of nothing has no value."""


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` (0..1) percentile with linear interpolation between closest ranks.

    With 10 probes p99 lies between the two slowest, nearer the slowest: a single slow probe
    shows, and one outlier does not become the whole figure.
    """
    if not values:
        raise NoSamples("no samples")
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def milliseconds(seconds: float) -> Decimal:
    return Decimal(str(round(seconds * 1000, 1)))


def budget_share(requests: int, budget: int) -> Decimal:
    """Requests as a share of the ERP's budget, to four places (0.0123 = 1.23 %)."""
    if budget <= 0:
        raise ValueError("budget must be positive")
    return (Decimal(requests) / Decimal(budget)).quantize(Decimal("0.0001"))
