"""What happens to a sales order after it is created: release, shipments, invoices, changes.

Business Central's API has one bound action for this (``Microsoft.NAV.shipAndInvoice``, which
posts the whole order); releasing an order or posting a partial shipment has no API action,
so the simulator offers those as control routes (``/_sim/salesOrders/{id}/...``). What they
leave behind is what Business Central leaves behind, and what a client reads through the API:

- the order's ``status``: the APIV2 page shows BC's "Open" as ``Draft``, "Pending Approval" as
  ``In Review`` and "Released" as ``Open`` (the Sales Order Entity Buffer status);
- posted shipments (``salesShipments`` + ``salesShipmentLines``, read-only, ``orderNumber`` =
  the order) and posted invoices (``salesInvoices`` + ``salesInvoiceLines``, ``orderNumber``,
  ``status`` Open/Paid, ``remainingAmount``, ``dueDate``); the order lines' ``shippedQuantity``
  and ``invoicedQuantity`` grow;
- the shipping agent and package tracking number of a shipment: the Sales Shipment Header has
  them, the APIV2 ``salesShipments`` page does not, so they come from this product's custom page
  ``salesShipmentTracking`` (see docs/erp-conformance.md);
- stock: a shipment lowers inventory and the outstanding sales-order quantity together; a line
  reduced or deleted gives its outstanding quantity back;
- a fully shipped and invoiced order is deleted, as Business Central deletes it after posting.

Lines can only be changed or deleted while the order is not released (BC: "Status must be equal
to 'Open'"), and never below what was shipped.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

from devtools.erp_sim.dataset import Dataset
from devtools.erp_sim.documents import (
    ORDER,
    Commitment,
    StockEffect,
    adjust_outstanding,
    apply_stock,
    post_to_balance,
    refresh_item_inventory,
    refresh_totals,
)
from devtools.erp_sim.errors import BadRequest, BusinessRuleViolation, RecordNotFound
from devtools.erp_sim.numbers import json_number, to_decimal
from devtools.erp_sim.pricing import currency_of, line_amount, round_to
from devtools.erp_sim.store import Row

SHIPMENTS = "salesShipments"
INVOICES = "salesInvoices"
TRACKING = "salesShipmentTracking"
CREDIT_MEMOS = "salesCreditMemos"
PAYMENT_DAYS = 30
# BC's API status of a sales order (Sales Order Entity Buffer) for BC's Sales Header status.
API_STATUS = {"Open": "Draft", "Pending Approval": "In Review", "Released": "Open"}


def find_order(dataset: Dataset, key: str) -> Row:
    """A sales order by id or by number."""
    orders = dataset[ORDER.set_name]
    row = orders.get(key.lower()) or orders.find_one("number", key.upper())
    if row is None:
        raise RecordNotFound(f"The sales order '{key}' does not exist.")
    return row


def set_status(dataset: Dataset, header: Row, bc_status: str) -> Row:
    """Release (``Released``), reopen (``Open``) or send for approval (``Pending Approval``)."""
    header["status"] = API_STATUS[bc_status]
    dataset.touch(ORDER.set_name, header)
    return header


def _units(dataset: Dataset, line: Row) -> Decimal:
    return dataset.item_units.get(line["lineObjectNumber"], {}).get(
        line["unitOfMeasureCode"], Decimal(1)
    )


def _effect(dataset: Dataset, header: Row, line_id: str) -> StockEffect | None:
    commitment = dataset.commitments.get(header["id"])
    if commitment is None:
        return None
    return next((e for e in commitment.stock if e.line_id == line_id), None)


def _outstanding(line: Row) -> Decimal:
    return to_decimal(line["quantity"]) - to_decimal(line.get("shippedQuantity", 0))


def _require_open(header: Row) -> None:
    if header["status"] != "Draft":
        raise BusinessRuleViolation(
            "Status must be equal to 'Open'  in Sales Header: Document Type=Order, "
            f"No.={header['number']}. Current value is 'Released'."
        )


def _line_amount(header: Row, line: Row, quantity: Decimal) -> Decimal:
    currency = currency_of(header["currencyCode"])
    return line_amount(
        quantity, to_decimal(line["unitPrice"]), to_decimal(line["discountPercent"]), currency
    )


def _lcy(header: Row, amount: Decimal) -> Decimal:
    return round_to(amount * currency_of(header["currencyCode"]).lcy_per_unit, Decimal("0.01"))


def change_line(dataset: Dataset, header: Row, line: Row, quantity: Decimal) -> Row:
    """PATCH of a line's quantity on an open order: stock and amounts follow."""
    _require_open(header)
    shipped = to_decimal(line.get("shippedQuantity", 0))
    if quantity < shipped:
        raise BusinessRuleViolation(
            f"Quantity must not be less than the quantity shipped ({shipped}) on line "
            f"{line['sequence']}."
        )
    old = to_decimal(line["quantity"])
    effect = _effect(dataset, header, line["id"])
    if effect is not None and quantity != old:
        delta = StockEffect(
            effect.item_number,
            effect.location_code,
            (quantity - old) * _units(dataset, line),
            effect.reserved,
            line["id"],
        )
        apply_stock(dataset, delta, sign=1)
        effect.base_quantity += delta.base_quantity
    old_amount = to_decimal(line["amountExcludingTax"])
    amount = _line_amount(header, line, quantity)
    line["quantity"] = json_number(quantity)
    for name in ("amountExcludingTax", "amountIncludingTax", "netAmount"):
        line[name] = json_number(amount)
    line["@odata.etag"] = dataset.stamper.next_etag()
    _move_outstanding(dataset, header, _lcy(header, amount) - _lcy(header, old_amount))
    refresh_totals(dataset, ORDER, header)
    return line


