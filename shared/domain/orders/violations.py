"""Why an order cannot be accepted: one violation per broken rule, all of them at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class OrderRule(StrEnum):
    """Machine-readable rule names (stable: storefronts match on them)."""

    UNKNOWN_CHANNEL = "unknown-channel"
    UNSUPPORTED_CURRENCY = "unsupported-currency"
    CURRENCY_NOT_CONVERTIBLE = "currency-not-convertible"
    UNKNOWN_CUSTOMER = "unknown-customer"
    CUSTOMER_BLOCKED = "customer-blocked"
    UNKNOWN_ITEM = "unknown-item"
    ITEM_BLOCKED = "item-blocked"
    UNIT_OF_MEASURE_NOT_SOLD = "unit-of-measure-not-sold"
    BAD_QUANTITY = "bad-quantity"
    NO_PRICE = "no-price"
    PRICE_MISMATCH = "price-mismatch"
    CREDIT_OVER_LIMIT = "credit-over-limit"
    CREDIT_OVERDUE = "credit-overdue"
    INSUFFICIENT_STOCK = "insufficient-stock"
    # A line above the sync policy's per-customer / per-item maximum (orders.approvals).
    QUANTITY_OVER_THRESHOLD = "quantity-over-threshold"


@dataclass(frozen=True, slots=True)
class OrderViolation:
    """One broken rule; `line` is the 0-based line index for line problems.

    `figures` carries the numbers behind it as decimal strings under their contract names
    (for a price mismatch: ``expectedUnitPrice`` and ``unitPrice``).
    """

    rule: OrderRule
    detail: str
    sku: str | None = None
    line: int | None = None
    figures: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", OrderRule(self.rule))
        object.__setattr__(self, "figures", MappingProxyType(dict(self.figures)))

    def as_contract(self) -> dict[str, object]:
        """The ``violations`` entry of the 422 answer."""
        body: dict[str, object] = {"rule": str(self.rule)}
        if self.sku is not None:
            body["sku"] = self.sku
        if self.line is not None:
            body["line"] = self.line
            body["field"] = f"lines[{self.line}]"
        body["detail"] = self.detail
        body.update(self.figures)
        return body
