"""Typed shapes of Business Central's sales documents after booking, and how to read them.

- ``salesOrders`` + ``salesOrderLines`` with the lines' progress (``shippedQuantity`` =
  "Quantity Shipped", ``invoicedQuantity`` = "Quantity Invoiced"); ``status`` is the API page's
  Draft / In Review / Open, where Open is BC's "Released".
- ``salesShipments`` + ``salesShipmentLines`` (posted, read-only, ``orderNumber`` = the order).
- ``salesInvoices`` + ``salesInvoiceLines`` (``status`` Draft / In Review / Open / Paid /
  Canceled / Corrective, ``dueDate``, ``remainingAmount``, ``orderNumber``).
- ``salesCreditMemos`` + ``salesCreditMemoLines`` (``invoiceNumber`` = the invoice it
  applies to, "Applies-to Doc. No.").
- ``salesShipmentTracking``: this product's custom page over the Sales Shipment Header with
  the shipping agent and package tracking number, which the APIV2 shipment page lacks.

Every response is validated here (pydantic), so a malformed ERP row is an ``ErpContractError``
raised by the paging layer, never a half-read document.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

from pydantic import Field

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.models import (
    EnumText,
    ErpModel,
    OptionalDate,
    OptionalGuid,
    UtcDatetime,
)
from shared.adapters.erp.odata import Api, and_filters, eq_filter

SHIPMENT_TRACKING_SET = "salesShipmentTracking"
ModelT = TypeVar("ModelT", bound=ErpModel)


class OrderLineProgress(ErpModel):
    """A sales order line with what was shipped and invoiced of it."""

    id: str
    sequence: int = 0
    line_type: str = "Item"
    line_object_number: str = ""
    unit_of_measure_code: str = ""
    quantity: Decimal = Decimal(0)
    shipped_quantity: Decimal = Decimal(0)
    invoiced_quantity: Decimal = Decimal(0)
    location_id: OptionalGuid = None


class OrderWithProgress(ErpModel):
    id: UUID
    number: str
    external_document_number: str = ""
    customer_number: str = ""
    status: EnumText = "Draft"
    last_modified_date_time: UtcDatetime | None = None
    sales_order_lines: list[OrderLineProgress] = Field(default_factory=list)


class DocumentLine(ErpModel):
    sequence: int = 0
    line_type: str = "Item"
    line_object_number: str = ""
    unit_of_measure_code: str = ""
    quantity: Decimal = Decimal(0)
    amount_including_tax: Decimal | None = None


class SalesShipment(ErpModel):
    id: UUID
    number: str
    external_document_number: str = ""
    customer_number: str = ""
    order_number: str = ""
    posting_date: OptionalDate = None
    last_modified_date_time: UtcDatetime | None = None
    sales_shipment_lines: list[DocumentLine] = Field(default_factory=list)


class ShipmentTracking(ErpModel):
    shipment_number: str
    order_number: str = ""
    shipping_agent_code: str = ""
    shipping_agent_service_code: str = ""
    package_tracking_number: str = ""


class SalesInvoice(ErpModel):
    id: UUID
    number: str
    external_document_number: str = ""
    customer_number: str = ""
    order_number: str = ""
    invoice_date: OptionalDate = None
    posting_date: OptionalDate = None
    due_date: OptionalDate = None
    currency_code: str = ""
    total_amount_including_tax: Decimal = Decimal(0)
    remaining_amount: Decimal = Decimal(0)
    status: EnumText = "Open"
    last_modified_date_time: UtcDatetime | None = None
    sales_invoice_lines: list[DocumentLine] = Field(default_factory=list)


class SalesCreditMemo(ErpModel):
    """A credit memo; ``invoiceNumber`` is the invoice it applies to ("Applies-to Doc. No.")."""

    id: UUID
    number: str
    external_document_number: str = ""
    customer_number: str = ""
    invoice_number: str = ""
    posting_date: OptionalDate = None
    currency_code: str = ""
    total_amount_including_tax: Decimal = Decimal(0)
    status: EnumText = "Open"
    last_modified_date_time: UtcDatetime | None = None
    sales_credit_memo_lines: list[DocumentLine] = Field(default_factory=list)


class SalesOrderSummary(ErpModel):
    """A sales order as a customer's history lists it."""

    id: UUID
    number: str
    external_document_number: str = ""
    customer_number: str = ""
    order_date: OptionalDate = None
    status: EnumText = "Draft"
    currency_code: str = ""
    total_amount_including_tax: Decimal = Decimal(0)
    last_modified_date_time: UtcDatetime | None = None


