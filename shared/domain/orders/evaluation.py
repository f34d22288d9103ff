"""Every rule the ERP would apply to an order, checked before anything is reserved.

Prices come from the local price index (the pricing domain, line by line so one bad line
does not hide the others), credit from the ERP's figures plus this product's pending holds,
stock from the positions of the channel's locations. The result lists every violation, or
the priced and allocated lines ready to be reserved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from shared.domain.credit import (
    CreditAssessment,
    CreditFigures,
    CreditPolicy,
    CreditReason,
    assess_credit,
    to_lcy,
)
from shared.domain.pricing import (
    CampaignPolicy,
    CurrencyTable,
    CustomerPricingContext,
    ItemPricingInfo,
    PriceLines,
    QuotedLine,
    QuoteLineRequest,
    QuoteRejected,
    quote,
)

from .allocation import LineDemand, allocate
from .model import OrderLine
from .quantity_limits import QuantityLimits, quantity_violations
from .violations import OrderRule, OrderViolation

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RequestedLine:
    sku: str
    quantity: Decimal
    unit_of_measure: str = ""
    expected_unit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PricingData:
    """The instance's price data and the terms of this order's pricing."""

    index: PriceLines
    customer: CustomerPricingContext | None
    items: Mapping[str, ItemPricingInfo]
    currencies: CurrencyTable
    campaign_policy: CampaignPolicy
    order_date: date
    lcy_per_unit: Callable[[str, date], Decimal | None]


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the service gathered from the outside world for one evaluation.

    `credit` is None when the ERP does not know the customer. `pending_credit` is the
    customer's pending amount relevant to `credit.as_of`. `available` is available to sell
    in base units per sku and location (absent: nothing there).
    """

    channel_known: bool
    sold_currencies: frozenset[str]
    credit: CreditFigures | None
    pending_credit: Decimal
    policy: CreditPolicy
    available: Mapping[str, Mapping[str, Decimal]]
    sells_from: Callable[[str], bool]
    # Held for approval: a short line holds what there is (the rest waits for the decision).
    partial_stock: bool = False
    # Items the sync policy lets intake backorder: a short line of one is accepted, holding
    # what there is, the rest backordered (no insufficient-stock violation).
    backorderable: Callable[[str], bool] = lambda _: False
    # Per-customer / per-item maximum line quantities (sync policy; none by default).
    quantity_limits: QuantityLimits = field(default_factory=QuantityLimits)


@dataclass(frozen=True, slots=True)
class Evaluation:
    violations: tuple[OrderViolation, ...]
    currency: str
    lines: tuple[OrderLine, ...]
    total_amount: Decimal
    credit_amount: Decimal | None
    assessment: CreditAssessment | None

    @property
    def acceptable(self) -> bool:
        return not self.violations


def evaluate_order(
    requested: Sequence[RequestedLine],
    currency: str | None,
    pricing: PricingData,
    facts: OrderFacts,
) -> Evaluation:
    """Check every rule; never stops at the first violation."""
    violations: list[OrderViolation] = []
    if not facts.channel_known:
        violations.append(
            OrderViolation(OrderRule.UNKNOWN_CHANNEL, "the channel is not configured")
        )
    customer = pricing.customer
    if customer is None or facts.credit is None:
        violations.append(OrderViolation(OrderRule.UNKNOWN_CUSTOMER, "the customer does not exist"))
    resolved = pricing.currencies.resolve(
        currency or (customer.currency_code if customer else None)
    )
    currency_ok = resolved in facts.sold_currencies
    if not currency_ok:
        violations.append(
            OrderViolation(OrderRule.UNSUPPORTED_CURRENCY, f"{resolved} is not a sold currency")
        )
    priced: dict[int, QuotedLine] = {}
    if customer is not None and currency_ok:
        rate = pricing.lcy_per_unit(resolved, pricing.order_date)
        for position, line in enumerate(requested):
            result = _price_line(pricing, customer, line, resolved, rate, position, violations)
            if result is not None:
                priced[position] = result
    total = sum((q.line_amount for q in priced.values()), _ZERO)

    credit_amount, assessment = _credit(resolved, currency_ok, total, pricing, facts, violations)
    lines = _allocate(requested, priced, pricing, facts, violations)
    if customer is not None:
        violations.extend(quantity_violations(lines, customer.customer_no, facts.quantity_limits))
    # Order-level problems first, then line problems in line order.
    violations.sort(key=lambda v: (v.line is not None, v.line or 0))
    return Evaluation(
        violations=tuple(violations),
        currency=resolved,
        lines=lines,
        total_amount=total,
        credit_amount=credit_amount,
        assessment=assessment,
    )


