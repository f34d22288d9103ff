"""Follow each booked order in Business Central and tell the storefronts what changed.

Sources, all ending in `refresh` of one order:
- ERP webhooks on ``salesOrders``, ``salesShipments``, ``salesInvoices`` and the custom
  ``salesShipmentTracking`` (`on_notification`; a "collection" notification is read from its
  filter's time);
- a delta poll of the same sets (`poll`, timer ``order_lifecycle_poll``), the safety net for
  missed notifications;
- the reconciliation of the orders still followed (`reconcile`, same timer), which also catches
  an order deleted in the ERP whose notification was lost.

`refresh` reads the order's documents (4 ERP requests), folds them (``shared.domain.orders.
lifecycle``) and compares the fingerprint with the stored one. Why running it twice, late or
concurrently never publishes anything twice:
- an unchanged fingerprint publishes nothing;
- a read that started before the stored one (`readAt`) is stale and is dropped;
- the new state is written with the row's ETag before anything is sent; of two concurrent
  writers one gets 412, reads again and finds the state already there;
- the event carries ``sequence`` (one more than the stored one) and MessageId
  ``{orderId}:lifecycle:{sequence}``; the row keeps ``publishedSequence``, so a crash between
  the write and the send is finished by the next refresh (after a grace period, so a
  concurrent writer that is about to send is not doubled).

When the quantities the ERP still owes change (shipped, line reduced or removed, order
cancelled), the affected items' stock rows are read back from the ERP and sent to
``inventory-events`` as ERP snapshots: the projection drops the order's booked demand in the
same step the ERP's own figures take over, so availability never counts a unit twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.documents import (
    SHIPMENT_TRACKING_SET,
    OrderDocuments,
    SalesCreditMemo,
    SalesInvoice,
    SalesShipment,
    ShipmentTracking,
    read_order_documents,
)
from shared.adapters.erp.errors import ErpNotFound
from shared.adapters.erp.models import ErpModel
from shared.adapters.erp.odata import Api, eq_filter, guid_key
from shared.adapters.ports import MessageSender, TableStorage
from shared.adapters.stores import order_lifecycle as store
from shared.adapters.stores.order_lifecycle import LifecycleConflict, LifecycleRecord, TrackedOrder
from shared.domain.orders import Order, OrderStatus
from shared.domain.orders.lifecycle import (
    BookedLine,
    CreditMemoFact,
    DocumentLine,
    ErpLine,
    ErpSnapshot,
    InvoiceFact,
    Lifecycle,
    ShipmentFact,
    fold,
    is_stale,
)
from shared.services.inventory.messages import snapshot_of_row

STATUS_TOPIC = "order-status"
INVENTORY_QUEUE = "inventory-events"
LIFECYCLE_SETS = frozenset(
    {"salesOrders", "salesShipments", "salesInvoices", "salesCreditMemos", SHIPMENT_TRACKING_SET}
)
# The booking's own order-status event is sequence 1; lifecycle events follow it.
BOOKED_SEQUENCE = 1
_ORDER_ID = re.compile(r"^ORD-[0-9A-HJKMNP-TV-Z]{26}$")
_MAX_CONFLICTS = 5
_log = logging.getLogger(__name__)


OrderLoader = Callable[[str], Awaitable[Order | None]]
StockReadBack = Callable[[Sequence[str]], Awaitable[int]]


@dataclass(frozen=True)
class LifecycleDeps:
    """What following orders needs; wired in ``shared/bootstrap.py``."""

    tables: TableStorage
    bus: MessageSender
    erp: ErpClient
    load_order: OrderLoader
    stock_read_back: StockReadBack
    clock: Callable[[], datetime]
    # A state written but not yet sent is re-sent by a later refresh only after this long
    # (the writer may be about to send it itself).
    republish_after: timedelta = timedelta(seconds=30)
    # The reconciliation refreshes a followed order at most this often.
    reconcile_after: timedelta = timedelta(hours=1)


class Outcome(StrEnum):
    PUBLISHED = "published"
    UNCHANGED = "unchanged"
    STALE = "stale"
    REPUBLISHED = "republished"
    BASELINE = "baseline"
    NOT_OURS = "not-ours"
    NOT_BOOKED = "not-booked"


@dataclass(frozen=True)
class RefreshResult:
    order_id: str
    outcome: Outcome
    sequence: int = 0
    status: str = ""
    stock_items: tuple[str, ...] = ()


def is_order_id(value: str) -> bool:
    return bool(_ORDER_ID.match(value.strip().upper()))


# ---- ERP documents -> domain facts --------------------------------------------------------


def snapshot_of(documents: OrderDocuments) -> ErpSnapshot:
    """The domain's view of what Business Central holds about one order."""
    tracking = {t.shipment_number: t for t in documents.tracking}
    order = documents.order
    return ErpSnapshot(
        order_status=order.status if order else None,
        lines=tuple(
            ErpLine(
                line.line_object_number,
                line.unit_of_measure_code,
                line.quantity,
                line.shipped_quantity,
                line.invoiced_quantity,
            )
            for line in (order.sales_order_lines if order else [])
            if line.line_type == "Item" and line.line_object_number
        ),
        shipments=tuple(_shipment(s, tracking.get(s.number)) for s in documents.shipments),
        invoices=tuple(_invoice(i) for i in documents.invoices),
        credit_memos=tuple(_credit_memo(c) for c in documents.credit_memos),
    )


