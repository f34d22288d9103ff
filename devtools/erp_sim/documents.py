"""Sales orders and sales quotes: validation like Business Central, pricing, side effects.

Creating an order checks the customer (exists, not blocked for shipping), every item
(exists, not blocked, sold in the unit of measure), optionally the credit limit, prices lines
that come without a unit price, and then commits: stock on sales orders goes up at the
line's location and the customer's outstanding orders amount grows. Deleting the order
gives both back. Posting it (the bound action ``Microsoft.NAV.shipAndInvoice``) ships and
invoices it whole, in one transaction as Business Central posts: inventory and the outstanding
sales-order quantity go down together, the outstanding orders amount moves into the balance,
and the fully posted order is deleted. Quotes are validated and priced the same way but
commit nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from devtools.erp_sim.bodies import (
    SalesLineCreate,
    SalesOrderCreate,
    SalesQuoteCreate,
)
from devtools.erp_sim.dataset import Dataset
from devtools.erp_sim.errors import BadRequest, BusinessRuleViolation, RecordNotFound
from devtools.erp_sim.numbers import json_number, to_decimal
from devtools.erp_sim.pricing import (
    PriceRequest,
    UnknownCurrency,
    calculate,
    currency_of,
    line_amount,
    round_to,
)
from devtools.erp_sim.reference import BLANK_DATE, CURRENCY_IDS, LOCATIONS, Currency
from devtools.erp_sim.store import Row

_EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class DocumentKind:
    set_name: str
    lines_name: str
    date_field: str
    number_prefix: str
    number_start: int
    refused_when_blocked: frozenset[str]
    commits: bool  # reserves stock and counts towards the customer's outstanding orders


ORDER = DocumentKind(
    "salesOrders", "salesOrderLines", "orderDate", "S-ORD", 101001, frozenset({"All", "Ship"}), True
)
QUOTE = DocumentKind(
    "salesQuotes", "salesQuoteLines", "documentDate", "S-QUO", 1001, frozenset({"All"}), False
)
KINDS = {ORDER.set_name: ORDER, QUOTE.set_name: QUOTE}


@dataclass
class StockEffect:
    item_number: str
    location_code: str
    base_quantity: Decimal
    reserved: bool
    line_id: str = ""  # the order line that committed it (partial shipments, line changes)


@dataclass
class Commitment:
    """What an order took, so deleting it can give exactly that back."""

    outstanding_lcy: Decimal = Decimal(0)
    stock: list[StockEffect] = field(default_factory=list)


@dataclass(frozen=True)
class Rules:
    credit_check: bool
    reserve_on_order: bool


@dataclass
class _PricedLine:
    row: Row
    effect: StockEffect | None


def create_document(
    dataset: Dataset,
    kind: DocumentKind,
    body: SalesOrderCreate | SalesQuoteCreate,
    rules: Rules,
    today: date,
) -> tuple[Row, list[Row]]:
    """Validate, price and store a document with its lines (a deep insert)."""
    customer = _resolve_customer(dataset, body.customerId, body.customerNumber)
    _check_customer_blocked(customer, kind)
    currency_code = body.currencyCode
    if currency_code is None:
        currency_code = customer["currencyCode"]
    try:
        currency = currency_of(currency_code)
    except UnknownCurrency as exc:
        raise RecordNotFound(
            f"The Currency does not exist. Identification fields and values: Code='{currency_code}'"
        ) from exc
    document_date = (
        body.orderDate if isinstance(body, SalesOrderCreate) else body.documentDate
    ) or today
    document_id = str(uuid.uuid4())
    requested = body.requestedDeliveryDate or BLANK_DATE
    body_lines = (
        body.salesOrderLines if isinstance(body, SalesOrderCreate) else body.salesQuoteLines
    )
    priced = [
        _price_line(
            dataset,
            kind,
            rules,
            line,
            customer=customer,
            currency=currency,
            document_id=document_id,
            document_date=document_date,
            default_shipment=requested if requested != BLANK_DATE else document_date.isoformat(),
            sequence=(index + 1) * 10000,
        )
        for index, line in enumerate(body_lines)
    ]
    total = sum((to_decimal(p.row["amountExcludingTax"]) for p in priced), Decimal(0))
    if kind.commits and rules.credit_check:
        _check_credit(dataset, customer, total, currency)

    dataset.document_counters[kind.set_name] += 1
    number = (
        f"{kind.number_prefix}{kind.number_start + dataset.document_counters[kind.set_name] - 1}"
    )
    stamper = dataset.stamper
    header: Row = {
        "@odata.etag": stamper.next_etag(),
        "id": document_id,
        "number": number,
        "externalDocumentNumber": body.externalDocumentNumber,
        kind.date_field: document_date.isoformat(),
        **_date_fields(kind, document_date),
        "customerId": customer["id"],
        "customerNumber": customer["number"],
        "customerName": customer["displayName"],
        "currencyId": CURRENCY_IDS.get(currency.code, _EMPTY_GUID),
        "currencyCode": currency.code,
        "pricesIncludeTax": False,
        "paymentTermsId": customer.get("paymentTermsId", _EMPTY_GUID),
        "requestedDeliveryDate": requested,
        "shipToName": body.shipToName if body.shipToName is not None else customer["displayName"],
        "shipToContact": body.shipToContact or "",
        "shipToAddressLine1": body.shipToAddressLine1 or customer.get("addressLine1", ""),
        "shipToAddressLine2": body.shipToAddressLine2 or "",
        "shipToCity": body.shipToCity or customer.get("city", ""),
        "shipToCountry": body.shipToCountry or customer.get("country", ""),
        "shipToState": body.shipToState or "",
        "shipToPostCode": body.shipToPostCode or "",
        "email": body.email if body.email is not None else customer.get("email", ""),
        "phoneNumber": body.phoneNumber if body.phoneNumber is not None else "",
        "discountAmount": 0,
        "totalAmountExcludingTax": json_number(total),
        "totalTaxAmount": 0,
        "totalAmountIncludingTax": json_number(total),
        "status": "Draft",
        "lastModifiedDateTime": stamper.now_text(),
    }
    if kind.commits:
        header["fullyShipped"] = False
    lines = [p.row for p in priced]
    dataset[kind.set_name].insert(header)
    dataset.lines[document_id] = lines
    if kind.commits:
        commitment = Commitment()
        dataset.commitments[document_id] = commitment
        _commit(dataset, customer, commitment, [p.effect for p in priced], total, currency)
    return header, lines


def add_line(
    dataset: Dataset,
    kind: DocumentKind,
    header: Row,
    body: SalesLineCreate,
    rules: Rules,
) -> Row:
    """POST to ``salesOrders(id)/salesOrderLines``: one more line, validated and committed."""
    customer = dataset.customer(header["customerNumber"])
    if customer is None:
        raise RecordNotFound("The Customer of this document no longer exists.")
    _check_customer_blocked(customer, kind)
    currency = currency_of(header["currencyCode"])
    lines = dataset.lines.setdefault(header["id"], [])
    sequence = body.sequence or (max((line["sequence"] for line in lines), default=0) + 10000)
    document_date = date.fromisoformat(header[kind.date_field])
    requested = header.get("requestedDeliveryDate", BLANK_DATE)
    priced = _price_line(
        dataset,
        kind,
        rules,
        body,
        customer=customer,
        currency=currency,
        document_id=header["id"],
        document_date=document_date,
        default_shipment=requested if requested != BLANK_DATE else document_date.isoformat(),
        sequence=sequence,
    )
    amount = to_decimal(priced.row["amountExcludingTax"])
    if kind.commits and rules.credit_check:
        _check_credit(dataset, customer, amount, currency)
    lines.append(priced.row)
    if kind.commits:
        commitment = dataset.commitments.setdefault(header["id"], Commitment())
        _commit(dataset, customer, commitment, [priced.effect], amount, currency)
    refresh_totals(dataset, kind, header)
    return priced.row


def delete_document(dataset: Dataset, kind: DocumentKind, header: Row) -> None:
    """Remove the document and give back what it committed."""
    document_id = header["id"]
    commitment = dataset.commitments.pop(document_id, None)
    if commitment is not None:
        _release(dataset, header["customerNumber"], commitment)
    dataset.lines.pop(document_id, None)
    dataset[kind.set_name].delete(document_id)


def post_to_balance(dataset: Dataset, customer_number: str, amount_lcy: Decimal) -> None:
    """An invoice raises the customer's balance (ledger figures and the FlowField alike)."""
    if not amount_lcy:
        return
    customer = dataset.customer(customer_number)
    if customer is not None:
        customer["balanceDue"] = json_number(to_decimal(customer["balanceDue"]) + amount_lcy)
    for set_name, row in (
        ("customerCreditSummaries", dataset.credit_summary(customer_number)),
        ("customerFinancialDetails", dataset.financial_detail(customer_number)),
    ):
        if row is not None:
            row["balance"] = json_number(to_decimal(row["balance"]) + amount_lcy)
            dataset.touch(set_name, row)