def delete_line(dataset: Dataset, header: Row, line: Row) -> None:
    """DELETE of a line on an open order: its outstanding quantity and amount go back."""
    _require_open(header)
    if to_decimal(line.get("shippedQuantity", 0)) > 0:
        raise BusinessRuleViolation(
            f"You cannot delete line {line['sequence']} because it has been shipped."
        )
    effect = _effect(dataset, header, line["id"])
    if effect is not None:
        apply_stock(dataset, effect, sign=-1)
        dataset.commitments[header["id"]].stock.remove(effect)
    _move_outstanding(dataset, header, -_lcy(header, to_decimal(line["amountExcludingTax"])))
    dataset.lines[header["id"]] = [
        other for other in dataset.lines.get(header["id"], []) if other["id"] != line["id"]
    ]
    refresh_totals(dataset, ORDER, header)


def _move_outstanding(dataset: Dataset, header: Row, delta_lcy: Decimal) -> None:
    commitment = dataset.commitments.setdefault(header["id"], Commitment())
    commitment.outstanding_lcy += delta_lcy
    adjust_outstanding(dataset, header["customerNumber"], delta_lcy)


def _next_number(dataset: Dataset, set_name: str, prefix: str, start: int) -> str:
    dataset.document_counters[set_name] = dataset.document_counters.get(set_name, 0) + 1
    return f"{prefix}{start + dataset.document_counters[set_name] - 1}"


def ship(
    dataset: Dataset,
    header: Row,
    quantities: dict[str, Decimal] | None,
    *,
    shipping_agent: str,
    tracking_number: str,
    today: date,
) -> Row:
    """Post a shipment of `quantities` (line id -> quantity; None = everything outstanding)."""
    lines = sorted(dataset.lines.get(header["id"], ()), key=lambda line: line["sequence"])
    wanted: list[tuple[Row, Decimal]] = []
    for line in lines:
        outstanding = _outstanding(line)
        quantity = outstanding if quantities is None else quantities.pop(line["id"], Decimal(0))
        if quantity < 0 or quantity > outstanding:
            raise BusinessRuleViolation(
                f"You cannot ship more than {outstanding} units on line {line['sequence']}."
            )
        if quantity:
            wanted.append((line, quantity))
    if quantities:
        raise BadRequest(f"Unknown line ids: {', '.join(sorted(quantities))}.")
    if not wanted:
        raise BusinessRuleViolation("There is nothing to post.")
    # Posting releases the order first, as Business Central does.
    header["status"] = API_STATUS["Released"]
    shipment_id = str(uuid.uuid4())
    number = _next_number(dataset, SHIPMENTS, "S-SHPT", 102001)
    shipment_lines: list[Row] = []
    for line, quantity in wanted:
        base = quantity * _units(dataset, line)
        effect = _effect(dataset, header, line["id"])
        location = effect.location_code if effect else ""
        if effect is not None:
            apply_stock(
                dataset,
                StockEffect(effect.item_number, location, base, effect.reserved, line["id"]),
                sign=-1,
                shipped=True,
            )
            effect.base_quantity -= base
            refresh_item_inventory(dataset, effect.item_number)
        line["shippedQuantity"] = json_number(to_decimal(line["shippedQuantity"]) + quantity)
        line["@odata.etag"] = dataset.stamper.next_etag()
        shipment_lines.append(
            {
                "@odata.etag": dataset.stamper.next_etag(),
                "id": str(uuid.uuid4()),
                "documentId": shipment_id,
                "documentNo": number,
                "sequence": line["sequence"],
                "lineType": "Item",
                "lineObjectNumber": line["lineObjectNumber"],
                "description": line["description"],
                "unitOfMeasureCode": line["unitOfMeasureCode"],
                "unitPrice": line["unitPrice"],
                "quantity": json_number(quantity),
                "discountPercent": line["discountPercent"],
                "shipmentDate": today.isoformat(),
                "locationCode": location,
            }
        )
    stamper = dataset.stamper
    shipment: Row = {
        "@odata.etag": stamper.next_etag(),
        "id": shipment_id,
        "number": number,
        "externalDocumentNumber": header["externalDocumentNumber"],
        # The APIV2 page names the shipment's Document Date "invoiceDate".
        "invoiceDate": today.isoformat(),
        "postingDate": today.isoformat(),
        "dueDate": (today + timedelta(days=PAYMENT_DAYS)).isoformat(),
        "customerId": header["customerId"],
        "customerNumber": header["customerNumber"],
        "customerName": header["customerName"],
        "shipToName": header["shipToName"],
        "shipToContact": header["shipToContact"],
        "currencyCode": header["currencyCode"],
        "orderNumber": header["number"],
        "shipmentMethodCode": "",
        "lastModifiedDateTime": stamper.now_text(),
    }
    dataset[SHIPMENTS].insert(shipment)
    dataset.posted_lines[shipment_id] = shipment_lines
    dataset[TRACKING].insert(
        {
            "@odata.etag": stamper.next_etag(),
            "id": shipment_id,
            "shipmentNumber": number,
            "orderNumber": header["number"],
            "shippingAgentCode": shipping_agent,
            "shippingAgentServiceCode": "",
            "packageTrackingNumber": tracking_number,
            "lastModifiedDateTime": stamper.now_text(),
        }
    )
    dataset.touch(ORDER.set_name, header)
    return shipment


