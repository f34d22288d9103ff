"""Orders in Table storage: read, create, and change only through the row's ETag.

``change_order`` applies a pure transition of the order domain, and on a 412 reads the row
again and applies it again, so two writers (a booking attempt and a replay, two copies of
one message, the sweeper and a retried intake) can never both move one order.

The outbox (table ``OrderOutbox``) lists orders whose intake has not yet handed a message
to Service Bus. An entry is written before the order and removed after the send, so a
crash anywhere in between leaves an entry for the sweeper; entries are hints, the order row
is the truth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.ports import TableStorage
from shared.adapters.stores.order_rows import (
    ORDER_ROW,
    ORDERS_TABLE,
    order_entity,
    order_from_entity,
)
from shared.adapters.tables import EntityChanged, EntityMissing
from shared.domain.orders import Order

OUTBOX_TABLE = "OrderOutbox"
OUTBOX_PARTITION = "due"
_MAX_CONFLICT_RETRIES = 20


class OrderBusy(RuntimeError):
    """Too many concurrent writers on one order; the caller retries later."""


@dataclass(frozen=True)
class StoredOrder:
    order: Order
    etag: str


async def load_order(tables: TableStorage, order_id: str) -> StoredOrder | None:
    row = await tables.get(ORDERS_TABLE, order_id, ORDER_ROW)
    if row is None:
        return None
    return StoredOrder(order_from_entity(row.entity), row.etag)


async def create_order(tables: TableStorage, order: Order) -> StoredOrder:
    """Insert a new order row (``EntityExists`` if the id is taken)."""
    etag = await tables.create(ORDERS_TABLE, order_entity(order))
    return StoredOrder(order, etag)


async def save_order(tables: TableStorage, stored: StoredOrder, order: Order) -> StoredOrder:
    """Write `order` only if the row is unchanged since `stored` was read."""
    etag = await tables.update(ORDERS_TABLE, order_entity(order), stored.etag)
    return StoredOrder(order, etag)


async def change_order(
    tables: TableStorage, order_id: str, change: Callable[[Order], Order]
) -> StoredOrder | None:
    """Apply a pure transition with optimistic concurrency; None if the order does not exist.

    `change` may raise (``InvalidTransition``) to refuse; nothing is written then.
    """
    for _ in range(_MAX_CONFLICT_RETRIES):
        stored = await load_order(tables, order_id)
        if stored is None:
            return None
        updated = change(stored.order)
        if updated == stored.order:
            return stored
        try:
            return await save_order(tables, stored, updated)
        except (EntityChanged, EntityMissing):
            continue
    raise OrderBusy(f"order {order_id} kept changing; try again")


async def add_to_outbox(tables: TableStorage, order_id: str, now: datetime) -> None:
    await tables.upsert(
        OUTBOX_TABLE, {"PartitionKey": OUTBOX_PARTITION, "RowKey": order_id, "addedAt": now}
    )


async def remove_from_outbox(tables: TableStorage, order_id: str) -> None:
    with contextlib.suppress(EntityChanged):
        await tables.delete(OUTBOX_TABLE, OUTBOX_PARTITION, order_id)


async def outbox_entries(tables: TableStorage, added_before: datetime) -> list[str]:
    """Order ids whose entry is older than `added_before` (younger ones may be in flight)."""
    return [
        row.row_key
        async for row in tables.partition(OUTBOX_TABLE, OUTBOX_PARTITION)
        if row.entity["addedAt"] < added_before
    ]
