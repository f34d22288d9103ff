"""Table ``OrderLifecycle``: each booked order's lifecycle, the orders still followed, the poll's
watermark.

- PartitionKey = order id, RowKey = ``lifecycle``: the last published state (JSON), its
  ``sequence``, ``publishedSequence`` (an outbox: a state whose event was not yet sent has
  ``publishedSequence < sequence``), ``readAt`` (when the ERP read behind it started; an older
  read is stale) and the fingerprint. Written only with the row's ETag.
- PartitionKey = ``open``, RowKey = order id: the orders whose lifecycle is not finished (the
  reconciliation's and the operations page's list), with the ERP ids a deleted order's
  notification names.
- PartitionKey = ``poll``, RowKey = ``watermark``: the delta poll's watermark per entity set.

Order ids start with ``ORD-``, so they never collide with the fixed partitions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.adapters.ports import TableStorage
from shared.adapters.tables import EntityChanged, EntityExists, EntityMissing
from shared.domain.orders.lifecycle import Lifecycle, from_record

LIFECYCLE_TABLE = "OrderLifecycle"
STATE_ROW = "lifecycle"
OPEN_PARTITION = "open"
POLL_PARTITION = "poll"
WATERMARK_ROW = "watermark"


class LifecycleConflict(RuntimeError):
    """Another writer changed the lifecycle row first; read it again and decide again."""


@dataclass(frozen=True)
class LifecycleRecord:
    order_id: str
    sequence: int
    published_sequence: int
    read_at: datetime
    occurred_at: datetime
    lifecycle: Lifecycle
    etag: str = ""

    @property
    def unpublished(self) -> bool:
        return self.published_sequence < self.sequence


@dataclass(frozen=True)
class TrackedOrder:
    order_id: str
    erp_order_id: str
    erp_order_number: str
    customer_no: str
    booked_at: datetime
    status: str
    changed_at: datetime


def _entity(record: LifecycleRecord) -> dict[str, Any]:
    return {
        "PartitionKey": record.order_id,
        "RowKey": STATE_ROW,
        "sequence": record.sequence,
        "publishedSequence": record.published_sequence,
        "readAt": record.read_at,
        "occurredAt": record.occurred_at,
        "status": str(record.lifecycle.status),
        "fingerprint": record.lifecycle.fingerprint,
        "state": json.dumps(record.lifecycle.record(), separators=(",", ":")),
    }


def _record(entity: Mapping[str, Any], etag: str) -> LifecycleRecord:
    return LifecycleRecord(
        order_id=str(entity["PartitionKey"]),
        sequence=int(entity["sequence"]),
        published_sequence=int(entity["publishedSequence"]),
        read_at=entity["readAt"],
        occurred_at=entity["occurredAt"],
        lifecycle=from_record(json.loads(str(entity["state"]))),
        etag=etag,
    )


async def load(tables: TableStorage, order_id: str) -> LifecycleRecord | None:
    row = await tables.get(LIFECYCLE_TABLE, order_id, STATE_ROW)
    return None if row is None else _record(row.entity, row.etag)


async def save(tables: TableStorage, record: LifecycleRecord) -> LifecycleRecord:
    """Create (no ETag) or replace (the ETag it was read with); ``LifecycleConflict`` if
    someone else wrote first."""
    try:
        if record.etag:
            etag = await tables.update(LIFECYCLE_TABLE, _entity(record), record.etag)
        else:
            etag = await tables.create(LIFECYCLE_TABLE, _entity(record))
    except (EntityChanged, EntityMissing, EntityExists) as error:
        raise LifecycleConflict(record.order_id) from error
    return LifecycleRecord(
        record.order_id,
        record.sequence,
        record.published_sequence,
        record.read_at,
        record.occurred_at,
        record.lifecycle,
        etag,
    )


def _tracked_entity(order: TrackedOrder) -> dict[str, Any]:
    return {
        "PartitionKey": OPEN_PARTITION,
        "RowKey": order.order_id,
        "erpOrderId": order.erp_order_id,
        "erpOrderNumber": order.erp_order_number,
        "customerNo": order.customer_no,
        "bookedAt": order.booked_at,
        "status": order.status,
        "changedAt": order.changed_at,
    }


def _tracked(entity: Mapping[str, Any]) -> TrackedOrder:
    return TrackedOrder(
        order_id=str(entity["RowKey"]),
        erp_order_id=str(entity["erpOrderId"]),
        erp_order_number=str(entity["erpOrderNumber"]),
        customer_no=str(entity.get("customerNo") or ""),
        booked_at=entity["bookedAt"],
        status=str(entity.get("status") or "booked"),
        changed_at=entity["changedAt"],
    )


async def track(tables: TableStorage, order: TrackedOrder) -> None:
    """Follow `order` (idempotent: the row says the latest status)."""
    await tables.upsert(LIFECYCLE_TABLE, _tracked_entity(order))


async def untrack(tables: TableStorage, order_id: str) -> None:
    await tables.delete(LIFECYCLE_TABLE, OPEN_PARTITION, order_id)


async def tracked(tables: TableStorage) -> list[TrackedOrder]:
    """Every order still followed, oldest booking first."""
    rows = [_tracked(row.entity) async for row in tables.partition(LIFECYCLE_TABLE, OPEN_PARTITION)]
    return sorted(rows, key=lambda order: order.booked_at)


async def tracked_by_erp_id(tables: TableStorage, erp_order_id: str) -> TrackedOrder | None:
    wanted = erp_order_id.lower()
    for order in await tracked(tables):
        if order.erp_order_id.lower() == wanted:
            return order
    return None


async def watermark(tables: TableStorage, entity_set: str) -> datetime | None:
    row = await tables.get(LIFECYCLE_TABLE, POLL_PARTITION, WATERMARK_ROW)
    if row is None:
        return None
    value = row.entity.get(entity_set)
    return value if isinstance(value, datetime) else None


async def set_watermarks(tables: TableStorage, marks: Mapping[str, datetime]) -> None:
    """Move the poll's watermarks (only the poll, under its lease, writes this row)."""
    row = await tables.get(LIFECYCLE_TABLE, POLL_PARTITION, WATERMARK_ROW)
    entity: dict[str, Any] = dict(row.entity) if row else {}
    entity.update({"PartitionKey": POLL_PARTITION, "RowKey": WATERMARK_ROW, **marks})
    await tables.upsert(LIFECYCLE_TABLE, entity)
