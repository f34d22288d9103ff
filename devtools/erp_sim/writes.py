"""Create, change and delete for the entity sets a real (custom) API page would let you write:
items, customers, price list lines and item availability by location.

Each write keeps the derived rows consistent the way Business Central's tables would: a new
customer gets a pricing profile, a credit summary and financial details; a stock change
updates the item's total inventory (a FlowField, so the item's ETag does not change).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from devtools.erp_sim.bodies import (
    AvailabilityCreate,
    AvailabilityPatch,
    CustomerCreate,
    CustomerPatch,
    FinancialsBody,
    ItemCreate,
    ItemPatch,
    PriceListLineCreate,
    PriceListLinePatch,
)
from devtools.erp_sim.dataset import Dataset
from devtools.erp_sim.errors import (
    BadRequest,
    BusinessRuleViolation,
    EntityChanged,
    PreconditionRequired,
    RecordExists,
    RecordNotFound,
)
from devtools.erp_sim.numbers import json_number, to_decimal
from devtools.erp_sim.reference import (
    BLANK_DATE,
    CURRENCIES,
    CURRENCY_IDS,
    LOCAL_CURRENCY,
    UNITS_OF_MEASURE,
)
from devtools.erp_sim.store import Row


def check_etag(row: Row, if_match: str | None) -> None:
    """Business Central's optimistic concurrency: If-Match is required; ``*`` skips the check."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "An If-Match header is required to change or delete an entity "
            "(send the entity's @odata.etag, or '*')."
        )
    offered = [value.strip() for value in if_match.split(",")]
    if "*" not in offered and row.get("@odata.etag") not in offered:
        raise EntityChanged()


def _jsonify(changes: dict[str, Any]) -> dict[str, Any]:
    return {
        key: json_number(value) if isinstance(value, Decimal) else value
        for key, value in changes.items()
    }


def _new_row(dataset: Dataset, fields: dict[str, Any]) -> Row:
    row: Row = {"@odata.etag": dataset.stamper.next_etag(), **fields}
    if "lastModifiedDateTime" in row:
        row["lastModifiedDateTime"] = dataset.stamper.now_text()
    return row


def _currency_code(code: str) -> str:
    """Validate a currency code; returns the standard API's form (blank becomes LCY)."""
    normalized = code.strip().upper() or LOCAL_CURRENCY
    if normalized not in CURRENCIES:
        raise RecordNotFound(
            f"The Currency does not exist. Identification fields and values: Code='{code}'"
        )
    return normalized


# ---- items --------------------------------------------------------------------------------


def create_item(dataset: Dataset, body: ItemCreate) -> Row:
    if dataset.item(body.number) is not None:
        raise RecordExists(
            "The record in table Item already exists. Identification fields and values: "
            f"No.='{body.number}'"
        )
    category_id = _category_id(dataset, body.itemCategoryCode)
    unit = body.baseUnitOfMeasureCode
    if unit not in UNITS_OF_MEASURE:
        raise RecordNotFound(
            f"The Unit of Measure does not exist. Identification fields and values: Code='{unit}'"
        )
    row = _new_row(
        dataset,
        {
            "id": str(uuid.uuid4()),
            "number": body.number,
            "displayName": body.displayName,
            "displayName2": body.displayName2,
            "type": body.type,
            "itemCategoryId": category_id,
            "itemCategoryCode": body.itemCategoryCode,
            "blocked": body.blocked,
            "gtin": body.gtin,
            "inventory": 0,
            "unitPrice": json_number(body.unitPrice),
            "priceIncludesTax": body.priceIncludesTax,
            "unitCost": json_number(body.unitCost),
            "taxGroupCode": body.taxGroupCode,
            "baseUnitOfMeasureId": UNITS_OF_MEASURE[unit],
            "baseUnitOfMeasureCode": unit,
            "lastModifiedDateTime": "",
        },
    )
    dataset["items"].insert(row)
    dataset.item_units[body.number] = {unit: Decimal(1)}
    dataset["itemUnitsOfMeasure"].insert(
        _new_row(
            dataset,
            {
                "id": str(uuid.uuid4()),
                "itemNumber": body.number,
                "code": unit,
                "qtyPerUnitOfMeasure": 1,
                "lastModifiedDateTime": "",
            },
        )
    )
    return row


