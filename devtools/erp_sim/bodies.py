"""Validated shapes of every request body and query the simulator accepts (pydantic v2).

Unknown properties are refused the way Business Central refuses them, so a client that
misspells a field learns it here instead of in production.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from devtools.erp_sim.errors import BadRequest
from devtools.erp_sim.reference import BLANK_DATE, BLANK_ENUM


def _escape_enum(value: object) -> object:
    # BC's OData names the enum member with the dash XML-escaped, and accepts either form.
    return "Non_x002D_Inventory" if value == "Non-Inventory" else value


ItemType = Annotated[
    Literal["Inventory", "Service", "Non_x002D_Inventory"], BeforeValidator(_escape_enum)
]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _at_most_five_decimals(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -5:
        raise ValueError("must have at most 5 decimals")
    return value


def _date_or_blank(value: Any) -> str:
    """A date as ``YYYY-MM-DD``; null, "" and ``0001-01-01`` all mean "no date"."""
    if value in (None, "", BLANK_DATE):
        return BLANK_DATE
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise ValueError("must be a date written as YYYY-MM-DD")


def _blank_enum(value: Any) -> Any:
    return BLANK_ENUM if value in (None, "", " ", BLANK_ENUM) else value


def _upper(value: str) -> str:
    return value.strip().upper()


Decimal5 = Annotated[Decimal, AfterValidator(_at_most_five_decimals)]
Amount = Annotated[
    Decimal, Field(ge=0, le=Decimal("999999999999")), AfterValidator(_at_most_five_decimals)
]
Percent = Annotated[Decimal, Field(ge=0, le=100), AfterValidator(_at_most_five_decimals)]
Code20 = Annotated[str, Field(min_length=1, max_length=20), AfterValidator(_upper)]
OptionalCode = Annotated[str, Field(max_length=20), AfterValidator(_upper)]
Code35 = Annotated[str, Field(max_length=35), AfterValidator(_upper)]
Text100 = Annotated[str, Field(max_length=100)]
BlankableDate = Annotated[str, BeforeValidator(_date_or_blank)]
Blocked = Annotated[Literal["_x0020_", "Ship", "Invoice", "All"], BeforeValidator(_blank_enum)]
SourceType = Literal["All Customers", "Customer", "Customer Price Group", "Campaign"]
AmountType = Literal["Price", "Discount", "Any"]


class Body(BaseModel):
    """Common rules: no unknown properties; an echoed ``@odata.etag`` is tolerated."""

    model_config = ConfigDict(extra="forbid")

    etag: str | None = Field(default=None, alias="@odata.etag", exclude=True)

    def changes(self) -> dict[str, Any]:
        """The fields the client actually sent, by their JSON names."""
        return self.model_dump(by_alias=True, exclude_unset=True, exclude={"etag"})


# ---- items, customers, price list lines, availability ------------------------------


class ItemCreate(Body):
    number: Code20
    displayName: Text100 = ""
    displayName2: Text100 = ""
    type: ItemType = "Inventory"
    itemCategoryCode: OptionalCode = ""
    blocked: bool = False
    gtin: Annotated[str, Field(max_length=14)] = ""
    unitPrice: Amount = Decimal(0)
    unitCost: Amount = Decimal(0)
    priceIncludesTax: bool = False
    taxGroupCode: OptionalCode = "TAXABLE"
    baseUnitOfMeasureCode: Code20 = "PCS"


class ItemPatch(Body):
    number: Code20 | None = None
    displayName: Text100 | None = None
    displayName2: Text100 | None = None
    type: ItemType | None = None
    itemCategoryCode: OptionalCode | None = None
    blocked: bool | None = None
    gtin: Annotated[str, Field(max_length=14)] | None = None
    unitPrice: Amount | None = None
    unitCost: Amount | None = None
    priceIncludesTax: bool | None = None
    taxGroupCode: OptionalCode | None = None


class CustomerCreate(Body):
    number: Code20
    displayName: Text100 = ""
    type: Literal["Company", "Person"] = "Company"
    addressLine1: Text100 = ""
    city: Text100 = ""
    country: Annotated[str, Field(max_length=10)] = ""
    email: Text100 = ""
    phoneNumber: Annotated[str, Field(max_length=30)] = ""
    currencyCode: OptionalCode = ""
    paymentTermsId: UUID | None = None
    blocked: Blocked = "_x0020_"
    creditLimit: Amount = Decimal(0)


class CustomerPatch(Body):
    number: Code20 | None = None
    displayName: Text100 | None = None
    type: Literal["Company", "Person"] | None = None
    addressLine1: Text100 | None = None
    city: Text100 | None = None
    country: Annotated[str, Field(max_length=10)] | None = None
    email: Text100 | None = None
    phoneNumber: Annotated[str, Field(max_length=30)] | None = None
    currencyCode: OptionalCode | None = None
    paymentTermsId: UUID | None = None
    blocked: Blocked | None = None
    creditLimit: Amount | None = None


class PriceListLineCreate(Body):
    priceListCode: Code20
    sourceType: SourceType = "All Customers"
    sourceNo: OptionalCode = ""
    assetType: Literal["Item", "Item Discount Group"] = "Item"
    assetNo: Code20
    variantCode: OptionalCode = ""
    unitOfMeasureCode: OptionalCode = ""
    minimumQuantity: Amount = Decimal(0)
    amountType: AmountType = "Price"
    unitPrice: Amount = Decimal(0)
    lineDiscountPercent: Percent = Decimal(0)
    allowLineDisc: bool = True
    startingDate: BlankableDate = BLANK_DATE
    endingDate: BlankableDate = BLANK_DATE
    currencyCode: OptionalCode = ""


class PriceListLinePatch(Body):
    priceListCode: Code20 | None = None
    sourceType: SourceType | None = None
    sourceNo: OptionalCode | None = None
    unitOfMeasureCode: OptionalCode | None = None
    minimumQuantity: Amount | None = None
    amountType: AmountType | None = None
    unitPrice: Amount | None = None
    lineDiscountPercent: Percent | None = None
    allowLineDisc: bool | None = None
    startingDate: BlankableDate | None = None
    endingDate: BlankableDate | None = None
    currencyCode: OptionalCode | None = None


class AvailabilityCreate(Body):
    itemNumber: Code20
    locationCode: Code20
    inventory: Decimal5 = Decimal(0)
    reservedQuantity: Amount = Decimal(0)
    reservedQtyOnSalesOrders: Amount = Decimal(0)
    qtyOnSalesOrders: Amount = Decimal(0)
    qtyOnPurchaseOrders: Amount = Decimal(0)


class AvailabilityPatch(Body):
    inventory: Decimal5 | None = None
    reservedQuantity: Amount | None = None
    reservedQtyOnSalesOrders: Amount | None = None
    qtyOnSalesOrders: Amount | None = None
    qtyOnPurchaseOrders: Amount | None = None


# ---- sales documents ------------------------------------------------------------------


class SalesLineCreate(Body):
    sequence: int | None = None
    lineType: Literal["Item"] = "Item"
    itemId: UUID | None = None
    lineObjectNumber: Annotated[str, Field(max_length=20)] | None = None
    description: Text100 | None = None
    unitOfMeasureCode: OptionalCode | None = None
    quantity: Amount = Decimal(0)
    unitPrice: Amount | None = None
    discountPercent: Percent | None = None
    itemVariantId: UUID | None = None
    locationId: UUID | None = None
    shipmentDate: BlankableDate | None = None


class SalesLinePatch(Body):
    """PATCH of a sales order line: the quantity (the change inside sales makes)."""

    quantity: Amount


class _SalesHeaderCreate(Body):
    externalDocumentNumber: Code35 = ""
    customerId: UUID | None = None
    customerNumber: Annotated[str, Field(max_length=20)] | None = None
    currencyCode: OptionalCode | None = None
    requestedDeliveryDate: BlankableDate | None = None
    shipToName: Text100 | None = None
    shipToContact: Text100 | None = None
    shipToAddressLine1: Text100 | None = None
    shipToAddressLine2: Text100 | None = None
    shipToCity: Annotated[str, Field(max_length=30)] | None = None
    shipToCountry: Annotated[str, Field(max_length=10)] | None = None
    shipToState: Annotated[str, Field(max_length=30)] | None = None
    shipToPostCode: Annotated[str, Field(max_length=20)] | None = None
    email: Text100 | None = None
    phoneNumber: Annotated[str, Field(max_length=30)] | None = None


class SalesOrderCreate(_SalesHeaderCreate):
    orderDate: date | None = None
    salesOrderLines: list[SalesLineCreate] = Field(default_factory=list, max_length=10_000)


class SalesQuoteCreate(_SalesHeaderCreate):
    documentDate: date | None = None
    salesQuoteLines: list[SalesLineCreate] = Field(default_factory=list, max_length=10_000)


class SalesDocumentPatch(Body):
    externalDocumentNumber: Code35 | None = None
    requestedDeliveryDate: BlankableDate | None = None
    shipToName: Text100 | None = None
    shipToContact: Text100 | None = None
    shipToAddressLine1: Text100 | None = None
    shipToAddressLine2: Text100 | None = None
    shipToCity: Annotated[str, Field(max_length=30)] | None = None
    shipToCountry: Annotated[str, Field(max_length=10)] | None = None
    shipToState: Annotated[str, Field(max_length=30)] | None = None
    shipToPostCode: Annotated[str, Field(max_length=20)] | None = None
    email: Text100 | None = None
    phoneNumber: Annotated[str, Field(max_length=30)] | None = None


# ---- webhooks ---------------------------------------------------------------------------


HttpUrl = Annotated[str, Field(min_length=8, max_length=2048, pattern=r"^https?://")]


class SubscriptionCreate(Body):
    notificationUrl: HttpUrl
    resource: Annotated[str, Field(min_length=1, max_length=1024)]
    clientState: Annotated[str, Field(max_length=2048)] = ""


class SubscriptionPatch(Body):
    notificationUrl: HttpUrl | None = None
    resource: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    clientState: Annotated[str, Field(max_length=2048)] | None = None


# ---- control routes -------------------------------------------------------------------


class Control(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsBody(Control):
    maxConcurrent: Annotated[int, Field(ge=1, le=10_000)] | None = None
    requestsPerWindow: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    windowSeconds: Annotated[float, Field(gt=0, le=86_400)] | None = None
    queueSize: Annotated[int, Field(ge=0, le=10_000)] | None = None
    queueTimeoutSeconds: Annotated[float, Field(gt=0, le=3_600)] | None = None


class HoldBody(Control):
    """Occupy processing slots of a principal, as other instances' requests would."""

    principal: Annotated[str, Field(min_length=1, max_length=4096)] = "anonymous"
    slots: Annotated[int, Field(ge=1, le=1_000)] = 5
    seconds: Annotated[float, Field(gt=0, le=3_600)] = 10.0


