"""Amounts in another currency expressed in the local currency, the way Business Central does."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .errors import InvalidCreditInput
from .figures import money

LCY_AMOUNT_PRECISION = Decimal("0.01")


def to_lcy(amount: Decimal, lcy_per_unit: Decimal) -> Decimal:
    """`amount` x the exchange rate, rounded half-up to the LCY amount precision (0.01).

    Business Central converts a document amount with the exchange rate in force on the
    document date and rounds to the local currency's amount precision; with the same
    published rate this gives the same figure the ERP's own credit check uses.
    """
    if money(lcy_per_unit, "lcy_per_unit") <= 0:
        raise InvalidCreditInput("an exchange rate must be positive")
    return (money(amount, "amount") * lcy_per_unit).quantize(
        LCY_AMOUNT_PRECISION, rounding=ROUND_HALF_UP
    )