def _document_lines(lines: Iterable[Any]) -> tuple[DocumentLine, ...]:
    return tuple(
        DocumentLine(line.line_object_number, line.unit_of_measure_code, line.quantity)
        for line in lines
        if line.line_type == "Item" and line.line_object_number and line.quantity
    )


def _shipment(shipment: SalesShipment, tracking: ShipmentTracking | None) -> ShipmentFact:
    return ShipmentFact(
        number=shipment.number,
        shipped_on=shipment.posting_date,
        carrier=tracking.shipping_agent_code if tracking else "",
        tracking_number=tracking.package_tracking_number if tracking else "",
        lines=_document_lines(shipment.sales_shipment_lines),
    )


def _invoice(invoice: SalesInvoice) -> InvoiceFact:
    return InvoiceFact(
        number=invoice.number,
        posted_on=invoice.posting_date or invoice.invoice_date,
        amount=invoice.total_amount_including_tax,
        due_date=invoice.due_date,
        remaining_amount=invoice.remaining_amount,
        status=invoice.status,
        currency=invoice.currency_code,
        lines=_document_lines(invoice.sales_invoice_lines),
    )


def _credit_memo(memo: SalesCreditMemo) -> CreditMemoFact:
    return CreditMemoFact(
        number=memo.number,
        posted_on=memo.posting_date,
        amount=memo.total_amount_including_tax,
        invoice_number=memo.invoice_number,
        lines=_document_lines(memo.sales_credit_memo_lines),
    )


def booked_lines(order: Order) -> list[BookedLine]:
    return [BookedLine(line.sku, line.unit_of_measure, line.quantity) for line in order.lines]


def as_booked(order: Order) -> Lifecycle:
    """The lifecycle the booking's own event already told: every line open, nothing posted."""
    return fold(
        booked_lines(order),
        ErpSnapshot(
            order_status="Draft",
            lines=tuple(
                ErpLine(line.sku, line.unit_of_measure, line.quantity) for line in order.lines
            ),
            shipments=(),
            invoices=(),
        ),
    )


# ---- the event ----------------------------------------------------------------------------


