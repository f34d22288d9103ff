from __future__ import annotations

import pytest

from shared.adapters.tables import (
    MAX_BATCH_BYTES,
    MAX_BATCH_OPERATIONS,
    TableOperation,
    chunk_operations,
)


def _ops(count: int, partition: str = "p", payload: str = "") -> list[TableOperation]:
    return [
        TableOperation("upsert", {"PartitionKey": partition, "RowKey": f"r{i}", "v": payload})
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(0, []), (1, [1]), (100, [100]), (101, [100, 1]), (250, [100, 100, 50])],
)
def test_one_partition_is_chunked_at_100(count: int, sizes: list[int]) -> None:
    chunks = chunk_operations(_ops(count))
    assert [len(c) for c in chunks] == sizes
    flattened = [op.entity["RowKey"] for chunk in chunks for op in chunk]
    assert flattened == [f"r{i}" for i in range(count)]


def test_mixed_partitions_never_share_a_transaction() -> None:
    ops = _ops(150, "a") + _ops(30, "b") + _ops(1, "a/with#chars")
    chunks = chunk_operations(ops)
    for chunk in chunks:
        assert len({op.partition_key for op in chunk}) == 1
        assert len(chunk) <= MAX_BATCH_OPERATIONS
    assert sum(len(c) for c in chunks) == 181
    assert sorted(len(c) for c in chunks) == [1, 30, 50, 100]


def test_chunks_stay_under_four_mebibytes() -> None:
    big = "x" * (600 * 1024)  # 600 KiB per entity: at most 6 fit in 4 MiB
    chunks = chunk_operations(_ops(20, payload=big))
    assert all(sum(op.estimated_bytes() for op in chunk) <= MAX_BATCH_BYTES for chunk in chunks)
    assert [len(c) for c in chunks] == [6, 6, 6, 2]


def test_an_operation_bigger_than_a_transaction_is_refused() -> None:
    with pytest.raises(ValueError, match="larger than a transaction"):
        chunk_operations(_ops(1, payload="x" * MAX_BATCH_BYTES))
