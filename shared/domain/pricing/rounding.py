"""Rounding money the way Business Central does.

Business Central's `Round()` with the default direction rounds to the nearest multiple of
the precision and sends halves away from zero. For the non-negative amounts of a sales
quote that is ROUND_HALF_UP. Python's default (banker's rounding, ROUND_HALF_EVEN) would
drift by a cent from what the ERP books, and the order-time re-validation would then
reject prices this product quoted.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

_ONE = Decimal(1)


def round_to_precision(value: Decimal, precision: Decimal) -> Decimal:
    """Round `value` half-up to a multiple of `precision` (e.g. 0.01, 0.00001, 0.05, 1).

    Dividing first handles precisions that are not powers of ten (0.05 for CHF cash
    rounding), which `quantize` alone cannot express.
    """
    if precision <= 0:
        raise ValueError(f"rounding precision must be positive, got {precision}")
    steps = (value / precision).quantize(_ONE, rounding=ROUND_HALF_UP)
    # Re-quantize so the result carries exactly the precision's digits ("1.10", not "1.1").
    return (steps * precision).quantize(precision)


def trim_unit_amount(value: Decimal, amount_precision: Decimal) -> Decimal:
    """Drop trailing zeros a unit amount does not need ("12.50000" -> "12.50").

    Keeps at least the amount precision's places so money still reads as money, and never
    changes the value: only digits that are zero go.
    """
    at_amount_places = value.quantize(_places_of(amount_precision))
    if at_amount_places == value:
        return at_amount_places
    # Here the value has digits beyond the amount places, so normalize() cannot produce
    # exponent notation.
    return value.normalize()


def _places_of(precision: Decimal) -> Decimal:
    """The power of ten with as many decimal places as `precision` (0.05 -> 0.01)."""
    exponent = precision.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return Decimal(1).scaleb(-places)
