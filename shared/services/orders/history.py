"""B2B self-service: a customer's orders, invoices and shipments, live from the ERP.

Read from Business Central's read replica (``Data-Access-Intent: ReadOnly``), one ERP request
per page (``$filter`` on the customer, ``$top``/``$skip``), so paging through 10,000 documents
at 500 a page costs about 20 requests of the 6,000 per 5 minutes. Answers are kept for the sync
policy's ``orders.historyCache`` per (route, customer, query, page): a storefront re-rendering a
page costs nothing. When the ERP is unreachable an answer up to ten times that old is served
with ``stale: true``; older than that, the caller answers 503.

Invoices come open and overdue first: three sections read one after the other (overdue: an
amount remains and the due date is past; open: an amount remains; then the settled ones), each
in the ERP's key order. The continuation token names the section and the offset in it, and the
query it belongs to, so a token cannot be replayed against another filter.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.documents import (
    SalesInvoice,
    SalesOrderSummary,
    SalesShipment,
    customer_filter,
)
from shared.adapters.erp.errors import ErpError, ErpNotFound
from shared.adapters.erp.models import ErpModel
from shared.services.errors import Unavailable, UnknownCustomer
from shared.services.http_contract import DecimalString, Timestamp, WireModel

Kind = Literal["orders", "invoices", "shipments"]
MAX_PAGE_SIZE = 500
_STALE_FACTOR = 10
_CACHE_ENTRIES = 2000
_ORDER_STATUS = {"open": "Draft", "in-review": "In Review", "released": "Open"}
_ORDER_STATUS_BACK = {erp: ours for ours, erp in _ORDER_STATUS.items()}


class HistoryUnavailable(Unavailable):
    """The ERP cannot be read and no recent enough answer is kept."""

    def __init__(self, reason: str) -> None:
        super().__init__("ERP unavailable", "the ERP cannot be read", retry_after_seconds=30)
        self.reason = reason


class BadContinuation(ValueError):
    """The continuation token is not one this query handed out (400)."""


class HistoryQuery(BaseModel):
    """Query of the history routes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    customer_id: str = Field(alias="customerId", min_length=1, max_length=20)
    page_size: int = Field(100, alias="pageSize", ge=1, le=MAX_PAGE_SIZE)
    continuation: str | None = Field(None, max_length=400, pattern=r"^[A-Za-z0-9_-]+$")
    status: str | None = Field(
        None,
        description="orders: open | in-review | released; invoices: open | overdue | paid",
        pattern=r"^(open|in-review|released|overdue|paid)$",
    )
    from_date: date | None = Field(None, alias="from")
    to_date: date | None = Field(None, alias="to")


class OrderSummaryAnswer(WireModel):
    erp_order_number: str
    order_id: str | None
    external_document_number: str
    order_date: str | None
    status: str
    currency: str
    total_amount: DecimalString


class InvoiceSummaryAnswer(WireModel):
    number: str
    erp_order_number: str | None
    invoice_date: str | None
    due_date: str | None
    amount: DecimalString
    remaining_amount: DecimalString
    currency: str
    status: str
    overdue: bool


class ShipmentSummaryAnswer(WireModel):
    number: str
    erp_order_number: str | None
    external_document_number: str
    shipped_at: str | None


class HistoryPage(WireModel):
    page_size: int
    continuation: str | None = Field(description="Pass as `continuation` for the next page.")


class HistoryAnswer(WireModel):
    customer_id: str
    page: HistoryPage
    data_as_of: Timestamp
    stale: bool


class OrdersHistory(HistoryAnswer):
    """200 of ``GET /api/customers/{customerId}/orders``: the customer's open sales orders in
    the ERP, whatever channel placed them (web, phone, EDI)."""

    items: list[OrderSummaryAnswer]


class InvoicesHistory(HistoryAnswer):
    """200 of ``GET /api/customers/{customerId}/invoices``: overdue first, then open, then paid."""

    items: list[InvoiceSummaryAnswer]


class ShipmentsHistory(HistoryAnswer):
    """200 of ``GET /api/customers/{customerId}/shipments``."""

    items: list[ShipmentSummaryAnswer]


@dataclass(frozen=True)
class _Section:
    filter: str


@dataclass
class _Cached:
    read_at: datetime
    answer: dict[str, Any]


class HistoryCache:
    """Answers by (kind, query), bounded; one per process."""

    def __init__(self, entries: int = _CACHE_ENTRIES) -> None:
        self._entries: OrderedDict[str, _Cached] = OrderedDict()
        self._limit = entries

    def get(self, key: str) -> _Cached | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: str, value: _Cached) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)


@dataclass(frozen=True)
class HistoryDeps:
    erp: ErpClient
    cache: HistoryCache
    cache_for: timedelta
    clock: Callable[[], datetime]