def refresh_item_inventory(dataset: Dataset, item_number: str) -> None:
    """The item card's ``inventory`` is the sum over locations (a FlowField: no new ETag)."""
    item = dataset.item(item_number)
    if item is not None:
        rows = dataset.availability(item_number)
        item["inventory"] = json_number(sum((to_decimal(r["inventory"]) for r in rows), Decimal(0)))


def with_lines(dataset: Dataset, kind: DocumentKind, header: Row) -> Row:
    """A copy of the header with its lines expanded, as ``$expand`` and deep inserts return."""
    return {**header, kind.lines_name: list(dataset.lines.get(header["id"], ()))}


# ---- helpers ------------------------------------------------------------------------------


def _date_fields(kind: DocumentKind, document_date: date) -> dict[str, str]:
    if kind.commits:
        return {"postingDate": document_date.isoformat()}
    valid_until = (document_date + timedelta(days=30)).isoformat()
    return {"dueDate": valid_until, "validUntilDate": valid_until}


def _resolve_customer(dataset: Dataset, customer_id: uuid.UUID | None, number: str | None) -> Row:
    by_id = dataset["customers"].get(str(customer_id)) if customer_id else None
    if customer_id and by_id is None:
        raise RecordNotFound(
            f"The Customer does not exist. Identification fields and values: Id='{customer_id}'"
        )
    if number is not None and number.strip():
        by_number = dataset.customer(number.strip().upper())
        if by_number is None:
            raise RecordNotFound(
                "The Customer does not exist. Identification fields and values: "
                f"No.='{number.strip().upper()}'"
            )
        if by_id is not None and by_id is not by_number:
            raise BadRequest("customerId and customerNumber name different customers.")
        return by_number
    if by_id is None:
        raise BadRequest("Specify customerNumber or customerId.")
    return by_id


