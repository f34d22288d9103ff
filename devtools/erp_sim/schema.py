"""Which entity sets exist, on which API, with which fields and which operations.

The field kinds drive ``$filter`` and ``$select`` validation, so a typo in a client's filter
gets Business Central's "Could not find a property" 400 instead of an empty result.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    STRING = "Edm.String"
    NUMBER = "Edm.Decimal"
    INT = "Edm.Int32"
    BOOL = "Edm.Boolean"
    DATETIME = "Edm.DateTimeOffset"
    DATE = "Edm.Date"
    GUID = "Edm.Guid"
    COMPLEX = "Collection"


class Api(Enum):
    STANDARD = "standard"
    CUSTOM = "custom"


@dataclass(frozen=True)
class EntitySetSpec:
    name: str
    entity_type: str
    api: Api
    fields: dict[str, Kind]
    indexed: tuple[str, ...] = ()
    methods: frozenset[str] = frozenset({"GET"})
    key: str = "id"
    lines: str | None = None  # the navigation set of document lines, if any

    def has(self, name: str) -> bool:
        return name in self.fields


S, N, I, B, DT, D, G, C = (  # noqa: E741 - one-letter aliases keep the tables readable
    Kind.STRING,
    Kind.NUMBER,
    Kind.INT,
    Kind.BOOL,
    Kind.DATETIME,
    Kind.DATE,
    Kind.GUID,
    Kind.COMPLEX,
)
_RW = frozenset({"GET", "POST", "PATCH", "DELETE"})

_SALES_LINE_FIELDS: dict[str, Kind] = {
    "id": G,
    "documentId": G,
    "sequence": I,
    "itemId": G,
    "lineType": S,
    "lineObjectNumber": S,
    "description": S,
    "unitOfMeasureCode": S,
    "quantity": N,
    "unitPrice": N,
    "discountAmount": N,
    "discountPercent": N,
    "amountExcludingTax": N,
    "totalTaxAmount": N,
    "amountIncludingTax": N,
    "netAmount": N,
    "itemVariantId": G,
    "locationId": G,
    "shipmentDate": D,
    # The APIV2 line pages have no lastModifiedDateTime (the header carries it).
}

_SALES_HEADER_FIELDS: dict[str, Kind] = {
    "id": G,
    "number": S,
    "externalDocumentNumber": S,
    "customerId": G,
    "customerNumber": S,
    "customerName": S,
    "currencyId": G,
    "currencyCode": S,
    "pricesIncludeTax": B,
    "paymentTermsId": G,
    "requestedDeliveryDate": D,
    "shipToName": S,
    "shipToContact": S,
    "shipToAddressLine1": S,
    "shipToAddressLine2": S,
    "shipToCity": S,
    "shipToCountry": S,
    "shipToState": S,
    "shipToPostCode": S,
    "email": S,
    "phoneNumber": S,
    "discountAmount": N,
    "totalAmountExcludingTax": N,
    "totalTaxAmount": N,
    "totalAmountIncludingTax": N,
    "status": S,
    "lastModifiedDateTime": DT,
}

SPECS: dict[str, EntitySetSpec] = {
    spec.name: spec
    for spec in (
        EntitySetSpec(
            "items",
            "item",
            Api.STANDARD,
            {
                "id": G,
                "number": S,
                "displayName": S,
                "displayName2": S,
                "type": S,
                "itemCategoryId": G,
                "itemCategoryCode": S,
                "blocked": B,
                "gtin": S,
                "inventory": N,
                "unitPrice": N,
                "priceIncludesTax": B,
                "unitCost": N,
                "taxGroupCode": S,
                "baseUnitOfMeasureId": G,
                "baseUnitOfMeasureCode": S,
                "lastModifiedDateTime": DT,
            },
            indexed=("number",),
            methods=_RW,
        ),
        EntitySetSpec(
            "customers",
            "customer",
            Api.STANDARD,
            {
                "id": G,
                "number": S,
                "displayName": S,
                "type": S,
                "addressLine1": S,
                "city": S,
                "country": S,
                "email": S,
                "phoneNumber": S,
                "currencyId": G,
                "currencyCode": S,
                "paymentTermsId": G,
                "blocked": S,
                "creditLimit": N,
                "balanceDue": N,
                "lastModifiedDateTime": DT,
            },
            indexed=("number",),
            methods=_RW,
        ),
        EntitySetSpec(
            "customerFinancialDetails",
            "customerFinancialDetail",
            Api.STANDARD,
            {
                "id": G,
                "number": S,
                "balance": N,
                "totalSalesExcludingTax": N,
                "overdueAmount": N,
                "lastModifiedDateTime": DT,
            },
            indexed=("number",),
        ),
        EntitySetSpec(
            "salesOrders",
            "salesOrder",
            Api.STANDARD,
            {**_SALES_HEADER_FIELDS, "orderDate": D, "postingDate": D, "fullyShipped": B},
            indexed=("number", "externalDocumentNumber", "customerNumber"),
            methods=_RW,
            lines="salesOrderLines",
        ),
        EntitySetSpec(
            "salesQuotes",
            "salesQuote",
            Api.STANDARD,
            {**_SALES_HEADER_FIELDS, "documentDate": D, "dueDate": D, "validUntilDate": D},
            indexed=("number", "externalDocumentNumber", "customerNumber"),
            methods=_RW,
            lines="salesQuoteLines",
        ),
        EntitySetSpec(
            "salesOrderLines",
            "salesOrderLine",
            Api.STANDARD,
            # APIV2 - Sales Order Lines: "Quantity Shipped" / "Quantity Invoiced".
            {**_SALES_LINE_FIELDS, "shippedQuantity": N, "invoicedQuantity": N},
        ),
        # Posted documents (read-only pages over Sales Shipment / Sales Invoice Header).
        EntitySetSpec(
            "salesShipments",
            "salesShipment",
            Api.STANDARD,
            {
                "id": G,
                "number": S,
                "externalDocumentNumber": S,
                "invoiceDate": D,
                "postingDate": D,
                "dueDate": D,
                "customerId": G,
                "customerNumber": S,
                "customerName": S,
                "shipToName": S,
                "shipToContact": S,
                "currencyCode": S,
                "orderNumber": S,
                "shipmentMethodCode": S,
                "lastModifiedDateTime": DT,
            },
            indexed=("number", "orderNumber", "customerNumber", "externalDocumentNumber"),
            lines="salesShipmentLines",
        ),
        EntitySetSpec(
            "salesShipmentLines",
            "salesShipmentLine",
            Api.STANDARD,
            {
                "id": G,
                "documentId": G,
                "documentNo": S,
                "sequence": I,
                "lineType": S,
                "lineObjectNumber": S,
                "description": S,
                "unitOfMeasureCode": S,
                "unitPrice": N,
                "quantity": N,
                "discountPercent": N,
                "shipmentDate": D,
                "locationCode": S,
            },
        ),
        EntitySetSpec(
            "salesInvoices",
            "salesInvoice",
            Api.STANDARD,
            {
                "id": G,
                "number": S,
                "externalDocumentNumber": S,
                "invoiceDate": D,
                "postingDate": D,
                "dueDate": D,
                "customerId": G,
                "customerNumber": S,
                "customerName": S,
                "currencyCode": S,
                "orderId": G,
                "orderNumber": S,
                "totalAmountExcludingTax": N,
                "totalTaxAmount": N,
                "totalAmountIncludingTax": N,
                "remainingAmount": N,
                "status": S,
                "lastModifiedDateTime": DT,
            },
            indexed=("number", "orderNumber", "customerNumber", "externalDocumentNumber"),
            lines="salesInvoiceLines",
        ),
        EntitySetSpec(
            "salesInvoiceLines",
            "salesInvoiceLine",
            Api.STANDARD,
            {
                "id": G,
                "documentId": G,
                "sequence": I,
                "lineType": S,
                "lineObjectNumber": S,
                "description": S,
                "unitOfMeasureCode": S,
                "unitPrice": N,
                "quantity": N,
                "discountPercent": N,
                "amountExcludingTax": N,
                "amountIncludingTax": N,
                "shipmentDate": D,
            },
        ),
        EntitySetSpec(
            # APIV2 - Sales Credit Memos (page 30038): invoiceNumber = "Applies-to Doc. No.".
            "salesCreditMemos",
            "salesCreditMemo",
            Api.STANDARD,
            {
                "id": G,
                "number": S,
                "externalDocumentNumber": S,
                "creditMemoDate": D,
                "postingDate": D,
                "dueDate": D,
                "customerId": G,
                "customerNumber": S,
                "customerName": S,
                "currencyCode": S,
                "invoiceId": G,
                "invoiceNumber": S,
                "totalAmountExcludingTax": N,
                "totalTaxAmount": N,
                "totalAmountIncludingTax": N,
                "status": S,
                "lastModifiedDateTime": DT,
            },
            indexed=("number", "invoiceNumber", "customerNumber", "externalDocumentNumber"),
            lines="salesCreditMemoLines",
        ),
        EntitySetSpec(
            "salesCreditMemoLines",
            "salesCreditMemoLine",
            Api.STANDARD,
            {
                "id": G,
                "documentId": G,
                "sequence": I,
                "lineType": S,
                "lineObjectNumber": S,
                "description": S,
                "unitOfMeasureCode": S,
                "unitPrice": N,
                "quantity": N,
                "discountPercent": N,
                "amountExcludingTax": N,
                "amountIncludingTax": N,
            },
        ),
        EntitySetSpec(
            # Custom page of this product's contract over the Sales Shipment Header: the
            # shipping agent and package tracking number the APIV2 salesShipments page lacks.
            "salesShipmentTracking",
            "salesShipmentTracking",
            Api.CUSTOM,
            {
                "id": G,
                "shipmentNumber": S,
                "orderNumber": S,
                "shippingAgentCode": S,
                "shippingAgentServiceCode": S,
                "packageTrackingNumber": S,
                "lastModifiedDateTime": DT,
            },
            indexed=("shipmentNumber", "orderNumber"),
        ),
        EntitySetSpec("salesQuoteLines", "salesQuoteLine", Api.STANDARD, _SALES_LINE_FIELDS),
        EntitySetSpec(
            "locations",
            "location",
            Api.STANDARD,
            {"id": G, "code": S, "displayName": S, "lastModifiedDateTime": DT},
            indexed=("code",),
        ),
        EntitySetSpec(
            # Custom page of this product's contract: Business Central's rounding precisions
            # per currency; the blank code is the local currency (General Ledger Setup).
            "currencyRoundings",
            "currencyRounding",
            Api.CUSTOM,
            {
                "id": G,
                "currencyCode": S,
                "amountRoundingPrecision": N,
                "unitAmountRoundingPrecision": N,
                "lastModifiedDateTime": DT,
            },
        ),
        EntitySetSpec(
            "currencyExchangeRates",
            "currencyExchangeRate",
            Api.STANDARD,
            {
                "id": G,
                "currencyCode": S,
                "startingDate": D,
                "exchangeRateAmount": N,
                "relationalCurrencyCode": S,
                "relationalExchangeRateAmount": N,
                "lastModifiedDateTime": DT,
            },
            indexed=("currencyCode",),
        ),
        EntitySetSpec(
            "itemCategories",
            "itemCategory",
            Api.STANDARD,
            {"id": G, "code": S, "displayName": S, "lastModifiedDateTime": DT},
            indexed=("code",),
        ),
        EntitySetSpec(
            "subscriptions",
            "subscription",
            Api.STANDARD,
            {
                "subscriptionId": S,
                "notificationUrl": S,
                "resource": S,
                "userId": G,
                "lastModifiedDateTime": DT,
                "clientState": S,
                "expirationDateTime": DT,
            },
            methods=_RW,
            key="subscriptionId",
        ),
        EntitySetSpec(
            "priceListLines",
            "priceListLine",
            Api.CUSTOM,
            {
                "id": G,
                "priceListCode": S,
                "sourceType": S,
                "sourceNo": S,
                "assetType": S,
                "assetNo": S,
                "variantCode": S,
                "unitOfMeasureCode": S,
                "minimumQuantity": N,
                "amountType": S,
                "unitPrice": N,
                "lineDiscountPercent": N,
                "allowLineDisc": B,
                "startingDate": D,
                "endingDate": D,
                "currencyCode": S,
                "lastModifiedDateTime": DT,
            },
            indexed=("assetNo",),
            methods=_RW,
        ),
        EntitySetSpec(
            "itemAvailabilityByLocation",
            "itemAvailabilityByLocation",
            Api.CUSTOM,
            {
                "id": G,
                "itemNumber": S,
                "locationCode": S,
                "inventory": N,
                "reservedQuantity": N,
                "reservedQtyOnSalesOrders": N,
                "qtyOnSalesOrders": N,
                "qtyOnPurchaseOrders": N,
                "lastModifiedDateTime": DT,
            },
            indexed=("itemNumber",),
            methods=_RW,
        ),
        EntitySetSpec(
            "customerPricingProfiles",
            "customerPricingProfile",
            Api.CUSTOM,
            {
                "id": G,
                "customerNumber": S,
                "customerPriceGroup": S,
                "customerDiscountGroup": S,
                "currencyCode": S,
                "allowLineDisc": B,
                "pricesIncludingVat": B,
                "activeCampaigns": S,
                "lastModifiedDateTime": DT,
            },
            indexed=("customerNumber",),
        ),
        EntitySetSpec(
            "customerCreditSummaries",
            "customerCreditSummary",
            Api.CUSTOM,
            {
                "id": G,
                "customerNumber": S,
                "creditLimit": N,
                "balance": N,
                "overdueAmount": N,
                "outstandingOrdersAmount": N,
                "blocked": S,
                "lastModifiedDateTime": DT,
            },
            indexed=("customerNumber",),
        ),
        EntitySetSpec(
            "itemContent",
            "itemContent",
            Api.CUSTOM,
            {
                "id": G,
                "itemNumber": S,
                "description": S,
                "marketingText": S,
                "attributes": C,
                "media": C,
                "lastModifiedDateTime": DT,
            },
            indexed=("itemNumber",),
        ),
        EntitySetSpec(
            "itemUnitsOfMeasure",
            "itemUnitOfMeasure",
            Api.CUSTOM,
            {
                "id": G,
                "itemNumber": S,
                "code": S,
                "qtyPerUnitOfMeasure": N,
                "lastModifiedDateTime": DT,
            },
            indexed=("itemNumber",),
        ),
    )
}

# Entity sets a client reaches directly under companies(...); lines only through a document.
NESTED_ONLY = frozenset(
    {
        "salesOrderLines",
        "salesQuoteLines",
        "salesShipmentLines",
        "salesInvoiceLines",
        "salesCreditMemoLines",
    }
)
# Posted documents whose lines come with $expand or through their navigation.
POSTED_DOCUMENTS = frozenset({"salesShipments", "salesInvoices", "salesCreditMemos"})

# Business Central only notifies on pages over a physical table with a single key
# (ODataKeyFields = SystemId). customerCreditSummaries is the contract's computed, optional
# page (a temporary table): refused like BC would.
SUBSCRIBABLE = frozenset(
    {
        "items",
        "customers",
        "customerFinancialDetails",
        "salesOrders",
        "salesQuotes",
        "locations",
        "itemCategories",
        "priceListLines",
        "itemAvailabilityByLocation",
        "customerPricingProfiles",
        "itemContent",
        "itemUnitsOfMeasure",
        "salesShipments",
        "salesInvoices",
        "salesCreditMemos",
        "salesShipmentTracking",
    }
)
