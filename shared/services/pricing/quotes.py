"""Price quotes for storefronts: the HTTP contract on one side, the pricing domain on the other.

Computed from the instance's price book only; no ERP call on this path. Every answer says how
current the published data is (``dataAsOf``, ``stale``), so a storefront can decide what to
show while the ERP is unreachable.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from shared.domain.pricing import (
    CampaignPolicy,
    Quote,
    QuoteLineRequest,
    QuoteRejected,
    quote,
)
from shared.domain.pricing.currency import CurrencyTable
from shared.observability import metrics
from shared.services.errors import Rejected, UnknownCustomer
from shared.services.pricing.book import PriceBook

MAX_QUOTE_LINES = 500
MAX_QUANTITY = Decimal(1_000_000)


def _whole_positive(value: Decimal) -> Decimal:
    if not value.is_finite() or value <= 0 or value != value.to_integral_value():
        raise ValueError("quantity must be a whole number greater than zero")
    if value > MAX_QUANTITY:
        raise ValueError(f"quantity must be at most {MAX_QUANTITY}")
    return value


Quantity = Annotated[
    Decimal,
    AfterValidator(_whole_positive),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": int(MAX_QUANTITY)},
                {"type": "string", "pattern": r"^[0-9]{1,7}(\.0+)?$", "maxLength": 20},
            ],
            "description": f"A whole number from 1 to {MAX_QUANTITY}, as a number or string.",
        },
        mode="validation",
    ),
]
Sku = Annotated[str, Field(min_length=1, max_length=100)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")]
UnitCode = Annotated[str, Field(min_length=1, max_length=10)]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class QuoteLineIn(_Contract):
    sku: Sku
    quantity: Quantity
    unit_of_measure: UnitCode | None = Field(None, alias="unitOfMeasure")


class QuoteRequest(_Contract):
    """Body of ``POST /api/prices/quote``."""

    customer_id: str = Field(alias="customerId", min_length=1, max_length=50)
    currency: CurrencyCode | None = None
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=MAX_QUOTE_LINES)
    order_date: date | None = Field(None, alias="orderDate")

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value


class SingleQuoteQuery(_Contract):
    """Query of ``GET /api/prices/{sku}``."""

    sku: Sku
    customer_id: str = Field(alias="customerId", min_length=1, max_length=50)
    quantity: Quantity = Decimal(1)
    currency: CurrencyCode | None = None
    unit_of_measure: UnitCode | None = Field(None, alias="unitOfMeasure")
    order_date: date | None = Field(None, alias="orderDate")


class UnsupportedCurrency(Rejected):
    """The currency is not one the storefronts sell in."""

    def __init__(self, currency: str) -> None:
        super().__init__(
            "Invalid request",
            "the currency is not sold",
            [
                {
                    "rule": "unknown-currency",
                    "field": "currency",
                    "detail": f"{currency} is not sold",
                }
            ],
        )
        self.currency = currency


def _money(value: Decimal) -> str:
    return format(value, "f")


def _quantity(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else format(value, "f")


async def quote_prices(
    book: PriceBook,
    request: QuoteRequest,
    currencies: CurrencyTable,
    sold_currencies: frozenset[str],
    campaign_policy: CampaignPolicy = CampaignPolicy.ACTIVE_FOR_CUSTOMER,
) -> dict[str, Any]:
    """The contract's quote answer, from a current price book (refreshed first if due)."""
    with metrics.quote_timer():
        await book.ensure_current()
        return price_from_book(book, request, currencies, sold_currencies, campaign_policy)


def price_from_book(
    book: PriceBook,
    request: QuoteRequest,
    currencies: CurrencyTable,
    sold_currencies: frozenset[str],
    campaign_policy: CampaignPolicy = CampaignPolicy.ACTIVE_FOR_CUSTOMER,
) -> dict[str, Any]:
    """Price a request from the book as it is; raises ``UnknownCustomer``,
    ``UnsupportedCurrency`` or the domain's ``QuoteRejected`` listing every bad line."""
    customer = book.customers.get(request.customer_id)
    if customer is None:
        raise UnknownCustomer(request.customer_id)
    if request.currency and request.currency not in sold_currencies:
        raise UnsupportedCurrency(request.currency)
    order_date = request.order_date or datetime.now(UTC).date()
    currencies = book.currency_table(currencies)  # the ERP's roundings, as published
    currency = currencies.resolve(request.currency or customer.currency_code)
    result = quote(
        book.index,
        customer,
        book.items,
        [
            QuoteLineRequest(line.sku, line.quantity, line.unit_of_measure or "")
            for line in request.lines
        ],
        request.currency,
        order_date,
        currencies=currencies,
        campaign_policy=campaign_policy,
        lcy_per_unit=book.lcy_per_unit(currency, order_date),
    )
    return _answer(request.customer_id, result, book)


def _answer(customer_id: str, result: Quote, book: PriceBook) -> dict[str, Any]:
    freshness = book.freshness
    return {
        "customerId": customer_id,
        "currency": result.currency_code,
        "orderDate": result.order_date.isoformat(),
        "lines": [
            {
                "sku": line.sku,
                "quantity": _quantity(line.quantity),
                "unitOfMeasure": line.unit_of_measure,
                "unitPrice": _money(line.unit_price),
                "listPrice": _money(line.list_price),
                "lineDiscountPercent": _money(line.line_discount_percent),
                "lineAmount": _money(line.line_amount),
                "priceSource": {
                    "type": str(line.price_source.type),
                    "priceListCode": line.price_source.price_list_code,
                    "minimumQuantity": _quantity(line.price_source.minimum_quantity),
                },
                "discountSource": None
                if line.discount_source is None
                else {
                    "type": str(line.discount_source.type),
                    "priceListCode": line.discount_source.price_list_code,
                    "minimumQuantity": _quantity(line.discount_source.minimum_quantity),
                },
            }
            for line in result.lines
        ],
        "totalAmount": _money(result.total_amount),
        "dataAsOf": freshness.data_as_of.isoformat() if freshness.data_as_of else None,
        "stale": freshness.stale,
    }


def violations_of(rejected: QuoteRejected) -> list[dict[str, Any]]:
    """The domain's line problems in the contract's ``violations`` shape."""
    return [
        {
            "rule": str(v.rule),
            **({"sku": v.sku} if v.sku is not None else {}),
            **(
                {"line": v.line_index, "field": f"lines[{v.line_index}]"}
                if v.line_index is not None
                else {}
            ),
            "detail": v.detail,
        }
        for v in rejected.violations
    ]