def patch_item(dataset: Dataset, row: Row, body: ItemPatch) -> Row:
    changes = _jsonify(body.changes())
    if "number" in changes and changes.pop("number") != row["number"]:
        raise BadRequest("The simulator does not support renaming an item (number).")
    if "itemCategoryCode" in changes:
        changes["itemCategoryId"] = _category_id(dataset, changes["itemCategoryCode"])
    dataset["items"].update(row, changes)
    dataset.touch("items", row)
    return row


def delete_item(dataset: Dataset, row: Row) -> None:
    number = row["number"]
    for name in ("itemAvailabilityByLocation", "itemContent", "itemUnitsOfMeasure"):
        entity_set = dataset[name]
        for dependent in entity_set.find("itemNumber", number):
            entity_set.delete(dependent["id"])
    dataset.item_units.pop(number, None)
    dataset["items"].delete(row["id"])


def _category_id(dataset: Dataset, code: str) -> str:
    if not code:
        return "00000000-0000-0000-0000-000000000000"
    category = dataset["itemCategories"].find_one("code", code)
    if category is None:
        raise RecordNotFound(
            f"The Item Category does not exist. Identification fields and values: Code='{code}'"
        )
    return str(category["id"])


# ---- customers ----------------------------------------------------------------------------


def create_customer(dataset: Dataset, body: CustomerCreate) -> Row:
    if dataset.customer(body.number) is not None:
        raise RecordExists(
            "The record in table Customer already exists. Identification fields and values: "
            f"No.='{body.number}'"
        )
    currency = _currency_code(body.currencyCode)
    customer_id = str(uuid.uuid4())
    row = _new_row(
        dataset,
        {
            "id": customer_id,
            "number": body.number,
            "displayName": body.displayName,
            "type": body.type,
            "addressLine1": body.addressLine1,
            "city": body.city,
            "country": body.country,
            "email": body.email,
            "phoneNumber": body.phoneNumber,
            "currencyId": CURRENCY_IDS[currency],
            "currencyCode": currency,
            "paymentTermsId": str(body.paymentTermsId or "00000000-0000-0000-0000-000000000000"),
            "blocked": body.blocked,
            "creditLimit": json_number(body.creditLimit),
            "balanceDue": 0,
            "lastModifiedDateTime": "",
        },
    )
    dataset["customers"].insert(row)
    dataset["customerPricingProfiles"].insert(
        _new_row(
            dataset,
            {
                "id": customer_id,
                "customerNumber": body.number,
                "customerPriceGroup": "",
                "customerDiscountGroup": "",
                "currencyCode": "" if currency == LOCAL_CURRENCY else currency,
                "allowLineDisc": True,
                "pricesIncludingVat": False,
                "lastModifiedDateTime": "",
            },
        )
    )
    dataset["customerCreditSummaries"].insert(
        _new_row(
            dataset,
            {
                "id": customer_id,
                "customerNumber": body.number,
                "creditLimit": json_number(body.creditLimit),
                "balance": 0,
                "overdueAmount": 0,
                "outstandingOrdersAmount": 0,
                "blocked": body.blocked,
                "lastModifiedDateTime": "",
            },
        )
    )
    dataset["customerFinancialDetails"].insert(
        _new_row(
            dataset,
            {
                "id": customer_id,
                "number": body.number,
                "balance": 0,
                "totalSalesExcludingTax": 0,
                "overdueAmount": 0,
                "lastModifiedDateTime": "",
            },
        )
    )
    return row


