"""Stock positions in Table storage: one row per (sku, location), written only with its ETag.

PartitionKey = SKU, RowKey = location, so every location of an item is one partition query
(what availability answers need) and dedup markers for an item's events can share a
transaction with the position they protect. The domain's record is stored as JSON split over
as many string properties as it needs (64 KiB each), next to flat columns for queries and
the operations view. Writers never overwrite blindly: ``change_position`` reloads and
re-applies its pure change on a 412, so two handlers racing on one key lose no update.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.adapters.ports import TableStorage
from shared.adapters.table_keys import encode_key
from shared.adapters.tables import EntityChanged, EntityExists, Row, TableOperation
from shared.domain.stock import (
    StockPosition,
    available_to_sell,
    position_from_record,
    position_to_record,
)

POSITIONS_TABLE = "StockPositions"
_CHUNK_CHARS = 30_000  # a string property holds 64 KiB = 32K UTF-16 characters
_MAX_CONFLICT_RETRIES = 20
# Table storage allows at most 15 discrete comparisons in one $filter.
PARTITIONS_PER_QUERY = 15

Result = TypeVar("Result")


class PositionBusy(RuntimeError):
    """Too many concurrent writers on one position; the caller retries later."""


@dataclass(frozen=True)
class StoredPosition:
    """A position with the ETag of the row it came from (None: not stored yet)."""

    position: StockPosition
    etag: str | None


def position_entity(position: StockPosition) -> dict[str, Any]:
    """The row for a position: the JSON record in chunks plus queryable figures."""
    text = json.dumps(position_to_record(position), separators=(",", ":"))
    chunks = [text[i : i + _CHUNK_CHARS] for i in range(0, len(text), _CHUNK_CHARS)] or [""]
    entity: dict[str, Any] = {
        "PartitionKey": position.sku,
        "RowKey": position.location,
        "kind": "position",
        "recordChunks": len(chunks),
        "onHand": str(position.on_hand),
        "erpReserved": str(position.erp_reserved),
        "erpDemand": str(position.demand),
        "expected": str(position.expected),
        "pendingReserved": str(position.pending_reserved),
        "safetyStock": str(position.safety_stock),
        "available": str(available_to_sell(position)),
        "lastSequence": position.last_sequence,
        "held": len(position.held),
    }
    if position.last_event_at is not None:
        entity["lastEventAt"] = position.last_event_at
    for index, chunk in enumerate(chunks):
        entity[f"record{index}"] = chunk
    return entity


def position_from_entity(entity: Mapping[str, Any]) -> StockPosition:
    count = int(entity["recordChunks"])
    text = "".join(str(entity[f"record{index}"]) for index in range(count))
    return position_from_record(text)


async def load_position(tables: TableStorage, sku: str, location: str) -> StoredPosition:
    """The stored position, or a new empty one (etag None) when no event has touched it."""
    row = await tables.get(POSITIONS_TABLE, sku, location)
    if row is None:
        return StoredPosition(StockPosition.new(sku, location), None)
    return StoredPosition(position_from_entity(row.entity), row.etag)


async def positions_of(tables: TableStorage, sku: str) -> list[StoredPosition]:
    """Every stored location of one SKU (one partition query)."""
    return [
        StoredPosition(position_from_entity(row.entity), row.etag)
        async for row in tables.partition(POSITIONS_TABLE, sku)
        if row.entity.get("kind") == "position"
    ]


async def partitions_rows(
    tables: TableStorage, skus: Iterable[str], concurrency: int = 8
) -> dict[str, list[Row]]:
    """Every row of several items' partitions, in one query per 15 items instead of one each.

    Each item's rows are a consistent read of that partition at some moment (the service
    pages by key, and the ETags read are what the caller's conditional writes rely on); items
    with no row map to an empty list.
    """
    wanted = sorted(set(skus))
    found: dict[str, list[Row]] = {sku: [] for sku in wanted}
    groups = [
        wanted[index : index + PARTITIONS_PER_QUERY]
        for index in range(0, len(wanted), PARTITIONS_PER_QUERY)
    ]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(group: list[str]) -> None:
        parameters = {f"p{n}": encode_key(sku) for n, sku in enumerate(group)}
        text = " or ".join(f"PartitionKey eq @{name}" for name in parameters)
        async with gate:
            async for row in tables.query(POSITIONS_TABLE, text, parameters):
                found.setdefault(row.partition_key, []).append(row)

    await asyncio.gather(*(one(group) for group in groups))
    return found


async def save_position(
    tables: TableStorage,
    stored: StoredPosition,
    new_position: StockPosition,
    extra: Sequence[Mapping[str, Any]] = (),
) -> str:
    """Write ``new_position`` only if the row is unchanged since ``stored`` was read.

    ``extra`` rows (dedup markers, in the same partition) are created in the same
    transaction, so a marker exists exactly when the state it protects does. Raises
    ``EntityChanged`` / ``EntityExists`` when another writer got there first.
    """
    entity = position_entity(new_position)
    if stored.etag is None:
        first = TableOperation("create", entity)
    else:
        first = TableOperation("update", entity, etag=stored.etag)
    operations = [first, *(TableOperation("create", dict(row)) for row in extra)]
    if len(operations) == 1:
        if stored.etag is None:
            return await tables.create(POSITIONS_TABLE, entity)
        return await tables.update(POSITIONS_TABLE, entity, stored.etag)
    await tables.transact(POSITIONS_TABLE, operations)
    row = await tables.get(POSITIONS_TABLE, new_position.sku, new_position.location)
    return row.etag if row else ""


async def change_position(
    tables: TableStorage,
    sku: str,
    location: str,
    change: Callable[[StockPosition], tuple[StockPosition, Result]],
    extra_rows: Callable[[Result], Iterable[Mapping[str, Any]]] | None = None,
) -> tuple[StockPosition, Result]:
    """Apply a pure ``change`` to the stored position with optimistic concurrency.

    On a conflict the position is read again and ``change`` applied again, so the result is
    as if the writers had run one after the other. ``change`` may raise to refuse (for
    example not enough stock); nothing is written then.
    """
    for _ in range(_MAX_CONFLICT_RETRIES):
        stored = await load_position(tables, sku, location)
        new_position, result = change(stored.position)
        if new_position == stored.position and stored.etag is not None:
            return new_position, result
        rows = list(extra_rows(result)) if extra_rows else []
        try:
            await save_position(tables, stored, new_position, rows)
        except (EntityChanged, EntityExists):
            continue
        return new_position, result
    raise PositionBusy(f"stock position {sku}@{location} kept changing; try again")