class OrderDocuments(ErpModel):
    """Everything Business Central holds about one sales order, read in one go."""

    order: OrderWithProgress | None
    shipments: list[SalesShipment]
    tracking: list[ShipmentTracking]
    invoices: list[SalesInvoice]
    credit_memos: list[SalesCreditMemo] = Field(default_factory=list)


_NUMBERS_PER_FILTER = 20


async def _all(
    erp: ErpClient,
    entity_set: str,
    model: type[ModelT],
    filter: str,
    expand: str | None,
    correlation_id: str | None,
    api: Api = Api.STANDARD,
) -> list[ModelT]:
    rows: list[ModelT] = []
    async for page in erp.iter_pages(
        entity_set,
        model,
        api=api,
        filter=filter,
        extra_params={"$expand": expand} if expand else None,
        correlation_id=correlation_id,
    ):
        rows.extend(page)
    return rows


async def read_order_documents(
    erp: ErpClient,
    erp_order_id: UUID,
    erp_order_number: str,
    *,
    correlation_id: str | None = None,
) -> OrderDocuments:
    """The order (None once BC deleted it), its posted shipments with tracking, its invoices
    and the credit memos applied to them.

    Four requests (a fifth per 20 invoices for their credit memos), all from the primary
    rather than the read replica: a notification announced a change, and the read must show it.
    """
    orders = await _all(
        erp, "salesOrders", OrderWithProgress, f"id eq {erp_order_id}", "salesOrderLines",
        correlation_id,
    )  # fmt: skip
    by_order = eq_filter("orderNumber", erp_order_number)
    shipments = await _all(
        erp, "salesShipments", SalesShipment, by_order, "salesShipmentLines", correlation_id
    )
    tracking = await _all(
        erp, SHIPMENT_TRACKING_SET, ShipmentTracking, by_order, None, correlation_id, Api.CUSTOM
    )
    invoices = await _all(
        erp, "salesInvoices", SalesInvoice, by_order, "salesInvoiceLines", correlation_id
    )
    credit_memos: list[SalesCreditMemo] = []
    numbers = [invoice.number for invoice in invoices]
    for start in range(0, len(numbers), _NUMBERS_PER_FILTER):
        applies_to = " or ".join(
            eq_filter("invoiceNumber", n) for n in numbers[start : start + _NUMBERS_PER_FILTER]
        )
        credit_memos += await _all(
            erp, "salesCreditMemos", SalesCreditMemo, applies_to, "salesCreditMemoLines",
            correlation_id,
        )  # fmt: skip
    return OrderDocuments(
        order=orders[0] if orders else None,
        shipments=shipments,
        tracking=tracking,
        invoices=invoices,
        credit_memos=credit_memos,
    )


def customer_filter(
    customer_number: str,
    *,
    status: str | None = None,
    date_field: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> str:
    """``customerNumber eq 'C1'`` plus the optional status and date bounds."""
    clauses: list[str | None] = [eq_filter("customerNumber", customer_number)]
    if status:
        clauses.append(eq_filter("status", status))
    if date_field and since:
        clauses.append(f"{date_field} ge {since.isoformat()}")
    if date_field and until:
        clauses.append(f"{date_field} le {until.isoformat()}")
    combined = and_filters(*clauses)
    assert combined is not None
    return combined


async def iter_document_pages(
    erp: ErpClient,
    entity_set: str,
    model: type[SalesOrderSummary] | type[SalesInvoice] | type[SalesShipment],
    filter: str,
    page_size: int,
) -> AsyncGenerator[list[ErpModel]]:
    """Pages of a customer's documents from the read replica (``Data-Access-Intent``)."""
    async for page in erp.iter_pages(
        entity_set, model, filter=filter, page_size=page_size, read_only=True
    ):
        yield list(page)
