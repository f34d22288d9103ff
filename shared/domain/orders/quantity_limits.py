"""Largest quantity one order line may carry before a person has to look at it.

The sync policy sets limits per customer, per item and a default for the lines neither names;
the lower of a line's customer and item limit applies. Quantities are compared in the item's
base unit of measure (2 BOX of 12 is 24), so one limit holds whatever unit a line is ordered in.
No limit set (the default): no line is ever over one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from .model import OrderLine
from .violations import OrderRule, OrderViolation


@dataclass(frozen=True, slots=True)
class LineLimit:
    """The limit that applies to a line and where it comes from (customer, item, default)."""

    quantity: Decimal
    source: str


@dataclass(frozen=True, slots=True)
class QuantityLimits:
    """Per-customer and per-item maximum line quantities (base units); ``default`` for lines
    whose customer and item have none."""

    customers: Mapping[str, Decimal] = field(default_factory=dict)
    items: Mapping[str, Decimal] = field(default_factory=dict)
    default: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "customers", MappingProxyType(dict(self.customers)))
        object.__setattr__(self, "items", MappingProxyType(dict(self.items)))

    def limit_for(self, customer_no: str, sku: str) -> LineLimit | None:
        """The lowest limit among the customer's and the item's; else the default; else none."""
        named = [
            LineLimit(limit, source)
            for limit, source in (
                (self.customers.get(customer_no), "customer"),
                (self.items.get(sku), "item"),
            )
            if limit is not None
        ]
        if named:
            return min(named, key=lambda found: found.quantity)
        return LineLimit(self.default, "default") if self.default is not None else None


def quantity_violations(
    lines: Iterable[OrderLine], customer_no: str, limits: QuantityLimits
) -> list[OrderViolation]:
    """One ``quantity-over-threshold`` violation per line above its limit, with the figures:
    the line's quantity in base units, the limit and which setting it comes from."""
    found = []
    for line in lines:
        limit = limits.limit_for(customer_no, line.sku)
        if limit is None:
            continue
        quantity = line.base_quantity
        if quantity <= limit.quantity:
            continue
        found.append(
            OrderViolation(
                OrderRule.QUANTITY_OVER_THRESHOLD,
                f"line quantity {quantity} (base units) is above the {limit.source} limit of "
                f"{limit.quantity}",
                line.sku,
                line.line,
                {
                    "quantity": format(quantity.normalize(), "f"),
                    "limit": format(limit.quantity.normalize(), "f"),
                    "limitSource": limit.source,
                },
            )
        )
    return found
