"""Business Central payloads in the shapes Microsoft's API v2.0 reference documents.

Written for these tests (not copied): each reproduces the field names, value forms (GUIDs,
dates, UTC timestamps, numbers, escaped enum members) and nesting of the response example
on the page named above it, under learn.microsoft.com/dynamics365/business-central/dev-itpro/
api-reference/v2.0/ (source: github.com/MicrosoftDocs/dynamics365smb-devitpro).
"""

from __future__ import annotations

from typing import Any

COMPANY = "7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20"

# api/dynamics_item_get.md (resources/dynamics_item.md)
ITEM: dict[str, Any] = {
    "@odata.etag": 'W/"JzQ0O0VnQUFBQUo3QlRFQU1RQXlBREFBQUFBQTE7MzQ3MTcxMDsn"',
    "id": "0a8a3c7f-1d2b-4c3e-8f9a-b1c2d3e4f501",
    "number": "1896-S",
    "displayName": "ATHENS Desk",
    "displayName2": "",
    "type": "Inventory",
    "itemCategoryId": "00000000-0000-0000-0000-000000000000",
    "itemCategoryCode": "",
    "blocked": False,
    "gtin": "",
    "inventory": 4,
    "unitPrice": 1000.8,
    "priceIncludesTax": False,
    "unitCost": 780.7,
    "taxGroupId": "00000000-0000-0000-0000-000000000000",
    "taxGroupCode": "FURNITURE",
    "baseUnitOfMeasureId": "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
    "baseUnitOfMeasureCode": "PCS",
    "generalProductPostingGroupId": "2c3d4e5f-6071-4829-93a4-b5c6d7e8f901",
    "generalProductPostingGroupCode": "RETAIL",
    "inventoryPostingGroupId": "3d4e5f60-7182-493a-a4b5-c6d7e8f90112",
    "inventoryPostingGroupCode": "RESALE",
    "lastModifiedDateTime": "2019-03-06T05:40:37.683Z",
}
NON_INVENTORY_ITEM = {**ITEM, "number": "SVC-1", "type": "Non_x002D_Inventory"}

# api/dynamics_customer_get.md
CUSTOMER: dict[str, Any] = {
    "@odata.etag": 'W/"JzQ0O0VnQUFBQUo3QlRFQU1RQXlBREFBQUFBQTE7MzQ3MTcxMTsn"',
    "id": "4e5f6071-8293-4a4b-b5c6-d7e8f9011223",
    "number": "10000",
    "displayName": "Adatum Corporation",
    "type": "Company",
    "addressLine1": "192 Market Square",
    "addressLine2": "",
    "city": "Atlanta",
    "state": "GA",
    "country": "US",
    "postalCode": "31772",
    "phoneNumber": "",
    "email": "robert.townes@contoso.com",
    "website": "",
    "salespersonCode": "PS",
    "balanceDue": 0,
    "creditLimit": 0,
    "taxLiable": True,
    "taxAreaId": "5f607182-93a4-4b5c-86d7-e8f901122334",
    "taxAreaDisplayName": "ATLANTA, GA",
    "taxRegistrationNumber": "",
    "currencyId": "00000000-0000-0000-0000-000000000000",
    "currencyCode": "USD",
    "paymentTermsId": "60718293-a4b5-4c6d-97e8-f90112233445",
    "shipmentMethodId": "00000000-0000-0000-0000-000000000000",
    "paymentMethodId": "718293a4-b5c6-4d7e-88f9-011223344556",
    "blocked": "_x0020_",
    "lastModifiedDateTime": "2019-03-06T05:40:43.19Z",
}

# api/dynamics_customerfinancialdetail_get.md; the APIV2 page (over the Customer table, keyed
# by SystemId) also carries lastModifiedDateTime
CUSTOMER_FINANCIAL_DETAIL: dict[str, Any] = {
    "@odata.etag": 'W/"JzQ0O0VnQUFBQUo3QlRFQU1RQXlBREFBQUFBQTE7MzQ3MTcxMjsn"',
    "id": "4e5f6071-8293-4a4b-b5c6-d7e8f9011223",
    "number": "10000",
    "balance": 0,
    "totalSalesExcludingTax": 173172.4,
    "overdueAmount": 0,
    "lastModifiedDateTime": "2019-03-06T05:40:43.19Z",
}

# api/dynamics_salesorderline_get.md (no lastModifiedDateTime on lines)
SALES_ORDER_LINE: dict[str, Any] = {
    "@odata.etag": 'W/"JzQ0O0VnQUFBQUo3QlRFQU1RQXlBREFBQUFBQTE7MzQ3MTcxMzsn"',
    "id": "8293a4b5-c6d7-4e8f-9901-122334455667",
    "documentId": "93a4b5c6-d7e8-4f90-a112-233445566778",
    "sequence": 10000,
    "itemId": "0a8a3c7f-1d2b-4c3e-8f9a-b1c2d3e4f501",
    "accountId": "00000000-0000-0000-0000-000000000000",
    "lineType": "Item",
    "lineObjectNumber": "1896-S",
    "description": "ATHENS Desk",
    "description2": "",
    "unitOfMeasureId": "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
    "unitOfMeasureCode": "PCS",
    "quantity": 5,
    "unitPrice": 1000.8,
    "discountAmount": 0,
    "discountPercent": 0,
    "discountAppliedBeforeTax": False,
    "amountExcludingTax": 5004,
    "taxCode": "FURNITURE",
    "taxPercent": 6,
    "totalTaxAmount": 300.24,
    "amountIncludingTax": 5304.24,
    "invoiceDiscountAllocation": 0,
    "netAmount": 5004,
    "netTaxAmount": 300.24,
    "netAmountIncludingTax": 5304.24,
    "shipmentDate": "2019-01-25",
    "shippedQuantity": 0,
    "invoicedQuantity": 0,
    "invoiceQuantity": 5,
    "shipQuantity": 5,
    "itemVariantId": "00000000-0000-0000-0000-000000000000",
    "locationId": "00000000-0000-0000-0000-000000000000",
}

