"""Checks shared by everything that accepts a quantity, a time or a limit from a caller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from .errors import InvalidStockInput

ZERO = Decimal(0)


def finite_quantity(value: object, name: str) -> Decimal:
    """`value` if it is a finite Decimal; floats are refused so no binary rounding sneaks in."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidStockInput(f"{name} must be a finite Decimal, got {value!r}")
    return value


def aware_utc(value: object, name: str) -> datetime:
    """`value` in UTC; naive times are refused because their zone would be a guess."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidStockInput(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def non_negative_duration(value: object, name: str) -> timedelta:
    """`value` if it is a timedelta of zero or more."""
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidStockInput(f"{name} must be a timedelta >= 0, got {value!r}")
    return value


def positive_limit(value: object, name: str) -> int:
    """`value` if it is an int of one or more."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidStockInput(f"{name} must be an int >= 1, got {value!r}")
    return value


def identifier(value: object, name: str) -> str:
    """`value` if it is a non-empty string without surrounding blanks."""
    if not isinstance(value, str) or not value or value != value.strip():
        raise InvalidStockInput(f"{name} must be a non-empty string without blanks around it")
    return value
