"""Named errors of the pricing domain.

The HTTP layer maps `QuoteRejected` to a 422 problem whose `violations` come straight from
`QuoteRejected.violations`; everything else here signals a programming or data error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class PricingError(Exception):
    """Base class of every pricing domain error, so callers can catch the family."""


class InvalidPriceListLine(PricingError, ValueError):
    """A price list line breaks an invariant Business Central itself enforces."""


class InvalidPricingInput(PricingError, ValueError):
    """A customer, item or currency description handed to the domain is inconsistent."""


class ViolationRule(StrEnum):
    """Machine-readable reason a quote line cannot be priced (stable: storefronts match on it)."""

    NO_LINES = "no-lines"
    BAD_QUANTITY = "bad-quantity"
    UNKNOWN_ITEM = "unknown-item"
    ITEM_BLOCKED = "item-blocked"
    UNIT_OF_MEASURE_NOT_SOLD = "unit-of-measure-not-sold"
    NO_PRICE = "no-price"


@dataclass(frozen=True, slots=True)
class LineViolation:
    """One problem with one requested line; `line_index` is None for quote-level problems."""

    line_index: int | None
    sku: str | None
    rule: ViolationRule
    detail: str


class QuoteRejected(PricingError):
    """The quote cannot be computed; carries every problem found, not only the first."""

    def __init__(self, violations: Sequence[LineViolation]) -> None:
        self.violations: tuple[LineViolation, ...] = tuple(violations)
        summary = "; ".join(
            f"line {v.line_index} ({v.sku}): {v.rule}" if v.line_index is not None else v.rule
            for v in self.violations
        )
        super().__init__(f"quote rejected: {summary}")
