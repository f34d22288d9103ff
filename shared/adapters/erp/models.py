"""Typed shapes of the Business Central entities this product reads and writes.

Field names are BC's camelCase (aliases); money and quantities are Decimal; datetimes are
timezone-aware UTC; extra fields are ignored so BC adding a field never breaks a sync.
BC writes an empty date as ``0001-01-01`` and an empty GUID as all zeros: both become None.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)
from pydantic.alias_generators import to_camel

_EMPTY_GUID = UUID(int=0)


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _blank_date_to_none(value: Any) -> Any:
    if value in ("", "0001-01-01", None):
        return None
    return value


def _empty_guid_to_none(value: Any) -> Any:
    if value in ("", None) or str(value) == str(_EMPTY_GUID):
        return None
    return value


def _blank_blocked(value: Any) -> Any:
    # BC's OData writes the blank enum member as "_x0020_".
    if value in ("", "_x0020_", None):
        return " "
    return value


_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def decode_enum(value: Any) -> Any:
    """BC's OData writes enum members with XML-escaped characters: ``Non_x002D_Inventory``
    is "Non-Inventory", ``In_x0020_Review`` is "In Review"; both forms are accepted."""
    if isinstance(value, str) and "_x" in value:
        return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), value)
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
EnumText = Annotated[str, BeforeValidator(decode_enum)]
OptionalDate = Annotated[date | None, BeforeValidator(_blank_date_to_none)]
OptionalGuid = Annotated[UUID | None, BeforeValidator(_empty_guid_to_none)]
CustomerBlocked = Annotated[Literal[" ", "Ship", "Invoice", "All"], BeforeValidator(_blank_blocked)]


class ErpModel(BaseModel):
    """Common configuration: camelCase aliases, extra fields ignored, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


class EtaggedModel(ErpModel):
    """An entity that can be changed later, so its ETag is kept for If-Match."""

    etag: str | None = Field(default=None, alias="@odata.etag")


class Company(ErpModel):
    id: UUID
    name: str
    display_name: str = ""


class Item(EtaggedModel):
    id: UUID
    number: str
    display_name: str = ""
    type: EnumText = "Inventory"
    blocked: bool = False
    gtin: str = ""
    inventory: Decimal = Decimal(0)
    unit_price: Decimal
    price_includes_tax: bool = False
    unit_cost: Decimal = Decimal(0)
    base_unit_of_measure_code: str = ""
    item_category_code: str = ""
    last_modified_date_time: UtcDatetime


class Customer(EtaggedModel):
    id: UUID
    number: str
    display_name: str = ""
    blocked: CustomerBlocked = " "
    credit_limit: Decimal = Decimal(0)
    balance_due: Decimal = Decimal(0)
    currency_code: str = ""
    payment_terms_id: OptionalGuid = None
    last_modified_date_time: UtcDatetime


class CustomerFinancialDetail(ErpModel):
    id: UUID
    number: str = ""
    balance: Decimal
    total_sales_excluding_tax: Decimal = Decimal(0)
    overdue_amount: Decimal = Decimal(0)


class SalesOrderLine(ErpModel):
    id: str | None = None
    sequence: int | None = None
    line_type: str = "Item"
    line_object_number: str = ""
    item_id: OptionalGuid = None
    description: str = ""
    quantity: Decimal
    unit_price: Decimal = Decimal(0)
    discount_percent: Decimal = Decimal(0)
    item_variant_id: OptionalGuid = None
    location_id: OptionalGuid = None
    shipment_date: OptionalDate = None
    amount_excluding_tax: Decimal | None = None
    amount_including_tax: Decimal | None = None


class SalesOrder(EtaggedModel):
    id: UUID
    number: str
    external_document_number: str = ""
    customer_id: OptionalGuid = None
    customer_number: str
    currency_code: str = ""
    order_date: OptionalDate = None
    requested_delivery_date: OptionalDate = None
    status: EnumText = "Draft"
    total_amount_excluding_tax: Decimal | None = None
    total_tax_amount: Decimal | None = None
    total_amount_including_tax: Decimal | None = None
    last_modified_date_time: UtcDatetime | None = None
    sales_order_lines: list[SalesOrderLine] | None = None