def patch_customer(dataset: Dataset, row: Row, body: CustomerPatch) -> Row:
    changes = _jsonify(body.changes())
    if "number" in changes and changes.pop("number") != row["number"]:
        raise BadRequest("The simulator does not support renaming a customer (number).")
    if "paymentTermsId" in changes:
        changes["paymentTermsId"] = str(changes["paymentTermsId"])
    profile = dataset.pricing_profile(row["number"])
    summary = dataset.credit_summary(row["number"])
    if "currencyCode" in changes:
        currency = _currency_code(changes["currencyCode"])
        changes["currencyCode"] = currency
        changes["currencyId"] = CURRENCY_IDS[currency]
        if profile is not None:
            profile["currencyCode"] = "" if currency == LOCAL_CURRENCY else currency
            dataset.touch("customerPricingProfiles", profile)
    dataset["customers"].update(row, changes)
    dataset.touch("customers", row)
    summary_changes: dict[str, Any] = {
        key: changes[key] for key in ("creditLimit", "blocked") if key in changes
    }
    if summary is not None and summary_changes:
        summary.update(summary_changes)
        dataset.touch("customerCreditSummaries", summary)
    return row


def delete_customer(dataset: Dataset, row: Row) -> None:
    number = row["number"]
    if dataset["salesOrders"].find("customerNumber", number):
        raise BusinessRuleViolation(
            f"You cannot delete Customer {number} because there is at least one outstanding "
            "Sales Order for this customer."
        )
    for name in ("customerPricingProfiles", "customerCreditSummaries", "customerFinancialDetails"):
        dataset[name].delete(row["id"])
    dataset["customers"].delete(row["id"])


def set_financials(dataset: Dataset, customer: Row, body: FinancialsBody) -> dict[str, Any]:
    """Control route: move a customer's ledger figures (BC would post entries to do this)."""
    number = customer["number"]
    summary = dataset.credit_summary(number)
    financial = dataset.financial_detail(number)
    if body.balance is not None:
        # balanceDue is a FlowField: the customer's ETag and timestamp do not change.
        customer["balanceDue"] = json_number(body.balance)
    if summary is not None:
        for key, value in (
            ("balance", body.balance),
            ("overdueAmount", body.overdueAmount),
            ("outstandingOrdersAmount", body.outstandingOrdersAmount),
        ):
            if value is not None:
                summary[key] = json_number(value)
        dataset.touch("customerCreditSummaries", summary)
    if financial is not None:
        for key, value in (
            ("balance", body.balance),
            ("overdueAmount", body.overdueAmount),
            ("totalSalesExcludingTax", body.totalSalesExcludingTax),
        ):
            if value is not None:
                financial[key] = json_number(value)
        dataset.touch("customerFinancialDetails", financial)
    return {"customer": customer, "creditSummary": summary, "financialDetails": financial}


# ---- price list lines ---------------------------------------------------------------------


def create_price_line(dataset: Dataset, body: PriceListLineCreate) -> Row:
    merged = _jsonify(body.model_dump(exclude={"etag"}))
    _validate_price_line(dataset, merged)
    row = _new_row(
        dataset,
        {
            "id": str(uuid.uuid4()),
            "priceListCode": merged["priceListCode"],
            "sourceType": merged["sourceType"],
            "sourceNo": merged["sourceNo"],
            "assetType": merged["assetType"],
            "assetNo": merged["assetNo"],
            "variantCode": merged["variantCode"],
            "unitOfMeasureCode": merged["unitOfMeasureCode"],
            "minimumQuantity": merged["minimumQuantity"],
            "amountType": merged["amountType"],
            "unitPrice": merged["unitPrice"],
            "lineDiscountPercent": merged["lineDiscountPercent"],
            "allowLineDisc": merged["allowLineDisc"],
            "startingDate": merged["startingDate"],
            "endingDate": merged["endingDate"],
            "currencyCode": merged["currencyCode"],
            "lastModifiedDateTime": "",
        },
    )
    dataset["priceListLines"].insert(row)
    return row


def patch_price_line(dataset: Dataset, row: Row, body: PriceListLinePatch) -> Row:
    changes = _jsonify(body.changes())
    merged = {**row, **changes}
    _validate_price_line(dataset, merged)
    changes["currencyCode"] = merged["currencyCode"]
    dataset["priceListLines"].update(row, changes)
    dataset.touch("priceListLines", row)
    return row


