"""The table store contract, run against Azurite and the in-memory store alike.

Every test taking ``any_table_store`` runs twice (``[memory]``, ``[azurite]``): Azurite is the
judge of what Table storage does, and the in-memory store of tests/support/ must agree with
it, so service tests may use it and run in milliseconds. The tests are also a canary for every
Azurite behaviour the design relies on: Azurite 3.35 is the newest that runs on Node 20 and
some transaction fixes landed only later; if a canary fails on ``[azurite]`` only, the emulator
(not the design) is wrong and the tests that rely on that behaviour cannot be trusted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from azure.data.tables import UpdateMode

from shared.adapters.ports import TableStorage
from shared.adapters.tables import (
    EntityChanged,
    EntityExists,
    EntityMissing,
    TableOperation,
    TableStore,
    TransactionFailed,
    ValueOutOfRange,
)


async def test_create_is_an_atomic_claim(any_table_store: TableStorage) -> None:
    await any_table_store.create("claims", {"PartitionKey": "k", "RowKey": "1", "owner": "a"})
    with pytest.raises(EntityExists):
        await any_table_store.create("claims", {"PartitionKey": "k", "RowKey": "1", "owner": "b"})
    row = await any_table_store.get("claims", "k", "1")
    assert row is not None and row.entity["owner"] == "a"


async def test_stale_etag_is_refused(any_table_store: TableStorage) -> None:
    etag = await any_table_store.create("state", {"PartitionKey": "p", "RowKey": "r", "n": 1})
    new_etag = await any_table_store.update(
        "state", {"PartitionKey": "p", "RowKey": "r", "n": 2}, etag
    )
    assert new_etag != etag
    with pytest.raises(EntityChanged):
        await any_table_store.update("state", {"PartitionKey": "p", "RowKey": "r", "n": 3}, etag)
    row = await any_table_store.get("state", "p", "r")
    assert row is not None and row.entity["n"] == 2 and row.etag == new_etag


async def test_transaction_is_all_or_nothing(any_table_store: TableStorage) -> None:
    await any_table_store.create("tx", {"PartitionKey": "p", "RowKey": "taken"})
    operations = [
        TableOperation("create", {"PartitionKey": "p", "RowKey": "new-1"}),
        TableOperation("create", {"PartitionKey": "p", "RowKey": "taken"}),
    ]
    with pytest.raises((EntityExists, TransactionFailed)):
        await any_table_store.transact("tx", operations)
    assert await any_table_store.get("tx", "p", "new-1") is None


async def test_etag_condition_inside_a_transaction(any_table_store: TableStorage) -> None:
    etag = await any_table_store.create("txe", {"PartitionKey": "p", "RowKey": "a", "n": 1})
    await any_table_store.update("txe", {"PartitionKey": "p", "RowKey": "a", "n": 2}, etag)
    operations = [
        TableOperation("update", {"PartitionKey": "p", "RowKey": "a", "n": 3}, etag=etag),
        TableOperation("create", {"PartitionKey": "p", "RowKey": "b"}),
    ]
    with pytest.raises((EntityChanged, TransactionFailed)):
        await any_table_store.transact("txe", operations)
    row = await any_table_store.get("txe", "p", "a")
    assert row is not None and row.entity["n"] == 2
    assert await any_table_store.get("txe", "p", "b") is None


async def test_keys_with_forbidden_characters_round_trip(any_table_store: TableStorage) -> None:
    sku = "AB/12#3"
    for location in ("MAIN", "Zürich?\\2"):
        await any_table_store.upsert("stock", {"PartitionKey": sku, "RowKey": location, "qty": 5})
    rows = [row async for row in any_table_store.partition("stock", sku)]
    assert sorted(row.row_key for row in rows) == ["MAIN", "Zürich?\\2"]
    assert all(row.partition_key == sku for row in rows)
    row = await any_table_store.get("stock", sku, "Zürich?\\2")
    assert row is not None and row.entity["qty"] == 5


async def test_large_transaction_is_chunked_and_applied(any_table_store: TableStorage) -> None:
    operations = [
        TableOperation("upsert", {"PartitionKey": "bulk", "RowKey": f"{i:04d}", "i": i})
        for i in range(250)
    ]
    assert await any_table_store.transact("bulk", operations) == 250
    rows = [row async for row in any_table_store.partition("bulk", "bulk")]
    assert len(rows) == 250


async def test_concurrent_increments_lose_no_update(any_table_store: TableStorage) -> None:
    await any_table_store.create("counter", {"PartitionKey": "c", "RowKey": "c", "n": 0})

    async def increment() -> None:
        while True:
            row = await any_table_store.get("counter", "c", "c")
            assert row is not None
            entity = {**row.entity, "n": row.entity["n"] + 1}
            try:
                await any_table_store.update("counter", entity, row.etag)
                return
            except EntityChanged:
                await asyncio.sleep(0)

    await asyncio.gather(*(increment() for _ in range(10)))
    row = await any_table_store.get("counter", "c", "c")
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
    any_table_store: TableStorage, value: int
) -> None:
    """Every int is written as Int64 (a sequence number past 2^31 is valid by contract)."""
    entity = {"PartitionKey": "ints", "RowKey": str(value), "n": value, "flag": True}
    await any_table_store.upsert("Limits", entity)
    transacted = {**entity, "RowKey": f"t{value}"}
    await any_table_store.transact("Limits", [TableOperation("upsert", transacted)])
    for key in (str(value), f"t{value}"):
        row = await any_table_store.get("Limits", "ints", key)
        assert row is not None
        assert row.entity["n"] == value and type(row.entity["n"]) is int
        assert row.entity["flag"] is True


async def test_integers_beyond_int64_are_refused_before_anything_is_written(
    any_table_store: TableStorage,
) -> None:
    for value in (2**63, -(2**63) - 1):
        with pytest.raises(ValueOutOfRange, match="Int64"):
            await any_table_store.upsert(
                "Limits", {"PartitionKey": "big", "RowKey": "x", "n": value}
            )
    assert await any_table_store.get("Limits", "big", "x") is None


async def test_strings_floats_and_times_round_trip_at_their_limits(
    any_table_store: TableStorage,
) -> None:
    moment = datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    text = "é" * 32_000  # a string property holds 64 KiB of UTF-16
    entity = {"PartitionKey": "other", "RowKey": "1", "s": text, "f": 1.5e308, "t": moment}
    await any_table_store.upsert("Limits", entity)
    row = await any_table_store.get("Limits", "other", "1")
    assert row is not None
    assert (row.entity["s"], row.entity["f"], row.entity["t"]) == (text, 1.5e308, moment)


async def test_update_of_a_missing_row_is_refused(any_table_store: TableStorage) -> None:
    etag = await any_table_store.create("gone", {"PartitionKey": "p", "RowKey": "r"})
    await any_table_store.delete("gone", "p", "r")
    with pytest.raises(EntityMissing):
        await any_table_store.update("gone", {"PartitionKey": "p", "RowKey": "r"}, etag)


async def test_conditional_delete_refuses_a_stale_etag(any_table_store: TableStorage) -> None:
    etag = await any_table_store.create("del", {"PartitionKey": "p", "RowKey": "r", "n": 1})
    await any_table_store.update("del", {"PartitionKey": "p", "RowKey": "r", "n": 2}, etag)
    with pytest.raises(EntityChanged):
        await any_table_store.delete("del", "p", "r", etag)
    assert await any_table_store.get("del", "p", "r") is not None
    await any_table_store.delete("del", "p", "r")
    await any_table_store.delete("del", "p", "r")  # a missing row is not an error
    assert await any_table_store.get("del", "p", "r") is None


async def test_merge_keeps_other_properties_and_replace_drops_them(
    any_table_store: TableStorage,
) -> None:
    await any_table_store.upsert("modes", {"PartitionKey": "p", "RowKey": "r", "a": 1, "b": 2})
    await any_table_store.upsert(
        "modes", {"PartitionKey": "p", "RowKey": "r", "a": 3}, UpdateMode.MERGE
    )
    row = await any_table_store.get("modes", "p", "r")
    assert row is not None and (row.entity["a"], row.entity["b"]) == (3, 2)
    await any_table_store.update("modes", {"PartitionKey": "p", "RowKey": "r", "a": 4}, row.etag)
    row = await any_table_store.get("modes", "p", "r")
    assert row is not None and row.entity["a"] == 4 and "b" not in row.entity


async def test_every_write_gives_a_new_etag_and_get_returns_it(
    any_table_store: TableStorage,
) -> None:
    etags = [
        await any_table_store.upsert("tags", {"PartitionKey": "p", "RowKey": "r", "n": n})
        for n in range(3)
    ]
    assert len(set(etags)) == 3
    row = await any_table_store.get("tags", "p", "r")
    assert row is not None and row.etag == etags[-1]


async def test_a_transaction_naming_a_row_twice_is_refused_whole(
    any_table_store: TableStorage,
) -> None:
    operations = [
        TableOperation("upsert", {"PartitionKey": "p", "RowKey": "a", "n": 1}),
        TableOperation("upsert", {"PartitionKey": "p", "RowKey": "a", "n": 2}),
    ]
    with pytest.raises(TransactionFailed):
        await any_table_store.transact("twice", operations)
    assert await any_table_store.get("twice", "p", "a") is None


async def test_a_transaction_updating_a_missing_row_is_refused_whole(
    any_table_store: TableStorage,
) -> None:
    operations = [
        TableOperation("create", {"PartitionKey": "p", "RowKey": "new"}),
        TableOperation("update", {"PartitionKey": "p", "RowKey": "missing"}, etag="*"),
    ]
    with pytest.raises(TransactionFailed):
        await any_table_store.transact("txm", operations)
    assert await any_table_store.get("txm", "p", "new") is None


async def test_queries_compare_keys_and_properties_and_keep_key_order(
    any_table_store: TableStorage,
) -> None:
    early = datetime(2026, 1, 1, tzinfo=UTC)
    late = datetime(2026, 6, 1, tzinfo=UTC)
    for pk, rk, at in [("b", "2", late), ("a", "9", early), ("b", "1", early), ("c", "1", late)]:
        await any_table_store.upsert("q", {"PartitionKey": pk, "RowKey": rk, "at": at})
    in_range = any_table_store.query(
        "q", "PartitionKey ge @low and PartitionKey lt @high", {"low": "a", "high": "c"}
    )
    assert [(r.partition_key, r.row_key) async for r in in_range] == [
        ("a", "9"),
        ("b", "1"),
        ("b", "2"),
    ]
    before = any_table_store.query("q", "at lt @t", {"t": datetime(2026, 3, 1, tzinfo=UTC)})
    assert [(r.partition_key, r.row_key) async for r in before] == [("a", "9"), ("b", "1")]
    after = any_table_store.query(
        "q", "PartitionKey eq @pk and RowKey gt @after", {"pk": "b", "after": "1"}
    )
    assert [r.row_key async for r in after] == ["2"]
    everything = [(r.partition_key, r.row_key) async for r in any_table_store.all_rows("q")]
    assert everything == [("a", "9"), ("b", "1"), ("b", "2"), ("c", "1")]
