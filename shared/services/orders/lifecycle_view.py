"""The lifecycle part of ``GET /api/orders/{orderId}``: wire models and the fields they fill.

The same state the latest ``order-status`` event carries (`lifecycle.status_event`), so a
storefront that polls and one that listens see one truth.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.adapters.stores.order_lifecycle import LifecycleRecord
from shared.domain.orders import Order
from shared.services.http_contract import DecimalString, Timestamp, WireModel, WireQuantity
from shared.services.orders.lifecycle import status_event

LifecycleStatusText = Literal[
    "booked", "released", "partially-shipped", "shipped", "invoiced", "cancelled"
]


class LineProgressAnswer(WireModel):
    """One item of the order as the ERP has it now (quantities in the line's unit)."""

    sku: str
    unit_of_measure: str
    ordered: WireQuantity
    shipped: WireQuantity
    invoiced: WireQuantity
    backordered: WireQuantity = Field(description="Ordered and not shipped yet.")
    backordered_at_intake: WireQuantity = Field(
        description="Of that, what intake accepted beyond the stock there was (backorder)."
    )
    cancelled: WireQuantity
    credited: WireQuantity


class ShipmentLineAnswer(WireModel):
    sku: str
    unit_of_measure: str
    quantity: WireQuantity


class ShipmentAnswer(WireModel):
    """A posted shipment (Business Central's ``salesShipments``) with carrier and tracking."""

    number: str
    shipped_at: str | None
    carrier: str | None
    tracking_number: str | None
    lines: list[ShipmentLineAnswer]


class InvoiceAnswer(WireModel):
    """A posted invoice (``salesInvoices``): amount incl. tax, due date, what remains open."""

    number: str
    posted_at: str | None
    amount: DecimalString
    currency: str
    due_date: str | None
    remaining_amount: DecimalString
    status: str


class CreditMemoAnswer(WireModel):
    """A credit memo applied to one of the order's invoices (``salesCreditMemos``)."""

    number: str
    posted_at: str | None
    amount: DecimalString
    invoice_number: str


class LifecycleFields(WireModel):
    """Fields `lifecycle_fields` adds to the order view once the ERP has the order."""

    status: LifecycleStatusText
    erp_status: str | None
    progress: list[LineProgressAnswer]
    shipments: list[ShipmentAnswer]
    invoices: list[InvoiceAnswer]
    credit_memos: list[CreditMemoAnswer]
    lifecycle_sequence: int
    lifecycle_at: Timestamp


def lifecycle_fields(order: Order, record: LifecycleRecord | None) -> dict[str, Any]:
    """The lifecycle fields for a booked order (an empty lifecycle before the first read)."""
    if record is None:
        return {"shipments": [], "invoices": [], "creditMemos": []}
    event = status_event(order, record)
    return {
        "status": event["status"],
        "erpStatus": event["erpStatus"],
        "progress": event["lines"],
        "shipments": event["shipments"],
        "invoices": event["invoices"],
        "creditMemos": event["creditMemos"],
        "lifecycleSequence": event["sequence"],
        "lifecycleAt": event["occurredAt"],
    }
