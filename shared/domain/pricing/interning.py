"""Sharing equal small values between price list lines to keep a million lines compact.

A loader parses every row into fresh strings, Decimals and dates, although codes,
minimum quantities, discounts and dates repeat across hundreds of thousands of lines.
Sharing one object per distinct value saves about 240 bytes per line (measured by
bench/quote_bench.py's loader-like figure). Values are immutable, so sharing is invisible
to callers.
"""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from typing import TypeVar

# Bounded so that a feed of unexpectedly many distinct values (say, minimum quantities
# with random decimals) cannot grow the cache without limit; past the bound values are
# simply not shared.
_MAX_SHARED = 65_536
_T = TypeVar("_T", Decimal, date)
# Keyed by (type, str(value)) for Decimal so that 5 and 5.00 stay distinct objects with
# their own exponent, since they print differently.
_shared: dict[tuple[type, str], Decimal | date] = {}


def shared_code(code: str) -> str:
    """One string object per distinct code (sys.intern frees it when unused)."""
    return sys.intern(str(code))


def shared_value(value: _T) -> _T:
    """One object per distinct Decimal or date, up to a fixed number of distinct values."""
    key = (type(value), str(value))
    found = _shared.get(key)
    if found is not None:
        return found  # type: ignore[return-value]
    if len(_shared) < _MAX_SHARED:
        _shared[key] = value
    return value
