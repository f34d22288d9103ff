"""The answers of the price routes as wire models (the requests live in ``quotes``)."""

from __future__ import annotations

from pydantic import Field

from shared.services.http_contract import DecimalString, Timestamp, WireModel, WireQuantity


class PriceSourceAnswer(WireModel):
    """Which price list line (or the item card) gave the price or the discount."""

    type: str = Field(examples=["customer", "customer-price-group", "all-customers", "item"])
    price_list_code: str | None
    minimum_quantity: WireQuantity


class QuoteLineAnswer(WireModel):
    sku: str
    quantity: WireQuantity
    unit_of_measure: str
    unit_price: DecimalString
    list_price: DecimalString
    line_discount_percent: DecimalString
    line_amount: DecimalString
    price_source: PriceSourceAnswer
    discount_source: PriceSourceAnswer | None


class _Freshness(WireModel):
    customer_id: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    order_date: str = Field(json_schema_extra={"format": "date"})
    total_amount: DecimalString
    data_as_of: Timestamp | None = Field(
        description="When the published price data was last current."
    )
    stale: bool = Field(description="True when the data is older than the freshness goal.")


class QuoteAnswer(_Freshness):
    """200 of ``POST /api/prices/quote``."""

    lines: list[QuoteLineAnswer]


class SinglePriceAnswer(_Freshness, QuoteLineAnswer):
    """200 of ``GET /api/prices/{sku}``: the quote's fields and its one line, side by side."""