def invoice(dataset: Dataset, header: Row, today: date) -> Row:
    """Post an invoice for what was shipped and not yet invoiced; delete a finished order."""
    lines = sorted(dataset.lines.get(header["id"], ()), key=lambda line: line["sequence"])
    invoice_id = str(uuid.uuid4())
    number = _next_number(dataset, INVOICES, "S-INV", 103001)
    invoice_lines: list[Row] = []
    total = Decimal(0)
    for line in lines:
        quantity = to_decimal(line["shippedQuantity"]) - to_decimal(line["invoicedQuantity"])
        if quantity <= 0:
            continue
        amount = _line_amount(header, line, quantity)
        total += amount
        line["invoicedQuantity"] = json_number(to_decimal(line["invoicedQuantity"]) + quantity)
        line["@odata.etag"] = dataset.stamper.next_etag()
        invoice_lines.append(
            {
                "@odata.etag": dataset.stamper.next_etag(),
                "id": str(uuid.uuid4()),
                "documentId": invoice_id,
                "sequence": line["sequence"],
                "lineType": "Item",
                "lineObjectNumber": line["lineObjectNumber"],
                "description": line["description"],
                "unitOfMeasureCode": line["unitOfMeasureCode"],
                "unitPrice": line["unitPrice"],
                "quantity": json_number(quantity),
                "discountPercent": line["discountPercent"],
                "amountExcludingTax": json_number(amount),
                "amountIncludingTax": json_number(amount),
                "shipmentDate": line["shipmentDate"],
            }
        )
    if not invoice_lines:
        raise BusinessRuleViolation("There is nothing to post.")
    stamper = dataset.stamper
    row: Row = {
        "@odata.etag": stamper.next_etag(),
        "id": invoice_id,
        "number": number,
        "externalDocumentNumber": header["externalDocumentNumber"],
        "invoiceDate": today.isoformat(),
        "postingDate": today.isoformat(),
        "dueDate": (today + timedelta(days=PAYMENT_DAYS)).isoformat(),
        "customerId": header["customerId"],
        "customerNumber": header["customerNumber"],
        "customerName": header["customerName"],
        "currencyCode": header["currencyCode"],
        "orderId": header["id"],
        "orderNumber": header["number"],
        "totalAmountExcludingTax": json_number(total),
        "totalTaxAmount": 0,
        "totalAmountIncludingTax": json_number(total),
        "remainingAmount": json_number(total),
        "status": "Open",
        "lastModifiedDateTime": stamper.now_text(),
    }
    dataset[INVOICES].insert(row)
    dataset.posted_lines[invoice_id] = invoice_lines
    total_lcy = _lcy(header, total)
    _move_outstanding(dataset, header, -total_lcy)
    post_to_balance(dataset, header["customerNumber"], total_lcy)
    if all(to_decimal(line["invoicedQuantity"]) >= to_decimal(line["quantity"]) for line in lines):
        # Business Central deletes a sales order once it is completely shipped and invoiced.
        commitment = dataset.commitments.pop(header["id"], None)
        if commitment is not None and commitment.outstanding_lcy:
            adjust_outstanding(dataset, header["customerNumber"], -commitment.outstanding_lcy)
        dataset.lines.pop(header["id"], None)
        dataset[ORDER.set_name].delete(header["id"])
    else:
        dataset.touch(ORDER.set_name, header)
    return row