def delete_price_line(dataset: Dataset, row: Row) -> None:
    dataset["priceListLines"].delete(row["id"])


def _validate_price_line(dataset: Dataset, line: dict[str, Any]) -> None:
    """Business Central's checks on a price list line; normalizes the currency in place."""
    source_type, source_no = line["sourceType"], line["sourceNo"]
    if source_type == "All Customers" and source_no:
        raise BusinessRuleViolation("Source No. must be blank for source type All Customers.")
    if source_type != "All Customers" and not source_no:
        raise BusinessRuleViolation(f"Source No. must have a value for source type {source_type}.")
    if source_type == "Customer" and dataset.customer(source_no) is None:
        raise RecordNotFound(
            f"The Customer does not exist. Identification fields and values: No.='{source_no}'"
        )
    if line["assetType"] == "Item":
        item = dataset.item(line["assetNo"])
        if item is None:
            raise RecordNotFound(
                "The Item does not exist. Identification fields and values: "
                f"No.='{line['assetNo']}'"
            )
        unit = line["unitOfMeasureCode"]
        if unit and unit not in dataset.item_units.get(item["number"], {}):
            raise RecordNotFound(
                "The Item Unit of Measure does not exist. Identification fields and values: "
                f"Item No.='{item['number']}',Code='{unit}'"
            )
    currency = _currency_code(line["currencyCode"])
    # Price list lines store the local currency as blank, as Business Central does.
    line["currencyCode"] = "" if currency == LOCAL_CURRENCY else currency
    start, end = line["startingDate"], line["endingDate"]
    if start != BLANK_DATE and end != BLANK_DATE and end < start:
        raise BusinessRuleViolation(f"Ending Date {end} must not be before Starting Date {start}.")


# ---- item availability by location --------------------------------------------------------


def create_availability(dataset: Dataset, body: AvailabilityCreate) -> Row:
    item = dataset.item(body.itemNumber)
    if item is None:
        raise RecordNotFound(
            f"The Item does not exist. Identification fields and values: No.='{body.itemNumber}'"
        )
    if dataset.location_by_code(body.locationCode) is None:
        raise RecordNotFound(
            "The Location does not exist. Identification fields and values: "
            f"Code='{body.locationCode}'"
        )
    if any(r["locationCode"] == body.locationCode for r in dataset.availability(body.itemNumber)):
        raise RecordExists(
            f"Availability for item {body.itemNumber} at location {body.locationCode} exists."
        )
    row = _new_row(
        dataset,
        {
            "id": str(uuid.uuid4()),
            "itemNumber": body.itemNumber,
            "locationCode": body.locationCode,
            "inventory": json_number(body.inventory),
            "reservedQuantity": json_number(body.reservedQuantity),
            "reservedQtyOnSalesOrders": json_number(body.reservedQtyOnSalesOrders),
            "qtyOnSalesOrders": json_number(body.qtyOnSalesOrders),
            "qtyOnPurchaseOrders": json_number(body.qtyOnPurchaseOrders),
            "lastModifiedDateTime": "",
        },
    )
    dataset["itemAvailabilityByLocation"].insert(row)
    refresh_item_inventory(dataset, body.itemNumber)
    return row


def patch_availability(dataset: Dataset, row: Row, body: AvailabilityPatch) -> Row:
    dataset["itemAvailabilityByLocation"].update(row, _jsonify(body.changes()))
    dataset.touch("itemAvailabilityByLocation", row)
    refresh_item_inventory(dataset, row["itemNumber"])
    return row


def delete_availability(dataset: Dataset, row: Row) -> None:
    dataset["itemAvailabilityByLocation"].delete(row["id"])
    refresh_item_inventory(dataset, row["itemNumber"])


def refresh_item_inventory(dataset: Dataset, item_number: str) -> None:
    """Items' ``inventory`` is the sum over locations (a FlowField: no new ETag)."""
    item = dataset.item(item_number)
    if item is None:
        return
    total = sum((to_decimal(r["inventory"]) for r in dataset.availability(item_number)), Decimal(0))
    item["inventory"] = json_number(total)
