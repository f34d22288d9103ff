"""An order's life after booking, folded from what Business Central shows of it.

Pure: the ERP's documents come in as plain values (`ErpSnapshot`), the answer is a
`Lifecycle` whose `fingerprint` says whether anything a storefront can see changed. The
service layer decides from the fingerprint whether to publish, and from `read_at` whether a
read is stale (older than the one already recorded), so a duplicate or late notification never
publishes anything.

Status, from the most advanced fact down:
- ``cancelled``: the ERP order is gone and nothing was shipped, or every line was removed;
- ``invoiced``: every ordered unit is invoiced;
- ``shipped``: every ordered unit is shipped;
- ``partially-shipped``: some units are shipped;
- ``released``: the ERP order is released (the API page's status ``Open``);
- ``booked``: otherwise (``Draft`` or ``In Review`` in the ERP).

Quantities are per (SKU, unit of measure) as the ERP lines carry them, summed over the ERP
lines of one SKU (an order line split over locations is several ERP lines). ``ordered`` is the
ERP's current quantity; ``cancelled`` what the ERP took away from what this product booked;
``backordered`` what is ordered and not yet shipped; ``credited`` what credit memos on the
order's invoices gave back (returns, corrections; the status stays ``invoiced``). Once
Business Central deletes a fully posted order, what was shipped is what was ordered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

ZERO = Decimal(0)


class LifecycleStatus(StrEnum):
    BOOKED = "booked"
    RELEASED = "released"
    PARTIALLY_SHIPPED = "partially-shipped"
    SHIPPED = "shipped"
    INVOICED = "invoiced"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Nothing more is expected from the ERP for this order."""
        return self in (LifecycleStatus.INVOICED, LifecycleStatus.CANCELLED)


# The API page's values (Sales Order Entity Buffer Status): Open is BC's "Released".
ERP_RELEASED = "Open"


@dataclass(frozen=True)
class ErpLine:
    """One ERP sales order line: item, unit, quantity and its progress."""

    sku: str
    unit_of_measure: str
    quantity: Decimal
    shipped: Decimal = ZERO
    invoiced: Decimal = ZERO


@dataclass(frozen=True)
class DocumentLine:
    sku: str
    unit_of_measure: str
    quantity: Decimal


@dataclass(frozen=True)
class ShipmentFact:
    number: str
    shipped_on: date | None
    carrier: str
    tracking_number: str
    lines: tuple[DocumentLine, ...]


@dataclass(frozen=True)
class InvoiceFact:
    number: str
    posted_on: date | None
    amount: Decimal
    due_date: date | None
    remaining_amount: Decimal
    status: str
    currency: str
    lines: tuple[DocumentLine, ...] = ()


@dataclass(frozen=True)
class CreditMemoFact:
    """A credit memo applied to one of the order's invoices (a return or a correction)."""

    number: str
    posted_on: date | None
    amount: Decimal
    invoice_number: str
    lines: tuple[DocumentLine, ...] = ()


@dataclass(frozen=True)
class ErpSnapshot:
    """What one read of the ERP showed; ``order_status`` None means the order is gone."""

    order_status: str | None
    lines: tuple[ErpLine, ...]
    shipments: tuple[ShipmentFact, ...]
    invoices: tuple[InvoiceFact, ...]
    credit_memos: tuple[CreditMemoFact, ...] = ()


@dataclass(frozen=True)
class BookedLine:
    """What this product booked: the baseline a removed line is measured against."""

    sku: str
    unit_of_measure: str
    quantity: Decimal


@dataclass(frozen=True)
class LineProgress:
    sku: str
    unit_of_measure: str
    ordered: Decimal
    shipped: Decimal
    invoiced: Decimal
    cancelled: Decimal
    credited: Decimal = ZERO

    @property
    def backordered(self) -> Decimal:
        return max(self.ordered - self.shipped, ZERO)