def ship_and_invoice(dataset: Dataset, header: Row, today: date) -> None:
    """``POST salesOrders({id})/Microsoft.NAV.shipAndInvoice``: post the whole order.

    Stock leaves inventory and the order's demand in the same step, so no reader ever sees
    the shipped units twice (or not at all); a shipment and an invoice are posted.
    """
    if not dataset.lines.get(header["id"]):
        raise BusinessRuleViolation("There is nothing to post.")
    if any(_outstanding(line) > 0 for line in dataset.lines[header["id"]]):
        ship(dataset, header, None, shipping_agent="", tracking_number="", today=today)
    invoice(dataset, header, today)


def pay(dataset: Dataset, invoice_row: Row, amount: Decimal | None) -> Row:
    """A customer payment applied to an invoice (``Paid`` once nothing remains)."""
    remaining = to_decimal(invoice_row["remainingAmount"])
    paid = remaining if amount is None else min(amount, remaining)
    invoice_row["remainingAmount"] = json_number(remaining - paid)
    if remaining - paid == 0:
        invoice_row["status"] = "Paid"
    post_to_balance(dataset, invoice_row["customerNumber"], -_lcy(invoice_row, paid))
    dataset.touch(INVOICES, invoice_row)
    return invoice_row


def credit_memo(
    dataset: Dataset, invoice_row: Row, quantities: dict[int, Decimal] | None, today: date
) -> Row:
    """A posted credit memo applied to an invoice (a return or a correction): `quantities` by
    invoice line sequence, None = the whole invoice. Lowers the invoice's remaining amount and
    the customer's balance; the external document number is the invoice's."""
    lines = sorted(dataset.posted_lines.get(invoice_row["id"], ()), key=lambda r: r["sequence"])
    memo_id = str(uuid.uuid4())
    number = _next_number(dataset, CREDIT_MEMOS, "S-CR", 104001)
    currency = currency_of(invoice_row["currencyCode"])
    memo_lines: list[Row] = []
    total = Decimal(0)
    wanted = dict(quantities) if quantities is not None else None
    for line in lines:
        invoiced = to_decimal(line["quantity"])
        quantity = invoiced if wanted is None else wanted.pop(line["sequence"], Decimal(0))
        if quantity < 0 or quantity > invoiced:
            raise BusinessRuleViolation(
                f"You cannot credit more than {invoiced} units on line {line['sequence']}."
            )
        if not quantity:
            continue
        amount = line_amount(
            quantity, to_decimal(line["unitPrice"]), to_decimal(line["discountPercent"]), currency
        )
        total += amount
        memo_lines.append(
            {
                "@odata.etag": dataset.stamper.next_etag(),
                "id": str(uuid.uuid4()),
                "documentId": memo_id,
                "sequence": line["sequence"],
                "lineType": "Item",
                "lineObjectNumber": line["lineObjectNumber"],
                "description": line["description"],
                "unitOfMeasureCode": line["unitOfMeasureCode"],
                "unitPrice": line["unitPrice"],
                "quantity": json_number(quantity),
                "discountPercent": line["discountPercent"],
                "amountExcludingTax": json_number(amount),
                "amountIncludingTax": json_number(amount),
            }
        )
    if wanted:
        raise BadRequest(f"The invoice has no lines {sorted(wanted)}.")
    if not memo_lines:
        raise BusinessRuleViolation("There is nothing to post.")
    stamper = dataset.stamper
    row: Row = {
        "@odata.etag": stamper.next_etag(),
        "id": memo_id,
        "number": number,
        "externalDocumentNumber": invoice_row["externalDocumentNumber"],
        "creditMemoDate": today.isoformat(),
        "postingDate": today.isoformat(),
        "dueDate": today.isoformat(),
        "customerId": invoice_row["customerId"],
        "customerNumber": invoice_row["customerNumber"],
        "customerName": invoice_row["customerName"],
        "currencyCode": invoice_row["currencyCode"],
        "invoiceId": invoice_row["id"],
        "invoiceNumber": invoice_row["number"],
        "totalAmountExcludingTax": json_number(total),
        "totalTaxAmount": 0,
        "totalAmountIncludingTax": json_number(total),
        "status": "Open",
        "lastModifiedDateTime": stamper.now_text(),
    }
    dataset[CREDIT_MEMOS].insert(row)
    dataset.posted_lines[memo_id] = memo_lines
    remaining = max(to_decimal(invoice_row["remainingAmount"]) - total, Decimal(0))
    invoice_row["remainingAmount"] = json_number(remaining)
    if remaining == 0:
        invoice_row["status"] = "Paid"
    dataset.touch(INVOICES, invoice_row)
    post_to_balance(dataset, invoice_row["customerNumber"], -_lcy(invoice_row, total))
    return row