# api/dynamics_salesorder_get.md (lines only with $expand=salesOrderLines)
SALES_ORDER: dict[str, Any] = {
    "@odata.etag": 'W/"JzQ0O0VnQUFBQUo3QlRFQU1RQXlBREFBQUFBQTE7MzQ3MTcxNDsn"',
    "id": "93a4b5c6-d7e8-4f90-a112-233445566778",
    "number": "S-ORD101001",
    "externalDocumentNumber": "",
    "orderDate": "2019-01-25",
    "postingDate": "2019-01-25",
    "customerId": "4e5f6071-8293-4a4b-b5c6-d7e8f9011223",
    "customerNumber": "10000",
    "customerName": "Adatum Corporation",
    "billToName": "Adatum Corporation",
    "billToCustomerId": "4e5f6071-8293-4a4b-b5c6-d7e8f9011223",
    "billToCustomerNumber": "10000",
    "shipToName": "Adatum Corporation",
    "shipToContact": "Robert Townes",
    "sellToAddressLine1": "192 Market Square",
    "sellToAddressLine2": "",
    "sellToCity": "Atlanta",
    "sellToCountry": "US",
    "sellToState": "GA",
    "sellToPostCode": "31772",
    "shipToAddressLine1": "192 Market Square",
    "shipToAddressLine2": "",
    "shipToCity": "Atlanta",
    "shipToCountry": "US",
    "shipToState": "GA",
    "shipToPostCode": "31772",
    "currencyId": "00000000-0000-0000-0000-000000000000",
    "currencyCode": "USD",
    "pricesIncludeTax": False,
    "paymentTermsId": "60718293-a4b5-4c6d-97e8-f90112233445",
    "shipmentMethodId": "00000000-0000-0000-0000-000000000000",
    "salesperson": "PS",
    "partialShipping": True,
    "requestedDeliveryDate": "0001-01-01",
    "discountAmount": 0,
    "discountAppliedBeforeTax": True,
    "totalAmountExcludingTax": 5004,
    "totalTaxAmount": 300.24,
    "totalAmountIncludingTax": 5304.24,
    "fullyShipped": False,
    "status": "Draft",
    "lastModifiedDateTime": "2019-01-25T16:31:24.86Z",
    "phoneNumber": "",
    "email": "robert.townes@contoso.com",
}
SALES_ORDER_IN_REVIEW = {**SALES_ORDER, "status": "In_x0020_Review"}
SALES_ORDER_EXPANDED = {**SALES_ORDER, "salesOrderLines": [SALES_ORDER_LINE]}

# resources/dynamics_subscriptions.md, api/dynamics_subscriptions_get.md
SUBSCRIPTION: dict[str, Any] = {
    "@odata.etag": 'W/"JzE5OzgyNjQ5NjIwNzQ1OTE3MTU4MDgxOzAwOyc="',
    "subscriptionId": "c670ea73cacb459bb51dc1740da2f1db",
    "notificationUrl": "https://contoso.example/myCallbacks",
    "resource": f"/api/v2.0/companies({COMPANY})/customers",
    "timestamp": 637424543245476588,
    "userId": "00000000-0000-0000-0000-000000000001",
    "lastModifiedDateTime": "2021-01-16T09:06:00Z",
    "clientState": "optionalValueOf2048",
    "expirationDateTime": "2021-01-19T09:06:00Z",
}

# dynamics-subscriptions.md (webhooks): one notification, and the "collection" form
NOTIFICATION: dict[str, Any] = {
    "value": [
        {
            "subscriptionId": "c670ea73cacb459bb51dc1740da2f1db",
            "clientState": "optionalValueOf2048",
            "expirationDateTime": "2021-01-19T09:06:00Z",
            "resource": (
                f"api/v2.0/companies({COMPANY})/customers(4e5f6071-8293-4a4b-b5c6-d7e8f9011223)"
            ),
            "changeType": "updated",
            "lastModifiedDateTime": "2021-01-16T09:06:00.237Z",
        }
    ]
}
COLLECTION_NOTIFICATION: dict[str, Any] = {
    "value": [
        {
            "subscriptionId": "c670ea73cacb459bb51dc1740da2f1db",
            "clientState": "optionalValueOf2048",
            "expirationDateTime": "2021-01-19T09:06:00Z",
            "resource": (
                f"api/v2.0/companies({COMPANY})/customers"
                "?$filter=lastModifiedDateTime%20gt%202021-01-16T09:05:29.95Z"
            ),
            "changeType": "collection",
            "lastModifiedDateTime": "2021-01-16T09:06:01.11Z",
        }
    ]
}
