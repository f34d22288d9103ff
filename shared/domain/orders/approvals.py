"""Orders held for approval: which broken rules a person may wave through, and what an
approval must check again before the order is booked as it was accepted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.domain.pricing import QuoteLineRequest, QuoteRejected, quote

from .evaluation import PricingData
from .model import Order
from .violations import OrderRule, OrderViolation


class ApprovalAction(StrEnum):
    """What intake does with an order that breaks a rule (the sync policy says, per rule)."""

    REJECT = "reject"  # 422, nothing held (the default)
    HOLD = "hold"  # accepted as pending-approval, its holds kept until a person decides


@dataclass(frozen=True, slots=True)
class BackorderPolicy:
    """The items whose short lines intake accepts, holding what there is and backordering the
    rest (the sync policy's ``insufficient-stock: backorder``): named by item category (the
    ERP's ``itemCategoryCode``) or by item number."""

    item_categories: frozenset[str] = frozenset()
    items: frozenset[str] = frozenset()

    def allows(self, sku: str, category: str) -> bool:
        """Whether item `sku` of item category `category` may be backordered."""
        return sku in self.items or (bool(category) and category in self.item_categories)


def approval_needed(
    violations: Sequence[OrderViolation], actions: Mapping[str, ApprovalAction]
) -> bool:
    """True when the order breaks rules and every one of them is routed to a person.

    One rule at ``reject`` (or not named: the default) rejects the whole order as today.
    """
    return bool(violations) and all(
        actions.get(str(v.rule), ApprovalAction.REJECT) is ApprovalAction.HOLD for v in violations
    )


def price_changes(order: Order, pricing: PricingData) -> list[OrderViolation]:
    """Lines whose price today differs from the price the order was accepted at.

    An order held for approval is booked exactly as accepted; when a price has moved since,
    the ERP would price it differently, so the approval must say so instead of booking.
    """
    customer = pricing.customer
    if customer is None:
        return [OrderViolation(OrderRule.UNKNOWN_CUSTOMER, "the customer no longer exists")]
    rate = pricing.lcy_per_unit(order.currency, pricing.order_date)
    changed: list[OrderViolation] = []
    for line in order.lines:
        try:
            result = quote(
                pricing.index,
                customer,
                pricing.items,
                [QuoteLineRequest(line.sku, line.quantity, line.unit_of_measure)],
                order.currency,
                pricing.order_date,
                currencies=pricing.currencies,
                campaign_policy=pricing.campaign_policy,
                lcy_per_unit=rate,
            )
        except QuoteRejected as rejected:
            changed.extend(
                OrderViolation(OrderRule(str(p.rule)), p.detail, line.sku, line.line)
                for p in rejected.violations
            )
            continue
        now_price = result.lines[0].unit_price
        if now_price != line.unit_price:
            changed.append(
                OrderViolation(
                    OrderRule.PRICE_MISMATCH,
                    f"accepted at unit price {line.unit_price}, the price is now {now_price}",
                    line.sku,
                    line.line,
                    {
                        "expectedUnitPrice": format(line.unit_price, "f"),
                        "unitPrice": format(now_price, "f"),
                    },
                )
            )
    return changed