def generate_history(
    dataset: Dataset,
    customer: Row,
    *,
    orders: int,
    shipments: int,
    invoices: int,
    paid_share: float,
    today: date,
) -> dict[str, int]:
    """Documents of one customer placed outside the product (phone, EDI), without stock
    effects: enough rows to page through. Every tenth invoice is overdue, ``paid_share`` paid."""
    stamper = dataset.stamper
    common = {
        "customerId": customer["id"],
        "customerNumber": customer["number"],
        "customerName": customer["displayName"],
        "currencyCode": customer.get("currencyCode") or "USD",
        "externalDocumentNumber": "",
    }
    for index in range(orders):
        number = _next_number(dataset, ORDER.set_name, "S-ORD", 101001)
        day = today - timedelta(days=index % 365)
        order_id = str(uuid.uuid4())
        dataset[ORDER.set_name].insert(
            {
                "@odata.etag": stamper.next_etag(),
                "id": order_id,
                "number": number,
                **common,
                "externalDocumentNumber": f"EDI-{index}",
                "orderDate": day.isoformat(),
                "postingDate": day.isoformat(),
                "currencyId": "00000000-0000-0000-0000-000000000000",
                "pricesIncludeTax": False,
                "paymentTermsId": "00000000-0000-0000-0000-000000000000",
                "requestedDeliveryDate": "0001-01-01",
                "shipToName": customer["displayName"],
                "shipToContact": "",
                "shipToAddressLine1": "",
                "shipToAddressLine2": "",
                "shipToCity": "",
                "shipToCountry": "",
                "shipToState": "",
                "shipToPostCode": "",
                "email": "",
                "phoneNumber": "",
                "discountAmount": 0,
                "totalAmountExcludingTax": 100,
                "totalTaxAmount": 0,
                "totalAmountIncludingTax": 100,
                "status": "Open",
                "fullyShipped": False,
                "lastModifiedDateTime": stamper.now_text(),
            }
        )
        dataset.lines[order_id] = []
    for index in range(shipments):
        number = _next_number(dataset, SHIPMENTS, "S-SHPT", 102001)
        day = today - timedelta(days=index % 365)
        dataset[SHIPMENTS].insert(
            {
                "@odata.etag": stamper.next_etag(),
                "id": str(uuid.uuid4()),
                "number": number,
                **common,
                "invoiceDate": day.isoformat(),
                "postingDate": day.isoformat(),
                "dueDate": (day + timedelta(days=PAYMENT_DAYS)).isoformat(),
                "shipToName": customer["displayName"],
                "shipToContact": "",
                "orderNumber": "",
                "shipmentMethodCode": "",
                "lastModifiedDateTime": stamper.now_text(),
            }
        )
    paid_every = round(1 / paid_share) if paid_share else 0
    for index in range(invoices):
        number = _next_number(dataset, INVOICES, "S-INV", 103001)
        day = today - timedelta(days=(index % 365) + (45 if index % 10 == 0 else 0))
        paid = bool(paid_every) and index % paid_every == 0
        amount = Decimal(100 + index % 900)
        dataset[INVOICES].insert(
            {
                "@odata.etag": stamper.next_etag(),
                "id": str(uuid.uuid4()),
                "number": number,
                **common,
                "invoiceDate": day.isoformat(),
                "postingDate": day.isoformat(),
                "dueDate": (day + timedelta(days=PAYMENT_DAYS)).isoformat(),
                "orderId": "00000000-0000-0000-0000-000000000000",
                "orderNumber": "",
                "totalAmountExcludingTax": json_number(amount),
                "totalTaxAmount": 0,
                "totalAmountIncludingTax": json_number(amount),
                "remainingAmount": 0 if paid else json_number(amount),
                "status": "Paid" if paid else "Open",
                "lastModifiedDateTime": stamper.now_text(),
            }
        )
    return {"orders": orders, "shipments": shipments, "invoices": invoices}