def _quantity(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else format(value.normalize(), "f")


def status_event(order: Order, record: LifecycleRecord) -> dict[str, Any]:
    """The ``order-status`` body: the whole state, so the latest event alone rebuilds it."""
    life = record.lifecycle
    return {
        "orderId": order.order_id,
        "externalOrderId": order.external_order_id,
        "erpOrderNumber": order.erp_order_number,
        "channel": order.channel,
        "customerId": order.customer_no,
        "status": str(life.status),
        "erpStatus": life.erp_status,
        "lines": [
            {
                "sku": line.sku,
                "unitOfMeasure": line.unit_of_measure,
                "ordered": _quantity(line.ordered),
                "shipped": _quantity(line.shipped),
                "invoiced": _quantity(line.invoiced),
                "backordered": _quantity(line.backordered),
                "backorderedAtIntake": _quantity(
                    order.backordered_of(line.sku, line.unit_of_measure)
                ),
                "cancelled": _quantity(line.cancelled),
                "credited": _quantity(line.credited),
            }
            for line in life.lines
        ],
        "shipments": [
            {
                "number": s.number,
                "shippedAt": s.shipped_on.isoformat() if s.shipped_on else None,
                "carrier": s.carrier or None,
                "trackingNumber": s.tracking_number or None,
                "lines": [
                    {
                        "sku": line.sku,
                        "unitOfMeasure": line.unit_of_measure,
                        "quantity": _quantity(line.quantity),
                    }
                    for line in s.lines
                ],
            }
            for s in life.shipments
        ],
        "invoices": [
            {
                "number": i.number,
                "postedAt": i.posted_on.isoformat() if i.posted_on else None,
                "amount": format(i.amount, "f"),
                "currency": i.currency or order.currency,
                "dueDate": i.due_date.isoformat() if i.due_date else None,
                "remainingAmount": format(i.remaining_amount, "f"),
                "status": i.status,
            }
            for i in life.invoices
        ],
        "creditMemos": [
            {
                "number": c.number,
                "postedAt": c.posted_on.isoformat() if c.posted_on else None,
                "amount": format(c.amount, "f"),
                "invoiceNumber": c.invoice_number,
            }
            for c in life.credit_memos
        ],
        "sequence": record.sequence,
        "occurredAt": record.occurred_at.isoformat(),
    }


async def _publish(deps: LifecycleDeps, order: Order, record: LifecycleRecord) -> None:
    await deps.bus.send_json(
        STATUS_TOPIC,
        status_event(order, record),
        message_id=f"{order.order_id}:lifecycle:{record.sequence}",
        correlation_id=order.correlation_id,
        subject=str(record.lifecycle.status),
        properties={
            "channel": order.channel,
            "status": str(record.lifecycle.status),
            "sequence": record.sequence,
        },
        session_id=order.order_id,
    )
    for _ in range(_MAX_CONFLICTS):
        current = await store.load(deps.tables, order.order_id)
        if current is None or current.published_sequence >= record.sequence:
            return
        try:
            await store.save(
                deps.tables,
                LifecycleRecord(
                    current.order_id,
                    current.sequence,
                    max(current.published_sequence, record.sequence),
                    current.read_at,
                    current.occurred_at,
                    current.lifecycle,
                    current.etag,
                ),
            )
            return
        except LifecycleConflict:
            continue


# ---- refresh ------------------------------------------------------------------------------


def tracked_order(order: Order, status: str, at: datetime) -> TrackedOrder:
    assert order.erp_order_id is not None and order.erp_order_number is not None
    return TrackedOrder(
        order_id=order.order_id,
        erp_order_id=order.erp_order_id,
        erp_order_number=order.erp_order_number,
        customer_no=order.customer_no,
        booked_at=order.booked_at or order.updated_at,
        status=status,
        changed_at=at,
    )


async def track_booked(tables: TableStorage, order: Order, at: datetime) -> None:
    """Start following a booked order (safe to repeat)."""
    if order.erp_order_id and order.erp_order_number:
        await store.track(tables, tracked_order(order, "booked", at))


async def refresh(
    deps: LifecycleDeps, order_id: str, *, correlation_id: str | None = None
) -> RefreshResult:
    """Read one order's documents from the ERP and publish what changed (see the module)."""
    order = await deps.load_order(order_id)
    if order is None:
        return RefreshResult(order_id, Outcome.NOT_OURS)
    if order.status is not OrderStatus.BOOKED or not order.erp_order_id:
        return RefreshResult(order_id, Outcome.NOT_BOOKED, status=str(order.status))
    assert order.erp_order_number is not None
    read_at = deps.clock()
    documents = await read_order_documents(
        deps.erp,
        UUID(order.erp_order_id),
        order.erp_order_number,
        correlation_id=correlation_id or order.correlation_id,
    )
    lifecycle = fold(booked_lines(order), snapshot_of(documents))
    for _ in range(_MAX_CONFLICTS):
        recorded = await store.load(deps.tables, order_id)
        result = await _apply(deps, order, recorded, lifecycle, read_at)
        if result is not None:
            return result
    raise LifecycleConflict(order_id)


async def _apply(
    deps: LifecycleDeps,
    order: Order,
    recorded: LifecycleRecord | None,
    lifecycle: Lifecycle,
    read_at: datetime,
) -> RefreshResult | None:
    """Decide against the stored row; None when the row changed under us (decide again)."""
    now = deps.clock()
    if recorded is not None and (
        is_stale(read_at, recorded.read_at)
        or recorded.lifecycle.fingerprint == lifecycle.fingerprint
    ):
        outcome = Outcome.STALE if is_stale(read_at, recorded.read_at) else Outcome.UNCHANGED
        if recorded.unpublished and now - recorded.occurred_at >= deps.republish_after:
            await _publish(deps, order, recorded)
            outcome = Outcome.REPUBLISHED
        await _follow(deps, order, recorded.lifecycle, now)
        return RefreshResult(
            order.order_id, outcome, recorded.sequence, str(recorded.lifecycle.status)
        )
    previous = recorded.lifecycle if recorded is not None else as_booked(order)
    baseline = recorded is None and previous.fingerprint == lifecycle.fingerprint
    sequence = BOOKED_SEQUENCE if baseline else (recorded.sequence if recorded else 1) + 1
    record = LifecycleRecord(
        order_id=order.order_id,
        sequence=sequence,
        published_sequence=(
            sequence if baseline else (recorded.published_sequence if recorded else 1)
        ),
        read_at=read_at,
        occurred_at=now,
        lifecycle=lifecycle,
        etag=recorded.etag if recorded is not None else "",
    )
    try:
        saved = await store.save(deps.tables, record)
    except LifecycleConflict:
        return None
    await _follow(deps, order, lifecycle, now)
    if baseline:
        return RefreshResult(order.order_id, Outcome.BASELINE, sequence, str(lifecycle.status))
    items = _items_owed_differently(previous, lifecycle)
    if items:
        # The ERP took the units over (shipped, reduced, cancelled): its stock rows now say
        # so; reading them back drops the order's booked demand from the projection.
        await deps.stock_read_back(items)
    await _publish(deps, order, saved)
    _log.info("order %s: %s (sequence %s)", order.order_id, lifecycle.status, saved.sequence)
    return RefreshResult(
        order.order_id, Outcome.PUBLISHED, saved.sequence, str(lifecycle.status), tuple(items)
    )


async def _follow(deps: LifecycleDeps, order: Order, lifecycle: Lifecycle, now: datetime) -> None:
    if lifecycle.status.finished:
        await store.untrack(deps.tables, order.order_id)
    else:
        await store.track(deps.tables, tracked_order(order, str(lifecycle.status), now))


def _items_owed_differently(before: Lifecycle, after: Lifecycle) -> list[str]:
    owed_before, owed_after = before.outstanding(), after.outstanding()
    return sorted(
        sku
        for sku in set(owed_before) | set(owed_after)
        if owed_before.get(sku, Decimal(0)) != owed_after.get(sku, Decimal(0))
    )


# ---- notifications, poll, reconciliation --------------------------------------------------


class _ExternalRef(ErpModel):
    external_document_number: str = ""
    order_number: str = ""
    number: str = ""
    invoice_number: str = ""


# Only the fields that name an order: a delta read of a busy tenant stays small.
_REF_FIELDS = {
    "salesOrders": "number,externalDocumentNumber",
    "salesShipments": "number,externalDocumentNumber,orderNumber",
    "salesInvoices": "number,externalDocumentNumber,orderNumber",
    "salesCreditMemos": "number,externalDocumentNumber,invoiceNumber",
    SHIPMENT_TRACKING_SET: "shipmentNumber,orderNumber",
}


async def _changed_since(erp: ErpClient, entity_set: str, since: datetime) -> list[_ExternalRef]:
    """The rows of `entity_set` changed after `since` (minus the client's overlap)."""
    api = Api.CUSTOM if entity_set == SHIPMENT_TRACKING_SET else Api.STANDARD
    rows: list[_ExternalRef] = []
    async for page in erp.iter_pages(
        entity_set,
        _ExternalRef,
        api=api,
        modified_since=since,
        extra_params={"$select": _REF_FIELDS[entity_set]},
    ):
        rows.extend(page)
    return rows


@dataclass
class NotificationResult:
    entity_set: str
    refreshed: list[RefreshResult] = field(default_factory=list)
    note: str = ""


async def _order_ids_for(
    deps: LifecycleDeps, rows: Iterable[_ExternalRef], by_number: bool
) -> list[str]:
    """Our order ids named by ERP rows: the external document number (the order's, copied
    onto its shipments and invoices), else the ERP order number of a followed order."""
    found: list[str] = []
    numbers: set[str] = set()
    for row in rows:
        if is_order_id(row.external_document_number):
            found.append(row.external_document_number.upper())
        elif row.invoice_number:
            # A credit memo without our number: the invoice it applies to carries it.
            invoice = await deps.erp.find_first(
                "salesInvoices", _ExternalRef, eq_filter("number", row.invoice_number)
            )
            if invoice is not None and is_order_id(invoice.external_document_number):
                found.append(invoice.external_document_number.upper())
        elif by_number and (row.order_number or row.number):
            numbers.add(row.order_number or row.number)
    if numbers:
        for tracked in await store.tracked(deps.tables):
            if tracked.erp_order_number in numbers:
                found.append(tracked.order_id)
    return list(dict.fromkeys(found))


async def on_notification(
    deps: LifecycleDeps,
    entity_set: str,
    key: str | None,
    change_type: str,
    modified_after: datetime | None,
) -> NotificationResult:
    """Refresh the orders a Business Central notification is about (safe to repeat)."""
    result = NotificationResult(entity_set)
    api = Api.CUSTOM if entity_set == SHIPMENT_TRACKING_SET else Api.STANDARD
    rows: list[_ExternalRef] = []
    if change_type == "collection" or key is None:
        since = modified_after or deps.clock() - timedelta(minutes=5)
        rows = await _changed_since(deps.erp, entity_set, since)
        result.note = f"delta read of {len(rows)} rows"
    elif change_type == "deleted":
        if entity_set != "salesOrders":
            result.note = "a deleted posted document is left to the reconciliation"
            return result
        tracked = await store.tracked_by_erp_id(deps.tables, key)
        if tracked is None:
            result.note = "deleted order is not one this product follows"
            return result
        result.refreshed.append(await refresh(deps, tracked.order_id))
        return result
    else:
        try:
            rows.append(await deps.erp.get_entity(entity_set, _key(key), _ExternalRef, api=api))
        except ErpNotFound:
            result.note = "the record no longer exists; left to the reconciliation"
            return result
    # Only the tracking page lacks the external document number; elsewhere a row without
    # ours is another channel's document (EDI, phone) and needs no lookup.
    by_number = entity_set == SHIPMENT_TRACKING_SET
    for order_id in await _order_ids_for(deps, rows, by_number=by_number):
        result.refreshed.append(await refresh(deps, order_id))
    return result


def _key(key: str) -> str:
    try:
        return guid_key(UUID(key))
    except ValueError:
        return f"('{key}')"


@dataclass
class PollReport:
    read: int = 0
    refreshed: list[RefreshResult] = field(default_factory=list)
    reconciled: int = 0
    watermarks: dict[str, datetime] = field(default_factory=dict)


async def poll(deps: LifecycleDeps, *, reconcile_limit: int = 100) -> PollReport:
    """The safety net: what changed in the lifecycle sets since the watermarks, then the
    followed orders not refreshed for ``reconcile_after`` (oldest first, at most
    ``reconcile_limit``)."""
    report = PollReport()
    started = deps.clock()
    order_ids: list[str] = []
    for entity_set in sorted(LIFECYCLE_SETS):
        since = await store.watermark(deps.tables, entity_set)
        rows = await _changed_since(deps.erp, entity_set, since or started - timedelta(days=1))
        report.read += len(rows)
        by_number = entity_set == SHIPMENT_TRACKING_SET
        order_ids.extend(await _order_ids_for(deps, rows, by_number=by_number))
        report.watermarks[entity_set] = started
    for order_id in dict.fromkeys(order_ids):
        report.refreshed.append(await refresh(deps, order_id))
    done = {r.order_id for r in report.refreshed}
    due = [
        tracked
        for tracked in await store.tracked(deps.tables)
        if tracked.order_id not in done and started - tracked.changed_at >= deps.reconcile_after
    ]
    for tracked in due[:reconcile_limit]:
        report.refreshed.append(await refresh(deps, tracked.order_id))
        report.reconciled += 1
    await store.set_watermarks(deps.tables, report.watermarks)
    return report


def erp_stock_read_back(
    erp: ErpClient, bus: MessageSender, clock: Callable[[], datetime]
) -> StockReadBack:
    """Read the items' stock rows from the ERP and send them as ERP snapshots (the one path
    every stock change takes); the snapshot time is when the read was sent."""

    async def read_back(skus: Sequence[str]) -> int:
        as_of = clock()
        rows = await erp.get_item_availability(skus, read_only=False)
        for row in rows:
            snapshot = snapshot_of_row(row, as_of, "notification")
            await bus.send_json(
                INVENTORY_QUEUE,
                snapshot.to_message(),
                message_id=snapshot.event_id,
                subject="erp-snapshot",
            )
        return len(rows)

    return read_back