class FaultsBody(Control):
    latencyMs: Annotated[int, Field(ge=0, le=600_000)] = 0
    errorRate: Annotated[float, Field(ge=0, le=1)] = 0.0
    outage: bool = False
    throttle: bool = False
    dropResponseAfterCommit: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    dropMode: Literal["500", "close"] = "500"
    commitDelayMs: Annotated[int, Field(ge=0, le=600_000)] = 0


class ResetBody(Control):
    seed: int | None = None
    items: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    customers: Annotated[int, Field(ge=0, le=100_000)] | None = None
    anchorDate: date | None = None


class ConfigBody(Control):
    creditCheck: bool | None = None
    reserveOnOrder: bool | None = None
    defaultPageSize: Annotated[int, Field(ge=1, le=20_000)] | None = None
    subscriptionHandshake: bool | None = None


class NotifyBody(Control):
    subscriptionId: str | None = None
    resource: str | None = None
    changeType: Literal["created", "updated", "deleted", "collection"] = "updated"
    entityId: str | None = None
    handshake: bool = False
    # For a "collection" notification: when the bulk change began (default 30 s ago).
    firstChange: AwareDatetime | None = None


class ShipLineBody(Control):
    lineId: UUID | None = None
    sequence: int | None = None
    quantity: Amount


