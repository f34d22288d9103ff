"""Currency rounding precisions: a small table with Business Central's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from .errors import InvalidPricingInput

DEFAULT_UNIT_AMOUNT_PRECISION = Decimal("0.00001")
DEFAULT_AMOUNT_PRECISION = Decimal("0.01")


def normalize_code(code: str | None) -> str:
    """Business Central Code fields are upper case without surrounding blanks."""
    return (code or "").strip().upper()


@dataclass(frozen=True, slots=True)
class CurrencyPrecision:
    """How a currency rounds: unit prices keep more digits than line amounts."""

    unit_amount_precision: Decimal = DEFAULT_UNIT_AMOUNT_PRECISION
    amount_precision: Decimal = DEFAULT_AMOUNT_PRECISION

    def __post_init__(self) -> None:
        for name in ("unit_amount_precision", "amount_precision"):
            value: Decimal = getattr(self, name)
            if not value.is_finite() or value <= 0:
                raise InvalidPricingInput(f"{name} must be a positive decimal, got {value}")


@dataclass(frozen=True, slots=True)
class CurrencyTable:
    """The local currency plus per-currency precisions.

    Currencies not listed round with Business Central's General Ledger Setup defaults,
    which is also what the ERP does for a currency without its own rounding setup.
    """

    local_currency_code: str = "USD"
    precisions: Mapping[str, CurrencyPrecision] = field(default_factory=dict)
    default_precision: CurrencyPrecision = field(default_factory=CurrencyPrecision)

    def __post_init__(self) -> None:
        local = normalize_code(self.local_currency_code)
        if not local:
            raise InvalidPricingInput("the local currency code must not be blank")
        object.__setattr__(self, "local_currency_code", local)
        # A read-only copy: the table is shared by every request of the process.
        normalized = {normalize_code(code): p for code, p in self.precisions.items()}
        object.__setattr__(self, "precisions", MappingProxyType(normalized))

    def resolve(self, currency_code: str | None) -> str:
        """The concrete currency code a request means; blank means the local currency."""
        return normalize_code(currency_code) or self.local_currency_code

    def is_local(self, currency_code: str | None) -> bool:
        """True when the code (blank included) denotes the local currency."""
        return self.resolve(currency_code) == self.local_currency_code

    def precision(self, currency_code: str | None) -> CurrencyPrecision:
        """Rounding precisions of a currency, falling back to the defaults."""
        return self.precisions.get(self.resolve(currency_code), self.default_precision)


def default_currency_table(local_currency_code: str = "USD") -> CurrencyTable:
    """The local currency on Business Central's General Ledger Setup defaults, no currency of
    its own: the ERP's precisions come with the published price data (the price book lays
    them over this table), never from code."""
    return CurrencyTable(local_currency_code=local_currency_code)