def _query_hash(kind: Kind, query: HistoryQuery) -> str:
    text = json.dumps(
        [kind, query.customer_id, query.page_size, query.status, str(query.from_date),
         str(query.to_date)]
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _encode(section: int, offset: int, query_hash: str) -> str:
    raw = json.dumps({"s": section, "o": offset, "q": query_hash}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(token: str, query_hash: str) -> tuple[int, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        section, offset, owner = int(data["s"]), int(data["o"]), str(data["q"])
    except (ValueError, KeyError, TypeError):
        raise BadContinuation("malformed continuation token") from None
    if owner != query_hash or section < 0 or offset < 0:
        raise BadContinuation("the continuation token belongs to another query")
    return section, offset


def _sections(kind: Kind, query: HistoryQuery, today: date) -> list[_Section]:
    customer = query.customer_id
    if kind == "orders":
        status = _ORDER_STATUS.get(query.status or "")
        if query.status and status is None:
            raise BadContinuation(f"status {query.status!r} does not apply to orders")
        return [
            _Section(
                customer_filter(
                    customer,
                    status=status,
                    date_field="orderDate",
                    since=query.from_date,
                    until=query.to_date,
                )
            )
        ]
    if kind == "shipments":
        if query.status:
            raise BadContinuation("shipments have no status filter")
        return [
            _Section(
                customer_filter(
                    customer, date_field="postingDate", since=query.from_date, until=query.to_date
                )
            )
        ]
    base = customer_filter(
        customer, date_field="invoiceDate", since=query.from_date, until=query.to_date
    )
    overdue = _Section(f"{base} and remainingAmount gt 0 and dueDate lt {today.isoformat()}")
    open_ = _Section(f"{base} and remainingAmount gt 0 and dueDate ge {today.isoformat()}")
    paid = _Section(f"{base} and remainingAmount eq 0")
    by_status = {
        None: [overdue, open_, paid],
        "open": [overdue, open_],
        "overdue": [overdue],
        "paid": [paid],
    }
    if query.status not in by_status:
        raise BadContinuation(f"status {query.status!r} does not apply to invoices")
    return by_status[query.status]


_MODELS: dict[Kind, tuple[str, type[ErpModel]]] = {
    "orders": ("salesOrders", SalesOrderSummary),
    "invoices": ("salesInvoices", SalesInvoice),
    "shipments": ("salesShipments", SalesShipment),
}


async def _read_page(
    erp: ErpClient, kind: Kind, section: _Section, top: int, skip: int
) -> Sequence[ErpModel]:
    entity_set, model = _MODELS[kind]
    pages = erp.iter_pages(
        entity_set,
        model,
        filter=section.filter,
        page_size=top,
        read_only=True,
        extra_params={"$top": top, "$skip": skip or None},
    )
    try:
        async for page in pages:
            return list(page)
        return []
    finally:
        await pages.aclose()


def _money(value: Decimal) -> str:
    return format(value, "f")


def _item(kind: Kind, row: ErpModel, today: date) -> dict[str, Any]:
    if isinstance(row, SalesOrderSummary):
        ours = row.external_document_number.upper()
        return {
            "erpOrderNumber": row.number,
            "orderId": ours if ours.startswith("ORD-") else None,
            "externalDocumentNumber": row.external_document_number,
            "orderDate": row.order_date.isoformat() if row.order_date else None,
            "status": _ORDER_STATUS_BACK.get(row.status, row.status.lower()),
            "currency": row.currency_code,
            "totalAmount": _money(row.total_amount_including_tax),
        }
    if isinstance(row, SalesInvoice):
        return {
            "number": row.number,
            "erpOrderNumber": row.order_number or None,
            "invoiceDate": row.invoice_date.isoformat() if row.invoice_date else None,
            "dueDate": row.due_date.isoformat() if row.due_date else None,
            "amount": _money(row.total_amount_including_tax),
            "remainingAmount": _money(row.remaining_amount),
            "currency": row.currency_code,
            "status": row.status,
            "overdue": bool(row.remaining_amount > 0 and row.due_date and row.due_date < today),
        }
    assert isinstance(row, SalesShipment)
    return {
        "number": row.number,
        "erpOrderNumber": row.order_number or None,
        "externalDocumentNumber": row.external_document_number,
        "shippedAt": row.posting_date.isoformat() if row.posting_date else None,
    }


async def _customer_exists(deps: HistoryDeps, customer_id: str) -> None:
    key = f"customer|{customer_id}"
    cached = deps.cache.get(key)
    if cached is not None and deps.clock() - cached.read_at < deps.cache_for * _STALE_FACTOR:
        return
    try:
        await deps.erp.get_customer_by_number(customer_id, read_only=True)
    except ErpNotFound:
        raise UnknownCustomer(customer_id) from None
    deps.cache.put(key, _Cached(deps.clock(), {}))


async def history_page(deps: HistoryDeps, kind: Kind, query: HistoryQuery) -> dict[str, Any]:
    """One page of a customer's documents (see the module for order, cache and staleness)."""
    key = f"{kind}|{query.model_dump_json(by_alias=True)}"
    now = deps.clock()
    cached = deps.cache.get(key)
    if cached is not None and now - cached.read_at < deps.cache_for:
        return {**cached.answer, "stale": False}
    query_hash = _query_hash(kind, query)
    section_index, offset = (
        _decode(query.continuation, query_hash) if query.continuation else (0, 0)
    )
    today = now.date()
    sections = _sections(kind, query, today)
    try:
        await _customer_exists(deps, query.customer_id)
        read_at = deps.clock()
        items: list[dict[str, Any]] = []
        while len(items) < query.page_size and section_index < len(sections):
            wanted = query.page_size - len(items)
            rows = await _read_page(deps.erp, kind, sections[section_index], wanted, offset)
            items.extend(_item(kind, row, today) for row in rows)
            if len(rows) < wanted:
                section_index, offset = section_index + 1, 0
            else:
                offset += len(rows)
    except ErpError as error:
        if cached is not None and now - cached.read_at < deps.cache_for * _STALE_FACTOR:
            return {**cached.answer, "stale": True}
        raise HistoryUnavailable(str(error)) from error
    continuation = (
        _encode(section_index, offset, query_hash) if section_index < len(sections) else None
    )
    answer = {
        "customerId": query.customer_id,
        "items": items,
        "page": {"pageSize": query.page_size, "continuation": continuation},
        "dataAsOf": read_at.isoformat(),
        "stale": False,
    }
    deps.cache.put(key, _Cached(read_at, answer))
    return answer
