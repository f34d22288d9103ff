"""The storage layer on real Azurite, and a canary for every Azurite behaviour the design relies on.

Azurite 3.35 is the newest that runs on Node 20 and some transaction fixes landed only later;
if one of these canaries fails, the emulator (not the design) is wrong and the tests that rely
on that behaviour cannot be trusted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from shared.adapters.tables import (
    EntityChanged,
    EntityExists,
    TableOperation,
    TableStore,
    TransactionFailed,
    ValueOutOfRange,
)


async def test_create_is_an_atomic_claim(table_store: TableStore) -> None:
    await table_store.create("claims", {"PartitionKey": "k", "RowKey": "1", "owner": "a"})
    with pytest.raises(EntityExists):
        await table_store.create("claims", {"PartitionKey": "k", "RowKey": "1", "owner": "b"})
    row = await table_store.get("claims", "k", "1")
    assert row is not None and row.entity["owner"] == "a"


async def test_stale_etag_is_refused(table_store: TableStore) -> None:
    etag = await table_store.create("state", {"PartitionKey": "p", "RowKey": "r", "n": 1})
    new_etag = await table_store.update("state", {"PartitionKey": "p", "RowKey": "r", "n": 2}, etag)
    assert new_etag != etag
    with pytest.raises(EntityChanged):
        await table_store.update("state", {"PartitionKey": "p", "RowKey": "r", "n": 3}, etag)
    row = await table_store.get("state", "p", "r")
    assert row is not None and row.entity["n"] == 2 and row.etag == new_etag


async def test_transaction_is_all_or_nothing(table_store: TableStore) -> None:
    await table_store.create("tx", {"PartitionKey": "p", "RowKey": "taken"})
    operations = [
        TableOperation("create", {"PartitionKey": "p", "RowKey": "new-1"}),
        TableOperation("create", {"PartitionKey": "p", "RowKey": "taken"}),
    ]
    with pytest.raises((EntityExists, TransactionFailed)):
        await table_store.transact("tx", operations)
    assert await table_store.get("tx", "p", "new-1") is None


async def test_etag_condition_inside_a_transaction(table_store: TableStore) -> None:
    etag = await table_store.create("txe", {"PartitionKey": "p", "RowKey": "a", "n": 1})
    await table_store.update("txe", {"PartitionKey": "p", "RowKey": "a", "n": 2}, etag)
    operations = [
        TableOperation("update", {"PartitionKey": "p", "RowKey": "a", "n": 3}, etag=etag),
        TableOperation("create", {"PartitionKey": "p", "RowKey": "b"}),
    ]
    with pytest.raises((EntityChanged, TransactionFailed)):
        await table_store.transact("txe", operations)
    row = await table_store.get("txe", "p", "a")
    assert row is not None and row.entity["n"] == 2
    assert await table_store.get("txe", "p", "b") is None


async def test_keys_with_forbidden_characters_round_trip(table_store: TableStore) -> None:
    sku = "AB/12#3"
    for location in ("MAIN", "Zürich?\\2"):
        await table_store.upsert("stock", {"PartitionKey": sku, "RowKey": location, "qty": 5})
    rows = [row async for row in table_store.partition("stock", sku)]
    assert sorted(row.row_key for row in rows) == ["MAIN", "Zürich?\\2"]
    assert all(row.partition_key == sku for row in rows)
    row = await table_store.get("stock", sku, "Zürich?\\2")
    assert row is not None and row.entity["qty"] == 5


async def test_large_transaction_is_chunked_and_applied(table_store: TableStore) -> None:
    operations = [
        TableOperation("upsert", {"PartitionKey": "bulk", "RowKey": f"{i:04d}", "i": i})
        for i in range(250)
    ]
    assert await table_store.transact("bulk", operations) == 250
    rows = [row async for row in table_store.partition("bulk", "bulk")]
    assert len(rows) == 250


async def test_concurrent_increments_lose_no_update(table_store: TableStore) -> None:
    await table_store.create("counter", {"PartitionKey": "c", "RowKey": "c", "n": 0})

    async def increment() -> None:
        while True:
            row = await table_store.get("counter", "c", "c")
            assert row is not None
            entity = {**row.entity, "n": row.entity["n"] + 1}
            try:
                await table_store.update("counter", entity, row.etag)
                return
            except EntityChanged:
                await asyncio.sleep(0)

    await asyncio.gather(*(increment() for _ in range(10)))
    row = await table_store.get("counter", "c", "c")
    assert row is not None and row.entity["n"] == 10


async def test_tables_are_isolated_by_prefix(azurite_connection: str) -> None:
    first = TableStore.from_connection_string(azurite_connection, prefix="isoA")
    second = TableStore.from_connection_string(azurite_connection, prefix="isoB")
    try:
        await first.upsert("shared", {"PartitionKey": "p", "RowKey": "r"})
        assert await second.get("shared", "p", "r") is None
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2_796_279_052, 2**63 - 1, -(2**63)],
)
async def test_integers_round_trip_at_the_limits_of_int32_and_int64(
    table_store: TableStore, value: int
) -> None:
    """Every int is written as Int64 (a sequence number past 2^31 is valid by contract)."""
    entity = {"PartitionKey": "ints", "RowKey": str(value), "n": value, "flag": True}
    await table_store.upsert("Limits", entity)
    transacted = {**entity, "RowKey": f"t{value}"}
    await table_store.transact("Limits", [TableOperation("upsert", transacted)])
    for key in (str(value), f"t{value}"):
        row = await table_store.get("Limits", "ints", key)
        assert row is not None
        assert row.entity["n"] == value and type(row.entity["n"]) is int
        assert row.entity["flag"] is True


async def test_integers_beyond_int64_are_refused_before_anything_is_written(
    table_store: TableStore,
) -> None:
    for value in (2**63, -(2**63) - 1):
        with pytest.raises(ValueOutOfRange, match="Int64"):
            await table_store.upsert("Limits", {"PartitionKey": "big", "RowKey": "x", "n": value})
    assert await table_store.get("Limits", "big", "x") is None


async def test_strings_floats_and_times_round_trip_at_their_limits(table_store: TableStore) -> None:
    moment = datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    text = "é" * 32_000  # a string property holds 64 KiB of UTF-16
    entity = {"PartitionKey": "other", "RowKey": "1", "s": text, "f": 1.5e308, "t": moment}
    await table_store.upsert("Limits", entity)
    row = await table_store.get("Limits", "other", "1")
    assert row is not None
    assert (row.entity["s"], row.entity["f"], row.entity["t"]) == (text, 1.5e308, moment)