@dataclass(frozen=True)
class Lifecycle:
    status: LifecycleStatus
    erp_status: str | None
    lines: tuple[LineProgress, ...]
    shipments: tuple[ShipmentFact, ...]
    invoices: tuple[InvoiceFact, ...]
    credit_memos: tuple[CreditMemoFact, ...] = ()

    def record(self) -> dict[str, Any]:
        """A JSON-ready form (decimal strings, ISO dates); `from_record` reads it back."""
        return {
            "status": str(self.status),
            "erpStatus": self.erp_status,
            "lines": [
                {
                    "sku": line.sku,
                    "unitOfMeasure": line.unit_of_measure,
                    "ordered": _num(line.ordered),
                    "shipped": _num(line.shipped),
                    "invoiced": _num(line.invoiced),
                    "cancelled": _num(line.cancelled),
                    "credited": _num(line.credited),
                }
                for line in self.lines
            ],
            "shipments": [
                {
                    "number": s.number,
                    "shippedOn": _day(s.shipped_on),
                    "carrier": s.carrier,
                    "trackingNumber": s.tracking_number,
                    "lines": [_doc_line(line) for line in s.lines],
                }
                for s in self.shipments
            ],
            "invoices": [
                {
                    "number": i.number,
                    "postedOn": _day(i.posted_on),
                    "amount": _num(i.amount),
                    "dueDate": _day(i.due_date),
                    "remainingAmount": _num(i.remaining_amount),
                    "status": i.status,
                    "currency": i.currency,
                    "lines": [_doc_line(line) for line in i.lines],
                }
                for i in self.invoices
            ],
            "creditMemos": [
                {
                    "number": c.number,
                    "postedOn": _day(c.posted_on),
                    "amount": _num(c.amount),
                    "invoiceNumber": c.invoice_number,
                    "lines": [_doc_line(line) for line in c.lines],
                }
                for c in self.credit_memos
            ],
        }

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical record: equal states, equal fingerprints."""
        text = json.dumps(self.record(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def outstanding(self) -> dict[str, Decimal]:
        """Units per SKU the ERP still owes (ordered, not shipped): its sales-order demand."""
        result: dict[str, Decimal] = {}
        for line in self.lines:
            result[line.sku] = result.get(line.sku, ZERO) + line.backordered
        return result


def from_record(record: Mapping[str, Any]) -> Lifecycle:
    """The `Lifecycle` a `Lifecycle.record()` describes."""
    return Lifecycle(
        status=LifecycleStatus(record["status"]),
        erp_status=record.get("erpStatus"),
        lines=tuple(
            LineProgress(
                sku=str(r["sku"]),
                unit_of_measure=str(r["unitOfMeasure"]),
                ordered=Decimal(r["ordered"]),
                shipped=Decimal(r["shipped"]),
                invoiced=Decimal(r["invoiced"]),
                cancelled=Decimal(r["cancelled"]),
                credited=Decimal(r.get("credited") or "0"),
            )
            for r in record.get("lines", [])
        ),
        shipments=tuple(
            ShipmentFact(
                number=str(r["number"]),
                shipped_on=_parse_day(r.get("shippedOn")),
                carrier=str(r.get("carrier") or ""),
                tracking_number=str(r.get("trackingNumber") or ""),
                lines=tuple(_read_doc_line(x) for x in r.get("lines", [])),
            )
            for r in record.get("shipments", [])
        ),
        invoices=tuple(
            InvoiceFact(
                number=str(r["number"]),
                posted_on=_parse_day(r.get("postedOn")),
                amount=Decimal(r["amount"]),
                due_date=_parse_day(r.get("dueDate")),
                remaining_amount=Decimal(r.get("remainingAmount") or "0"),
                status=str(r.get("status") or ""),
                currency=str(r.get("currency") or ""),
                lines=tuple(_read_doc_line(x) for x in r.get("lines", [])),
            )
            for r in record.get("invoices", [])
        ),
        credit_memos=tuple(
            CreditMemoFact(
                number=str(r["number"]),
                posted_on=_parse_day(r.get("postedOn")),
                amount=Decimal(r["amount"]),
                invoice_number=str(r.get("invoiceNumber") or ""),
                lines=tuple(_read_doc_line(x) for x in r.get("lines", [])),
            )
            for r in record.get("creditMemos", [])
        ),
    )


def fold(booked: Sequence[BookedLine], snapshot: ErpSnapshot) -> Lifecycle:
    """The order's lifecycle from what it was booked as and what the ERP shows now."""
    keys: list[tuple[str, str]] = []
    baseline: dict[tuple[str, str], Decimal] = {}
    for line in booked:
        key = (line.sku, line.unit_of_measure)
        baseline[key] = baseline.get(key, ZERO) + line.quantity
        keys.append(key)
    ordered: dict[tuple[str, str], Decimal] = {}
    shipped: dict[tuple[str, str], Decimal] = {}
    invoiced: dict[tuple[str, str], Decimal] = {}
    order_gone = snapshot.order_status is None
    if not order_gone:
        for erp_line in snapshot.lines:
            key = (erp_line.sku, erp_line.unit_of_measure)
            keys.append(key)
            ordered[key] = ordered.get(key, ZERO) + erp_line.quantity
    # Posted documents are the truth of what left and was billed (the order may be gone).
    for shipment in snapshot.shipments:
        for doc_line in shipment.lines:
            key = (doc_line.sku, doc_line.unit_of_measure)
            keys.append(key)
            shipped[key] = shipped.get(key, ZERO) + doc_line.quantity
    for invoice in snapshot.invoices:
        for doc_line in invoice.lines:
            key = (doc_line.sku, doc_line.unit_of_measure)
            keys.append(key)
            invoiced[key] = invoiced.get(key, ZERO) + doc_line.quantity
    credited: dict[tuple[str, str], Decimal] = {}
    for memo in snapshot.credit_memos:
        for doc_line in memo.lines:
            key = (doc_line.sku, doc_line.unit_of_measure)
            credited[key] = credited.get(key, ZERO) + doc_line.quantity
    if not order_gone:
        # Lines still on the order report their own progress; take the larger (a posted
        # document may not be readable yet, or the line may have been read first).
        for erp_line in snapshot.lines:
            key = (erp_line.sku, erp_line.unit_of_measure)
            shipped[key] = max(shipped.get(key, ZERO), _sum_shipped(snapshot.lines, key))
            invoiced[key] = max(invoiced.get(key, ZERO), _sum_invoiced(snapshot.lines, key))
    lines: list[LineProgress] = []
    for key in dict.fromkeys(keys):
        shipped_qty = shipped.get(key, ZERO)
        # Once the order is gone, what was not shipped is no longer owed.
        ordered_qty = shipped_qty if order_gone else max(ordered.get(key, ZERO), shipped_qty)
        lines.append(
            LineProgress(
                sku=key[0],
                unit_of_measure=key[1],
                ordered=ordered_qty,
                shipped=shipped_qty,
                invoiced=invoiced.get(key, ZERO),
                cancelled=max(baseline.get(key, ZERO) - ordered_qty, ZERO),
                credited=credited.get(key, ZERO),
            )
        )
    return Lifecycle(
        status=_status(snapshot, lines),
        erp_status=snapshot.order_status,
        lines=tuple(lines),
        shipments=tuple(sorted(snapshot.shipments, key=lambda s: s.number)),
        invoices=tuple(sorted(snapshot.invoices, key=lambda i: i.number)),
        credit_memos=tuple(sorted(snapshot.credit_memos, key=lambda c: c.number)),
    )