class ShipBody(Control):
    """``POST /_sim/salesOrders/{id}/ship``: a (partial) shipment; no lines = all outstanding."""

    lines: list[ShipLineBody] | None = None
    shippingAgentCode: Annotated[str, Field(max_length=10)] = ""
    packageTrackingNumber: Annotated[str, Field(max_length=50)] = ""
    invoice: bool = False


class StatusBody(Control):
    """``POST /_sim/salesOrders/{id}/status``: Business Central's own Sales Header status."""

    status: Literal["Open", "Pending Approval", "Released"]


class CreditMemoLineBody(Control):
    sequence: int
    quantity: Amount


class CreditMemoBody(Control):
    """``POST /_sim/salesInvoices/{id}/creditMemo``: credit (part of) an invoice."""

    lines: list[CreditMemoLineBody] | None = None


class PayBody(Control):
    amount: Amount | None = None


class HistoryBody(Control):
    """``POST /_sim/customers/{number}/history``: posted documents that did not come through the
    product (phone, EDI), for paging tests."""

    orders: int = Field(0, ge=0, le=100_000)
    shipments: int = Field(0, ge=0, le=100_000)
    invoices: int = Field(0, ge=0, le=100_000)
    paidShare: float = Field(0.5, ge=0, le=1)


class FinancialsBody(Control):
    balance: Decimal5 | None = None
    overdueAmount: Decimal5 | None = None
    outstandingOrdersAmount: Decimal5 | None = None
    totalSalesExcludingTax: Decimal5 | None = None


class PriceQuery(Control):
    customerNumber: Annotated[str, Field(min_length=1, max_length=20)]
    itemNumber: Annotated[str, Field(min_length=1, max_length=20)]
    quantity: Annotated[Decimal, Field(gt=0), AfterValidator(_at_most_five_decimals)] = Decimal(1)
    currencyCode: Annotated[str, Field(max_length=10)] | None = None
    unitOfMeasureCode: Annotated[str, Field(max_length=10)] | None = None
    on_date: date | None = Field(default=None, alias="date")


ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_body(model: type[ModelT], payload: Any, entity_type: str = "") -> ModelT:
    """Validate ``payload``; a failure becomes a 400 in Business Central's words."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise BadRequest(_describe(exc, entity_type)) from exc


def _describe(exc: ValidationError, entity_type: str) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or "(body)"
    if first["type"] == "extra_forbidden":
        name = str(first["loc"][-1])
        owner = f"Microsoft.NAV.{entity_type}" if entity_type else "the request"
        return (
            f"The property '{name}' does not exist on type '{owner}'. Make sure to only use "
            "property names that are defined by the type."
        )
    if first["type"] == "model_type":
        return "The request body must be a JSON object."
    return f"Invalid value for '{location}': {first['msg']}."