def _check_customer_blocked(customer: Row, kind: DocumentKind) -> None:
    blocked = customer["blocked"]
    if blocked in kind.refused_when_blocked:
        raise BusinessRuleViolation(
            f"You cannot create this type of document when Customer {customer['number']} is "
            f"blocked with type {blocked}"
        )


def _resolve_item(dataset: Dataset, line: SalesLineCreate) -> Row:
    by_id = dataset["items"].get(str(line.itemId)) if line.itemId else None
    if line.itemId and by_id is None:
        raise RecordNotFound(
            f"The Item does not exist. Identification fields and values: Id='{line.itemId}'"
        )
    if line.lineObjectNumber is not None and line.lineObjectNumber.strip():
        wanted = line.lineObjectNumber.strip()
        by_number = dataset.item(wanted) or dataset.item(wanted.upper())
        if by_number is None:
            raise RecordNotFound(
                f"The Item does not exist. Identification fields and values: No.='{wanted}'"
            )
        if by_id is not None and by_id is not by_number:
            raise BadRequest("itemId and lineObjectNumber name different items.")
        return by_number
    if by_id is None:
        raise BadRequest("Specify lineObjectNumber or itemId for a line of type Item.")
    return by_id


def _price_line(
    dataset: Dataset,
    kind: DocumentKind,
    rules: Rules,
    line: SalesLineCreate,
    *,
    customer: Row,
    currency: Currency,
    document_id: str,
    document_date: date,
    default_shipment: str,
    sequence: int,
) -> _PricedLine:
    item = _resolve_item(dataset, line)
    number = item["number"]
    if item["blocked"]:
        raise BusinessRuleViolation(
            f"Blocked must be equal to 'No' in Item: No.={number}. Current value is 'Yes'."
        )
    if line.itemVariantId is not None:
        raise RecordNotFound(
            "The Item Variant does not exist. Identification fields and values: "
            f"Id='{line.itemVariantId}'"
        )
    unit = line.unitOfMeasureCode or item["baseUnitOfMeasureCode"]
    units = dataset.item_units.get(number, {})
    if unit not in units:
        raise RecordNotFound(
            "The Item Unit of Measure does not exist. Identification fields and values: "
            f"Item No.='{number}',Code='{unit}'"
        )
    location = None
    if line.locationId is not None:
        location = dataset.location_by_id(str(line.locationId))
        if location is None:
            raise RecordNotFound(
                "The Location does not exist. Identification fields and values: "
                f"Id='{line.locationId}'"
            )
    quantity = line.quantity
    unit_price = line.unitPrice
    discount = line.discountPercent
    if unit_price is None or discount is None:
        result = calculate(
            dataset,
            PriceRequest(customer["number"], number, quantity, currency.code, unit, document_date),
        )
        if unit_price is None:
            unit_price = result.unit_price
        if discount is None:
            discount = result.line_discount_percent
    amount = line_amount(quantity, unit_price, discount, currency)
    gross = round_to(quantity * unit_price, currency.amount_precision)
    effect = None
    line_id = str(uuid.uuid4())
    if kind.commits:
        location = location or _first_location_with_stock(dataset, number)
        effect = StockEffect(
            number, location["code"], quantity * units[unit], rules.reserve_on_order, line_id
        )
    row: Row = {
        "@odata.etag": dataset.stamper.next_etag(),
        "id": line_id,
        "documentId": document_id,
        "sequence": sequence,
        "itemId": item["id"],
        "lineType": "Item",
        "lineObjectNumber": number,
        "description": line.description if line.description is not None else item["displayName"],
        "unitOfMeasureCode": unit,
        "quantity": json_number(quantity),
        "unitPrice": json_number(unit_price),
        "discountAmount": json_number(max(gross - amount, Decimal(0))),
        "discountPercent": json_number(discount),
        "amountExcludingTax": json_number(amount),
        "totalTaxAmount": 0,
        "amountIncludingTax": json_number(amount),
        "netAmount": json_number(amount),
        "itemVariantId": _EMPTY_GUID,
        "locationId": location["id"] if location else _EMPTY_GUID,
        "shipmentDate": line.shipmentDate or default_shipment,
    }
    if kind.commits:
        # APIV2 - Sales Order Lines: shippedQuantity ("Quantity Shipped") and invoicedQuantity
        # ("Quantity Invoiced"), read-only progress of the line.
        row["shippedQuantity"] = 0
        row["invoicedQuantity"] = 0
    return _PricedLine(row, effect)