def _status(snapshot: ErpSnapshot, lines: Iterable[LineProgress]) -> LifecycleStatus:
    items = list(lines)
    total_ordered = sum((line.ordered for line in items), ZERO)
    total_shipped = sum((line.shipped for line in items), ZERO)
    total_invoiced = sum((line.invoiced for line in items), ZERO)
    if total_ordered == 0 and total_shipped == 0:
        return LifecycleStatus.CANCELLED
    if total_invoiced >= total_ordered and all(line.invoiced >= line.ordered for line in items):
        return LifecycleStatus.INVOICED
    if all(line.shipped >= line.ordered for line in items):
        return LifecycleStatus.SHIPPED
    if total_shipped > 0:
        return LifecycleStatus.PARTIALLY_SHIPPED
    if snapshot.order_status == ERP_RELEASED:
        return LifecycleStatus.RELEASED
    return LifecycleStatus.BOOKED


def _sum_shipped(lines: Iterable[ErpLine], key: tuple[str, str]) -> Decimal:
    return sum((line.shipped for line in lines if (line.sku, line.unit_of_measure) == key), ZERO)


def _sum_invoiced(lines: Iterable[ErpLine], key: tuple[str, str]) -> Decimal:
    return sum((line.invoiced for line in lines if (line.sku, line.unit_of_measure) == key), ZERO)


def is_stale(read_at: datetime, recorded_read_at: datetime | None) -> bool:
    """A read that started before the recorded one may miss what that one saw: skip it."""
    return recorded_read_at is not None and read_at <= recorded_read_at


def _num(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _parse_day(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def _doc_line(line: DocumentLine) -> dict[str, str]:
    return {"sku": line.sku, "unitOfMeasure": line.unit_of_measure, "quantity": _num(line.quantity)}


def _read_doc_line(record: Mapping[str, Any]) -> DocumentLine:
    return DocumentLine(
        sku=str(record["sku"]),
        unit_of_measure=str(record.get("unitOfMeasure") or ""),
        quantity=Decimal(record["quantity"]),
    )