class SalesQuote(EtaggedModel):
    id: UUID
    number: str
    external_document_number: str = ""
    customer_id: OptionalGuid = None
    customer_number: str
    currency_code: str = ""
    document_date: OptionalDate = None
    valid_until_date: OptionalDate = None
    status: EnumText = "Draft"
    total_amount_excluding_tax: Decimal | None = None
    total_amount_including_tax: Decimal | None = None
    last_modified_date_time: UtcDatetime | None = None


class Location(ErpModel):
    id: UUID
    code: str
    display_name: str = ""


class ItemCategory(ErpModel):
    id: UUID
    code: str
    display_name: str = ""
    last_modified_date_time: UtcDatetime | None = None


class PriceListLine(EtaggedModel):
    """One BC price list line: a price or a discount for one asset and one source."""

    id: UUID | None = None
    price_list_code: str
    source_type: EnumText
    source_no: str = ""
    asset_type: EnumText
    asset_no: str
    variant_code: str = ""
    unit_of_measure_code: str = ""
    minimum_quantity: Decimal = Decimal(0)
    amount_type: EnumText = "Any"
    unit_price: Decimal = Decimal(0)
    line_discount_percent: Decimal = Decimal(0)
    allow_line_disc: bool = True
    starting_date: OptionalDate = None
    ending_date: OptionalDate = None
    currency_code: str = ""
    last_modified_date_time: UtcDatetime


class ItemAvailability(ErpModel):
    """A row of the custom ``itemAvailabilityByLocation`` page: stock of one item at one place.

    ``reserved_quantity`` is every reservation on the location's inventory;
    ``reserved_qty_on_sales_orders`` the part of it that sales lines hold (Business Central's
    "Res. Qty. on Sales Orders"), which ``qty_on_sales_orders`` (outstanding sales-line
    quantity) already contains.
    """

    item_number: str
    location_code: str
    inventory: Decimal
    reserved_quantity: Decimal = Decimal(0)
    reserved_qty_on_sales_orders: Decimal = Decimal(0)
    qty_on_sales_orders: Decimal = Decimal(0)
    qty_on_purchase_orders: Decimal = Decimal(0)
    last_modified_date_time: UtcDatetime | None = None


class CustomerPricingProfile(ErpModel):
    """A row of the custom ``customerPricingProfiles`` page.

    ``active_campaigns``: the activated campaigns whose target group holds the customer,
    comma-separated (Business Central applies a Campaign price line only to them).
    """

    customer_number: str
    customer_price_group: str = ""
    customer_discount_group: str = ""
    currency_code: str = ""
    allow_line_disc: bool = True
    prices_including_vat: bool = False
    active_campaigns: str = Field("", max_length=2048)
    last_modified_date_time: UtcDatetime | None = None

    @property
    def campaigns(self) -> list[str]:
        """The campaign codes, upper case, without blanks or repeats, in order."""
        codes = (code.strip().upper() for code in self.active_campaigns.split(","))
        return list(dict.fromkeys(code for code in codes if code))


class CurrencyRounding(ErpModel):
    """A row of the custom ``currencyRoundings`` page: how Business Central rounds a currency.

    The blank code is the local currency, whose precisions live in the General Ledger Setup
    (the standard ``currencies`` API carries only the amount precision, not the unit-amount
    one, and has no row for the local currency).
    """

    currency_code: str = ""
    amount_rounding_precision: Decimal = Field(gt=0)
    unit_amount_rounding_precision: Decimal = Field(gt=0)
    last_modified_date_time: UtcDatetime | None = None


class CurrencyExchangeRate(ErpModel):
    """``exchangeRateAmount`` units of ``currencyCode`` = ``relationalExchangeRateAmount`` units
    of ``relationalCurrencyCode`` (blank: the local currency), from ``startingDate`` on."""

    id: UUID
    currency_code: str
    starting_date: date
    exchange_rate_amount: Decimal = Field(gt=0)
    relational_currency_code: str = ""
    relational_exchange_rate_amount: Decimal = Field(gt=0)
    last_modified_date_time: UtcDatetime | None = None