def _price_line(
    pricing: PricingData,
    customer: CustomerPricingContext,
    line: RequestedLine,
    currency: str,
    rate: Decimal | None,
    position: int,
    violations: list[OrderViolation],
) -> QuotedLine | None:
    try:
        result = quote(
            pricing.index,
            customer,
            pricing.items,
            [QuoteLineRequest(line.sku, line.quantity, line.unit_of_measure)],
            currency,
            pricing.order_date,
            currencies=pricing.currencies,
            campaign_policy=pricing.campaign_policy,
            lcy_per_unit=rate,
        )
    except QuoteRejected as rejected:
        for problem in rejected.violations:
            violations.append(
                OrderViolation(OrderRule(str(problem.rule)), problem.detail, line.sku, position)
            )
        return None
    quoted = result.lines[0]
    expected = line.expected_unit_price
    if expected is not None and expected != quoted.unit_price:
        violations.append(
            OrderViolation(
                OrderRule.PRICE_MISMATCH,
                f"expected unit price {expected}, the price is {quoted.unit_price}",
                line.sku,
                position,
                {
                    "expectedUnitPrice": format(expected, "f"),
                    "unitPrice": format(quoted.unit_price, "f"),
                },
            )
        )
    return quoted


_CREDIT_RULES = {
    CreditReason.BLOCKED: OrderRule.CUSTOMER_BLOCKED,
    CreditReason.OVER_LIMIT: OrderRule.CREDIT_OVER_LIMIT,
    CreditReason.OVERDUE: OrderRule.CREDIT_OVERDUE,
}


def credit_violations(assessment: CreditAssessment) -> list[OrderViolation]:
    """The order violations for the reasons of a credit assessment."""
    found = []
    for reason in assessment.reasons:
        rule = _CREDIT_RULES[reason]
        if reason is CreditReason.BLOCKED:
            detail = f"the customer is blocked ({assessment.blocked}) for new orders"
            figures = {"blocked": assessment.blocked}
        elif reason is CreditReason.OVER_LIMIT:
            available = assessment.available if assessment.available is not None else _ZERO
            detail = f"the order needs {assessment.amount} of credit, {available} is available"
            figures = {
                "orderAmountLcy": format(assessment.amount, "f"),
                "availableCredit": format(available, "f"),
            }
        else:
            detail = f"overdue balance {assessment.overdue} is above the tolerance"
            figures = {"overdueAmount": format(assessment.overdue, "f")}
        found.append(OrderViolation(rule, detail, figures=figures))
    return found


def _credit(
    currency: str,
    currency_ok: bool,
    total: Decimal,
    pricing: PricingData,
    facts: OrderFacts,
    violations: list[OrderViolation],
) -> tuple[Decimal | None, CreditAssessment | None]:
    if facts.credit is None or not currency_ok:
        return None, None
    if pricing.currencies.is_local(currency):
        amount = total
    else:
        rate = pricing.lcy_per_unit(currency, pricing.order_date)
        if rate is None:
            violations.append(
                OrderViolation(
                    OrderRule.CURRENCY_NOT_CONVERTIBLE,
                    f"no published exchange rate for {currency} on {pricing.order_date}",
                )
            )
            return None, None
        amount = to_lcy(total, rate)
    assessment = assess_credit(facts.credit, facts.pending_credit, amount, facts.policy)
    violations.extend(credit_violations(assessment))
    return amount, assessment


def _allocate(
    requested: Sequence[RequestedLine],
    priced: Mapping[int, QuotedLine],
    pricing: PricingData,
    facts: OrderFacts,
    violations: list[OrderViolation],
) -> tuple[OrderLine, ...]:
    demands = []
    per_unit: dict[int, Decimal] = {}
    for position, quoted in priced.items():
        item = pricing.items[quoted.sku]
        per_unit[position] = item.sales_units_of_measure[quoted.unit_of_measure]
        demands.append(LineDemand(position, quoted.sku, quoted.quantity, per_unit[position]))
    result = (
        allocate(
            demands,
            facts.available,
            facts.sells_from,
            partial=facts.partial_stock,
            backorderable=facts.backorderable,
        )
        if facts.channel_known
        else None
    )
    if result is not None:
        for shortage in result.shortages:
            violations.append(
                OrderViolation(
                    OrderRule.INSUFFICIENT_STOCK,
                    f"requested {shortage.requested}, available to sell {shortage.available} "
                    "at the channel's locations",
                    shortage.sku,
                    shortage.line,
                    {
                        "requested": format(shortage.requested, "f"),
                        "available": format(shortage.available, "f"),
                    },
                )
            )
    backordered = {b.line: b.backordered for b in result.backorders} if result else {}
    lines = []
    for position, quoted in sorted(priced.items()):
        allocations = result.allocations.get(position, ()) if result is not None else ()
        lines.append(
            OrderLine(
                line=position,
                sku=quoted.sku,
                quantity=quoted.quantity,
                unit_of_measure=quoted.unit_of_measure,
                qty_per_unit=per_unit[position],
                unit_price=quoted.unit_price,
                line_discount_percent=quoted.line_discount_percent,
                line_amount=quoted.line_amount,
                expected_unit_price=requested[position].expected_unit_price,
                allocations=allocations,
                backordered=backordered.get(position, _ZERO),
            )
        )
    return tuple(lines)
