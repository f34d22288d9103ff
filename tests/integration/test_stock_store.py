"""Stock positions in Azurite: round trip, chunked records, no lost update under races."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.adapters.stores import stock as stock_store
from shared.adapters.tables import TableStore
from shared.domain.stock import (
    HeldEvent,
    InsufficientStock,
    InventoryEvent,
    StockPosition,
    reserve,
)

SKU = "AB/12#3"


def _stocked(quantity: int) -> StockPosition:
    return replace(StockPosition.new(SKU, "MAIN"), on_hand=Decimal(quantity))


async def test_a_position_round_trips_with_awkward_keys(table_store: TableStore) -> None:
    stored = await stock_store.load_position(table_store, SKU, "MAIN")
    assert stored.etag is None and stored.position.on_hand == 0
    await stock_store.save_position(table_store, stored, _stocked(7))
    again = await stock_store.load_position(table_store, SKU, "MAIN")
    assert again.position == _stocked(7) and again.etag
    assert [p.position.location for p in await stock_store.positions_of(table_store, SKU)] == [
        "MAIN"
    ]


async def test_a_large_record_is_split_over_several_properties(table_store: TableStore) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    held = tuple(
        HeldEvent(
            InventoryEvent.model_validate(
                {
                    "eventId": f"evt-{n:05d}-" + "x" * 40,
                    "sku": SKU,
                    "location": "MAIN",
                    "kind": "adjusted",
                    "quantity": "1",
                    "sequence": n,
                    "occurredAt": now.isoformat(),
                    "source": "wms",
                }
            ),
            now,
        )
        for n in range(10, 410)
    )
    big = replace(_stocked(1), held=held, last_sequence=5)
    entity = stock_store.position_entity(big)
    assert entity["recordChunks"] > 1
    await stock_store.save_position(
        table_store, await stock_store.load_position(table_store, SKU, "MAIN"), big
    )
    assert (await stock_store.load_position(table_store, SKU, "MAIN")).position == big


async def test_racing_reservations_never_oversell(table_store: TableStore) -> None:
    await stock_store.save_position(
        table_store, await stock_store.load_position(table_store, SKU, "MAIN"), _stocked(5)
    )

    async def order(n: int) -> bool:
        try:
            await stock_store.change_position(
                table_store,
                SKU,
                "MAIN",
                lambda p: (reserve(p, Decimal(1), f"order-{n}").position, None),
            )
        except InsufficientStock:
            return False
        return True

    results = await asyncio.gather(*(order(n) for n in range(12)))
    assert sum(results) == 5
    final = (await stock_store.load_position(table_store, SKU, "MAIN")).position
    assert final.pending_reserved == 5 and len(final.reservations) == 5


async def test_a_refused_change_writes_nothing(table_store: TableStore) -> None:
    await stock_store.save_position(
        table_store,
        await stock_store.load_position(table_store, SKU, "EAST"),
        replace(StockPosition.new(SKU, "EAST"), on_hand=Decimal(1)),
    )
    before = await stock_store.load_position(table_store, SKU, "EAST")
    with pytest.raises(InsufficientStock):
        await stock_store.change_position(
            table_store, SKU, "EAST", lambda p: (reserve(p, Decimal(2), "big").position, None)
        )
    after = await stock_store.load_position(table_store, SKU, "EAST")
    assert after.etag == before.etag
