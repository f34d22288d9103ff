"""Numbers between JSON and Decimal without losing a digit.

Rows keep amounts as JSON numbers (int or float) because that is what Business Central
sends; every value has at most five decimals, so a float's shortest repr is exact and
``Decimal(repr(x))`` gives back the intended decimal.
"""

from __future__ import annotations

from decimal import Decimal


def to_decimal(value: object) -> Decimal:
    """A stored JSON number as an exact Decimal (floats via their shortest repr)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def json_number(value: Decimal) -> int | float:
    """A Decimal as the JSON number to store: an int when whole, else a float."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def decimal_text(value: Decimal, minimum_places: int = 0) -> str:
    """A plain decimal string (no exponent), trimmed of trailing zeros beyond ``minimum_places``."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    places = max(minimum_places, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    return f"{value:.{places}f}"