class ItemUnitOfMeasure(ErpModel):
    """A unit an item is sold in (custom ``itemUnitsOfMeasure`` page; v2.0 has no such set)."""

    item_number: str
    code: str
    qty_per_unit_of_measure: Decimal = Field(gt=0)
    last_modified_date_time: UtcDatetime | None = None


class CustomerCreditSummary(ErpModel):
    customer_number: str
    credit_limit: Decimal
    balance: Decimal
    overdue_amount: Decimal = Decimal(0)
    outstanding_orders_amount: Decimal = Decimal(0)
    blocked: CustomerBlocked = " "


class ItemAttribute(ErpModel):
    name: str
    value: str = ""


def _media_from_string(value: Any) -> Any:
    # Some pages list media as bare URLs or ids rather than objects.
    if isinstance(value, str):
        return {"url": value} if "://" in value else {"id": value}
    return value


class ItemMedia(ErpModel):
    id: str | None = None
    url: str | None = None
    mime_type: str | None = None


class ItemContent(ErpModel):
    item_number: str
    description: str = ""
    marketing_text: str = ""
    attributes: list[ItemAttribute] = Field(default_factory=list)
    media: list[Annotated[ItemMedia, BeforeValidator(_media_from_string)]] = Field(
        default_factory=list
    )
    last_modified_date_time: UtcDatetime | None = None


class Subscription(EtaggedModel):
    subscription_id: str
    notification_url: str
    resource: str
    client_state: str | None = None
    expiration_date_time: UtcDatetime | None = None
    last_modified_date_time: UtcDatetime | None = None


# ---- payloads this product sends ----


class PayloadModel(ErpModel):
    """A request body: serialised by alias, without unset fields."""

    def to_body(self) -> dict[str, Any]:
        """The JSON-ready dict (Decimals kept, the encoder writes them as numbers)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="python")


class SalesOrderLineCreate(PayloadModel):
    line_type: str = "Item"
    line_object_number: str = Field(min_length=1)
    quantity: Decimal = Field(gt=0)
    # BC falls back to the item's sales unit when this is left out.
    unit_of_measure_code: str | None = Field(default=None, max_length=10)
    unit_price: Decimal | None = None
    discount_percent: Decimal | None = None
    item_variant_id: UUID | None = None
    location_id: UUID | None = None
    shipment_date: date | None = None
    description: str | None = None


def normalize_external_document_number(value: str) -> str:
    """BC stores ``externalDocumentNumber`` as Code[35], which it upper-cases.

    Sending and looking up the upper-cased form means a lookup finds what a create stored.
    """
    return value.strip().upper()


ExternalDocumentNumber = Annotated[
    str,
    AfterValidator(normalize_external_document_number),
    Field(min_length=1, max_length=35),
]


class SalesOrderCreate(PayloadModel):
    """Deep insert: the header and its lines in one POST, so BC commits them together."""

    customer_number: str = Field(min_length=1)
    external_document_number: ExternalDocumentNumber
    currency_code: str | None = None
    order_date: date | None = None
    requested_delivery_date: date | None = None
    sales_order_lines: list[SalesOrderLineCreate] = Field(min_length=1)


class SalesQuoteLineCreate(PayloadModel):
    line_type: str = "Item"
    line_object_number: str = Field(min_length=1)
    quantity: Decimal = Field(gt=0)
    unit_of_measure_code: str | None = Field(default=None, max_length=10)
    unit_price: Decimal | None = None
    discount_percent: Decimal | None = None


class SalesQuoteCreate(PayloadModel):
    customer_number: str = Field(min_length=1)
    external_document_number: str | None = Field(default=None, max_length=35)
    currency_code: str | None = None
    document_date: date | None = None
    sales_quote_lines: list[SalesQuoteLineCreate] = Field(default_factory=list)


class SubscriptionCreate(PayloadModel):
    notification_url: str = Field(min_length=1)
    resource: str = Field(min_length=1)
    client_state: str | None = Field(default=None, max_length=2048)