def _first_location_with_stock(dataset: Dataset, item_number: str) -> Row:
    rows = {row["locationCode"]: row for row in dataset.availability(item_number)}
    for location in LOCATIONS:
        row = rows.get(location.code)
        if row is not None and row["inventory"] > 0:
            found = dataset.location_by_code(location.code)
            if found is not None:
                return found
    fallback = dataset.location_by_code(LOCATIONS[0].code)
    if fallback is None:
        raise BadRequest("No location is set up.")
    return fallback


def _check_credit(dataset: Dataset, customer: Row, amount: Decimal, currency: Currency) -> None:
    summary = dataset.credit_summary(customer["number"])
    if summary is None:
        return
    limit = to_decimal(summary["creditLimit"])
    if limit <= 0:
        return
    amount_lcy = round_to(amount * currency.lcy_per_unit, Decimal("0.01"))
    balance = to_decimal(summary["balance"])
    outstanding = to_decimal(summary["outstandingOrdersAmount"])
    if balance + outstanding + amount_lcy > limit:
        raise BusinessRuleViolation(
            f"The credit limit of customer {customer['number']} would be exceeded: balance "
            f"{balance} + outstanding orders {outstanding} + this order {amount_lcy} is more "
            f"than the credit limit {limit}."
        )


def _commit(
    dataset: Dataset,
    customer: Row,
    commitment: Commitment,
    effects: list[StockEffect | None],
    amount: Decimal,
    currency: Currency,
) -> None:
    for effect in effects:
        if effect is None:
            continue
        apply_stock(dataset, effect, sign=1)
        commitment.stock.append(effect)
    amount_lcy = round_to(amount * currency.lcy_per_unit, Decimal("0.01"))
    commitment.outstanding_lcy += amount_lcy
    adjust_outstanding(dataset, customer["number"], amount_lcy)


