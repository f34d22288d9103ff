"""Quoting: price every requested line for one customer from local data, or say why not."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Context, Decimal, localcontext
from enum import StrEnum

from .currency import CurrencyPrecision, CurrencyTable, default_currency_table, normalize_code
from .errors import LineViolation, QuoteRejected, ViolationRule
from .index import CustomerSources, PriceLines
from .models import (
    CampaignPolicy,
    CustomerPricingContext,
    ItemPricingInfo,
    PriceListLine,
    QuoteLineRequest,
    SourceType,
)
from .rounding import round_to_precision, trim_unit_amount
from .rules import LineCriteria, select_lines

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
# Enough digits that quantity x price x (100 - discount) is exact before the one rounding
# step, whatever precision the caller's thread context happens to have.
_MONEY_CONTEXT = Context(prec=50)
DEFAULT_CURRENCIES = default_currency_table()


class PriceSourceType(StrEnum):
    """Where a quoted price or discount came from (values are the HTTP contract's)."""

    CUSTOMER = "Customer"
    CUSTOMER_PRICE_GROUP = "Customer Price Group"
    ALL_CUSTOMERS = "All Customers"
    CAMPAIGN = "Campaign"
    LIST_PRICE = "List Price"


_SOURCE_TYPES: dict[SourceType, PriceSourceType] = {
    SourceType.CUSTOMER: PriceSourceType.CUSTOMER,
    SourceType.CUSTOMER_PRICE_GROUP: PriceSourceType.CUSTOMER_PRICE_GROUP,
    SourceType.ALL_CUSTOMERS: PriceSourceType.ALL_CUSTOMERS,
    SourceType.CAMPAIGN: PriceSourceType.CAMPAIGN,
}


@dataclass(frozen=True, slots=True)
class PriceSource:
    """The price list line (or the item card, "List Price") a figure came from."""

    type: PriceSourceType
    price_list_code: str
    minimum_quantity: Decimal

    @classmethod
    def of_line(cls, line: PriceListLine) -> PriceSource:
        """Describe a winning price list line."""
        return cls(_SOURCE_TYPES[line.source_type], line.price_list_code, line.minimum_quantity)


_ITEM_CARD_SOURCE = PriceSource(PriceSourceType.LIST_PRICE, "", _ZERO)


@dataclass(frozen=True, slots=True)
class QuotedLine:
    """One priced line.

    `list_price` is what a customer without contract terms pays for this line: the best
    applicable All Customers price line, else the item card's unit price (local currency
    only), else (foreign currency with only contract prices) the quoted unit price.
    `discount_source` is None when no discount applies.
    """

    sku: str
    quantity: Decimal
    unit_of_measure: str
    unit_price: Decimal
    list_price: Decimal
    line_discount_percent: Decimal
    line_amount: Decimal
    price_source: PriceSource
    discount_source: PriceSource | None


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced quote; `total_amount` is the sum of the already rounded line amounts."""

    customer_no: str
    currency_code: str
    order_date: date
    lines: tuple[QuotedLine, ...]
    total_amount: Decimal


def _as_order_date(value: date) -> date:
    # datetime is a date subclass but does not compare with date; take its UTC day.
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("order time must be timezone-aware")
        return value.astimezone(UTC).date()
    return value


def _valid_quantity(quantity: object) -> Decimal | None:
    if isinstance(quantity, bool):
        return None
    if isinstance(quantity, int):
        quantity = Decimal(quantity)
    if isinstance(quantity, Decimal) and quantity.is_finite() and quantity > 0:
        return quantity
    return None


@dataclass(frozen=True, slots=True)
class _QuoteTerms:
    """What is the same for every line of one quote, resolved once."""

    index: PriceLines
    customer: CustomerPricingContext
    sources: CustomerSources
    currency_code: str
    currency_is_local: bool
    precision: CurrencyPrecision
    order_date: date
    lcy_per_unit: Decimal | None = None


def quote(
    index: PriceLines,
    customer: CustomerPricingContext,
    items: Mapping[str, ItemPricingInfo],
    lines: Sequence[QuoteLineRequest],
    currency: str | None,
    order_date: date,
    *,
    currencies: CurrencyTable = DEFAULT_CURRENCIES,
    campaign_policy: CampaignPolicy = CampaignPolicy.ACTIVE_FOR_CUSTOMER,
    lcy_per_unit: Decimal | None = None,
) -> Quote:
    """Price every line for the customer on the order date, from the index alone.

    `currency` None or blank means the customer's currency (blank there: local).
    `lcy_per_unit` is the exchange rate in force on the order date (local currency per one
    unit of the quote's currency); with it, an item without a price line in that currency is
    priced from its item card converted, as Business Central does. Raises
    `QuoteRejected` listing every problem of every line (unknown or blocked item, unit of
    measure not sold, bad quantity, no price in the currency) so the caller can report
    them all at once.
    """
    currency_code = currencies.resolve(normalize_code(currency) or customer.currency_code)
    terms = _QuoteTerms(
        index=index,
        customer=customer,
        sources=CustomerSources(customer, campaign_policy),
        currency_code=currency_code,
        currency_is_local=currency_code == currencies.local_currency_code,
        precision=currencies.precision(currency_code),
        order_date=_as_order_date(order_date),
        lcy_per_unit=lcy_per_unit,
    )
    violations: list[LineViolation] = []
    if not lines:
        violations.append(
            LineViolation(None, None, ViolationRule.NO_LINES, "a quote needs at least one line")
        )
    quoted: list[QuotedLine] = []
    with localcontext(_MONEY_CONTEXT):
        for position, request in enumerate(lines):
            priced = _quote_line(terms, position, request, items, violations)
            if priced is not None:
                quoted.append(priced)
        if violations:
            raise QuoteRejected(violations)
        total = round_to_precision(
            sum((line.line_amount for line in quoted), _ZERO), terms.precision.amount_precision
        )
    return Quote(
        customer_no=customer.customer_no,
        currency_code=currency_code,
        order_date=terms.order_date,
        lines=tuple(quoted),
        total_amount=total,
    )


def _quote_line(
    terms: _QuoteTerms,
    position: int,
    request: QuoteLineRequest,
    items: Mapping[str, ItemPricingInfo],
    violations: list[LineViolation],
) -> QuotedLine | None:
    """Price one line, or append its violations (all of them) and return None."""
    sku = request.sku
    found_before = len(violations)

    def reject(rule: ViolationRule, detail: str) -> None:
        violations.append(LineViolation(position, sku, rule, detail))

    quantity = _valid_quantity(request.quantity)
    if quantity is None:
        reject(
            ViolationRule.BAD_QUANTITY,
            f"quantity must be a number greater than 0, got {request.quantity}",
        )
    item = items.get(sku)
    if item is None:
        reject(ViolationRule.UNKNOWN_ITEM, f"item {sku!r} does not exist")
        return None
    if item.blocked:
        reject(ViolationRule.ITEM_BLOCKED, f"item {sku!r} is blocked")
    unit = normalize_code(request.unit_of_measure) or item.base_unit_of_measure
    units_per = item.sales_units_of_measure.get(unit)
    if units_per is None:
        reject(
            ViolationRule.UNIT_OF_MEASURE_NOT_SOLD,
            f"item {sku!r} is not sold in unit of measure {unit!r}",
        )
    if quantity is None or units_per is None or len(violations) > found_before:
        return None

    precision = terms.precision
    criteria = LineCriteria(
        currency_code=terms.currency_code,
        currency_is_local=terms.currency_is_local,
        unit_of_measure=unit,
        unit_is_base=unit == item.base_unit_of_measure,
        variant_code=normalize_code(request.variant_code),
        quantity=quantity,
        order_date=terms.order_date,
    )
    selection = select_lines(
        terms.index.candidate_buckets(item.number, item.discount_group, terms.sources), criteria
    )
    # The item card's price is per base unit in the local currency; another currency needs
    # the exchange rate of the order date.
    item_card_price: Decimal | None = None
    if terms.currency_is_local:
        item_card_price = round_to_precision(
            item.unit_price * units_per, precision.unit_amount_precision
        )
    elif terms.lcy_per_unit:
        item_card_price = round_to_precision(
            item.unit_price * units_per / terms.lcy_per_unit, precision.unit_amount_precision
        )
    price_line = selection.price_line
    if price_line is not None:
        unit_price = round_to_precision(price_line.unit_price, precision.unit_amount_precision)
        price_source = PriceSource.of_line(price_line)
    elif item_card_price is not None:
        unit_price, price_source = item_card_price, _ITEM_CARD_SOURCE
    else:
        reject(
            ViolationRule.NO_PRICE,
            f"item {sku!r} has no price in {terms.currency_code} for unit {unit!r}",
        )
        return None

    list_line = selection.list_price_line
    if list_line is not None:
        list_price = round_to_precision(list_line.unit_price, precision.unit_amount_precision)
    else:
        list_price = item_card_price if item_card_price is not None else unit_price

    discount_line = selection.discount_line
    discount_allowed = terms.customer.allow_line_disc and (
        price_line is None or price_line.allow_line_disc
    )
    discount, discount_source = _ZERO, None
    if discount_allowed and discount_line is not None and discount_line.line_discount_percent:
        discount = discount_line.line_discount_percent
        discount_source = PriceSource.of_line(discount_line)

    line_amount = round_to_precision(
        quantity * unit_price * (_HUNDRED - discount) / _HUNDRED, precision.amount_precision
    )
    return QuotedLine(
        sku=sku,
        quantity=quantity,
        unit_of_measure=unit,
        unit_price=trim_unit_amount(unit_price, precision.amount_precision),
        list_price=trim_unit_amount(list_price, precision.amount_precision),
        line_discount_percent=discount,
        line_amount=line_amount,
        price_source=price_source,
        discount_source=discount_source,
    )
