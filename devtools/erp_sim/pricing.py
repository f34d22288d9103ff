"""The simulator's own sales price calculation (Business Central V16 price lists, simplified).

Written independently of the product's pricing code, on purpose: when both agree, the
agreement means something. Brute force over an item's price list lines is fast enough,
because lines are indexed by item number (a handful per item).

Rules: a line applies when its source matches the customer (All Customers; Customer = their
number; Customer Price Group = their group; Campaign = a campaign whose target group holds
the customer, its ``activeCampaigns``), its currency matches (blank = the local currency),
its unit of measure matches (blank = the item's base unit), the date lies within its dates
(``0001-01-01`` = open) and its minimum quantity is at most the ordered quantity. The unit
price is the lowest price of the applicable Price/Any lines (else the item's own unit price,
converted); the line discount is the highest discount of the applicable Discount/Any lines,
and none when the winning price line (or the customer) does not allow line discounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from devtools.erp_sim.dataset import Dataset
from devtools.erp_sim.numbers import to_decimal
from devtools.erp_sim.reference import BLANK_DATE, CURRENCIES, LOCAL_CURRENCY, Currency
from devtools.erp_sim.store import Row

_PRICE_TYPES = frozenset({"Price", "Any"})
_DISCOUNT_TYPES = frozenset({"Discount", "Any"})
_HUNDRED = Decimal(100)


class PricingError(Exception):
    """The request cannot be priced (unknown customer, item, currency or unit)."""


class UnknownCustomer(PricingError):
    pass


class UnknownItem(PricingError):
    pass


class UnknownCurrency(PricingError):
    pass


class UnknownUnitOfMeasure(PricingError):
    pass


@dataclass(frozen=True)
class PriceRequest:
    customer_number: str
    item_number: str
    quantity: Decimal
    currency_code: str | None  # None or blank: the customer's currency
    unit_of_measure_code: str | None  # None or blank: the item's base unit
    on_date: date


@dataclass(frozen=True)
class PriceResult:
    unit_price: Decimal
    line_discount_percent: Decimal
    line_amount: Decimal
    price_list_code: str | None  # None: the item's own unit price ("list price")
    list_price: Decimal
    currency_code: str
    unit_of_measure_code: str
    minimum_quantity: Decimal


def normalize_currency(code: str | None) -> str:
    """Blank means the local currency; codes compare upper-case."""
    return (code or "").strip().upper() or LOCAL_CURRENCY


def currency_of(code: str | None) -> Currency:
    currency = CURRENCIES.get(normalize_currency(code))
    if currency is None:
        raise UnknownCurrency(f"The currency '{code}' does not exist.")
    return currency


def round_to(value: Decimal, precision: Decimal) -> Decimal:
    """Business Central's "nearest" rounding (half away from zero) to ``precision``."""
    return (value / precision).quantize(Decimal(1), rounding=ROUND_HALF_UP) * precision


def line_amount(
    quantity: Decimal, unit_price: Decimal, discount: Decimal, currency: Currency
) -> Decimal:
    """qty x unit price x (1 - discount/100), rounded to the currency's amount precision."""
    raw = quantity * unit_price * (_HUNDRED - discount) / _HUNDRED
    return round_to(raw, currency.amount_precision).quantize(currency.amount_precision)


def customer_currency(dataset: Dataset, customer: Row) -> str:
    return normalize_currency(customer.get("currencyCode"))


def calculate(dataset: Dataset, request: PriceRequest) -> PriceResult:
    """Price one line for one customer, by the rules in the module docstring."""
    customer = dataset.customer(request.customer_number)
    if customer is None:
        raise UnknownCustomer(f"The customer '{request.customer_number}' does not exist.")
    item = dataset.item(request.item_number)
    if item is None:
        raise UnknownItem(f"The item '{request.item_number}' does not exist.")
    wanted_currency = request.currency_code or customer_currency(dataset, customer)
    currency = currency_of(wanted_currency)
    base_unit = item["baseUnitOfMeasureCode"]
    unit = (request.unit_of_measure_code or "").strip().upper() or base_unit
    units = dataset.item_units.get(item["number"], {base_unit: Decimal(1)})
    if unit not in units:
        raise UnknownUnitOfMeasure(
            f"The unit of measure '{unit}' is not set up for item '{item['number']}'."
        )
    profile = dataset.pricing_profile(customer["number"]) or {}
    price_group = profile.get("customerPriceGroup", "")
    allow_customer_discount = bool(profile.get("allowLineDisc", True))
    campaigns = frozenset(
        code for code in str(profile.get("activeCampaigns", "")).split(",") if code
    )
    on_date = request.on_date.isoformat()

    applicable = [
        line
        for line in dataset.price_lines(item["number"])
        if _source_matches(line, customer["number"], price_group, campaigns)
        and line["assetType"] == "Item"
        and not line["variantCode"]
        and normalize_currency(line["currencyCode"]) == currency.code
        and (line["unitOfMeasureCode"] or base_unit) == unit
        and _within(line, on_date)
        and to_decimal(line["minimumQuantity"]) <= request.quantity
    ]
    price_lines = [line for line in applicable if line["amountType"] in _PRICE_TYPES]
    list_price = _list_price(item, units[unit], currency)
    winner: Row | None = None
    if price_lines:
        # Lowest price wins; at an equal price the line that allows a line discount (the
        # customer's better deal), then the list code, so the answer is stable.
        winner = min(
            price_lines,
            key=lambda line: (
                to_decimal(line["unitPrice"]),
                not line["allowLineDisc"],
                line["priceListCode"],
            ),
        )
        unit_price = round_to(to_decimal(winner["unitPrice"]), currency.unit_amount_precision)
    else:
        unit_price = list_price
    discounts = [
        to_decimal(line["lineDiscountPercent"])
        for line in applicable
        if line["amountType"] in _DISCOUNT_TYPES
    ]
    discount = max(discounts, default=Decimal(0))
    if (winner is not None and not winner["allowLineDisc"]) or not allow_customer_discount:
        discount = Decimal(0)
    return PriceResult(
        unit_price=unit_price,
        line_discount_percent=discount,
        line_amount=line_amount(request.quantity, unit_price, discount, currency),
        price_list_code=winner["priceListCode"] if winner else None,
        list_price=list_price,
        currency_code=currency.code,
        unit_of_measure_code=unit,
        minimum_quantity=to_decimal(winner["minimumQuantity"]) if winner else Decimal(0),
    )


def _source_matches(
    line: Row, customer_number: str, price_group: str, campaigns: frozenset[str]
) -> bool:
    source_type = line["sourceType"]
    if source_type == "All Customers":
        return True
    if source_type == "Campaign":
        return bool(line["sourceNo"] in campaigns)
    if source_type == "Customer":
        return bool(line["sourceNo"] == customer_number)
    if source_type == "Customer Price Group":
        return bool(price_group) and line["sourceNo"] == price_group
    return False


def _within(line: Row, on_date: str) -> bool:
    start, end = line["startingDate"] or BLANK_DATE, line["endingDate"] or BLANK_DATE
    if start != BLANK_DATE and on_date < start:
        return False
    return not (end != BLANK_DATE and on_date > end)


def _list_price(item: Row, qty_per_unit: Decimal, currency: Currency) -> Decimal:
    """The item's own unit price, for the unit of measure, converted from the local currency."""
    base = to_decimal(item["unitPrice"]) * qty_per_unit
    if currency.code != LOCAL_CURRENCY:
        base = base / currency.lcy_per_unit
    return round_to(base, currency.unit_amount_precision)