def _release(dataset: Dataset, customer_number: str, commitment: Commitment) -> None:
    for effect in commitment.stock:
        apply_stock(dataset, effect, sign=-1)
    adjust_outstanding(dataset, customer_number, -commitment.outstanding_lcy)


def apply_stock(dataset: Dataset, effect: StockEffect, *, sign: int, shipped: bool = False) -> None:
    availability = dataset["itemAvailabilityByLocation"]
    row = next(
        (
            r
            for r in dataset.availability(effect.item_number)
            if r["locationCode"] == effect.location_code
        ),
        None,
    )
    if row is None:
        row = {
            "@odata.etag": "",
            "id": str(uuid.uuid4()),
            "itemNumber": effect.item_number,
            "locationCode": effect.location_code,
            "inventory": 0,
            "reservedQuantity": 0,
            "reservedQtyOnSalesOrders": 0,
            "qtyOnSalesOrders": 0,
            "qtyOnPurchaseOrders": 0,
            "lastModifiedDateTime": "",
        }
        dataset.stamper.touch(row)
        availability.insert(row)
    changes: dict[str, Any] = {
        "qtyOnSalesOrders": _nonnegative(row["qtyOnSalesOrders"], sign * effect.base_quantity)
    }
    if effect.reserved:
        for name in ("reservedQuantity", "reservedQtyOnSalesOrders"):
            changes[name] = _nonnegative(row.get(name, 0), sign * effect.base_quantity)
    if shipped:
        # Business Central may allow negative inventory; the simulator does too.
        changes["inventory"] = json_number(to_decimal(row["inventory"]) - effect.base_quantity)
    availability.update(row, changes)
    dataset.touch("itemAvailabilityByLocation", row)


def _nonnegative(current: object, delta: Decimal) -> int | float:
    return json_number(max(to_decimal(current) + delta, Decimal(0)))


def adjust_outstanding(dataset: Dataset, customer_number: str, delta_lcy: Decimal) -> None:
    summary = dataset.credit_summary(customer_number)
    if summary is None or not delta_lcy:
        return
    outstanding = max(to_decimal(summary["outstandingOrdersAmount"]) + delta_lcy, Decimal(0))
    summary["outstandingOrdersAmount"] = json_number(outstanding)
    dataset.touch("customerCreditSummaries", summary)


def refresh_totals(dataset: Dataset, kind: DocumentKind, header: Row) -> None:
    total = sum(
        (to_decimal(line["amountExcludingTax"]) for line in dataset.lines.get(header["id"], ())),
        Decimal(0),
    )
    header["totalAmountExcludingTax"] = json_number(total)
    header["totalAmountIncludingTax"] = json_number(total)
    dataset.touch(kind.set_name, header)
