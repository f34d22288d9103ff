"""An in-memory table store with Table storage's rules, for service tests that need no Azurite.

It keeps what the services rely on, and the contract suite
(tests/integration/test_table_store_contract.py) runs the same tests against it and Azurite:
a new ETag on every write, ``If-Match`` on update and conditional delete, ``create`` as an
atomic claim, rows sorted by (PartitionKey, RowKey) as encoded, Int64 limits, and transactions
that are all-or-nothing per chunk (one partition, at most 100 operations, no row twice).
Queries understand the small OData subset the product uses: ``name op @param`` comparisons
(eq ne lt le gt ge) joined by ``and``.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import UpdateMode

from shared.adapters.table_keys import decode_key, encode_key
from shared.adapters.tables import (
    INT64_MAX,
    INT64_MIN,
    MAX_BATCH_OPERATIONS,
    EntityChanged,
    EntityExists,
    EntityMissing,
    Row,
    TableOperation,
    TransactionFailed,
    ValueOutOfRange,
    chunk_operations,
)

Key = tuple[str, str]
_COMPARISON = re.compile(r"^\s*(\w+)\s+(eq|ne|lt|le|gt|ge)\s+@(\w+)\s*$")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def _stored_value(name: str, value: Any) -> Any:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and not INT64_MIN <= value <= INT64_MAX:
        raise ValueOutOfRange(f"property {name!r}: {value} does not fit Table storage's Int64")
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # the service reads a naive time as UTC
    return copy.deepcopy(value)


def _stored(entity: Mapping[str, Any]) -> dict[str, Any]:
    data = {name: _stored_value(name, value) for name, value in entity.items()}
    data["PartitionKey"] = encode_key(str(entity["PartitionKey"]))
    data["RowKey"] = encode_key(str(entity["RowKey"]))
    return data


def _row(data: Mapping[str, Any], etag: str, select: Sequence[str] | None = None) -> Row:
    chosen = {k: copy.deepcopy(v) for k, v in data.items() if select is None or k in select}
    for key in ("PartitionKey", "RowKey"):
        if key in chosen:
            chosen[key] = decode_key(chosen[key])
    return Row(entity=chosen, etag=etag)


def _matcher(
    filter_text: str, parameters: Mapping[str, Any]
) -> Callable[[Mapping[str, Any]], bool]:
    """Comparisons joined by ``and``, and groups of those joined by ``or`` (no parentheses)."""
    alternatives = [
        _all_of(group, parameters) for group in re.split(r"\s+or\s+", filter_text.strip())
    ]

    def matches(data: Mapping[str, Any]) -> bool:
        return any(alternative(data) for alternative in alternatives)

    return matches


def _all_of(filter_text: str, parameters: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    tests: list[tuple[str, Callable[[Any, Any], bool], Any]] = []
    for clause in re.split(r"\s+and\s+", filter_text.strip()):
        match = _COMPARISON.match(clause)
        if match is None:
            raise NotImplementedError(f"filter outside the supported subset: {clause!r}")
        name, operator, parameter = match.groups()
        tests.append((name, _OPERATORS[operator], parameters[parameter]))

    def matches(data: Mapping[str, Any]) -> bool:
        for name, compare, expected in tests:
            if name not in data:
                return False
            try:
                if not compare(data[name], expected):
                    return False
            except TypeError:  # types that do not compare never match, as in the service
                return False
        return True

    return matches


class InMemoryTableStore:
    """``TableStorage`` in a dict: one per test, nothing shared between instances."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[Key, tuple[dict[str, Any], str]]] = {}
        self._etags = itertools.count(1)
        self._lock = asyncio.Lock()

    def _table(self, name: str) -> dict[Key, tuple[dict[str, Any], str]]:
        return self._tables.setdefault(name, {})

    def _etag(self) -> str:
        return f'W/"mem-{next(self._etags)}"'

    async def get(self, table: str, partition_key: str, row_key: str) -> Row | None:
        found = self._table(table).get((encode_key(partition_key), encode_key(row_key)))
        return None if found is None else _row(*found)

    async def create(self, table: str, entity: Mapping[str, Any]) -> str:
        rows = self._table(table)
        data = _stored(entity)
        key = (data["PartitionKey"], data["RowKey"])
        if key in rows:
            raise EntityExists(f"{table}: row exists")
        etag = self._etag()
        rows[key] = (data, etag)
        return etag

    async def upsert(
        self, table: str, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.REPLACE
    ) -> str:
        rows = self._table(table)
        data = _stored(entity)
        key = (data["PartitionKey"], data["RowKey"])
        if mode is UpdateMode.MERGE and key in rows:
            data = {**rows[key][0], **data}
        etag = self._etag()
        rows[key] = (data, etag)
        return etag

    async def update(
        self,
        table: str,
        entity: Mapping[str, Any],
        etag: str,
        mode: UpdateMode = UpdateMode.REPLACE,
    ) -> str:
        rows = self._table(table)
        data = _stored(entity)
        key = (data["PartitionKey"], data["RowKey"])
        current = rows.get(key)
        if current is None:
            raise EntityMissing(f"{table}: row is gone")
        if etag != "*" and etag != current[1]:
            raise EntityChanged(f"{table}: row changed since it was read")
        if mode is UpdateMode.MERGE:
            data = {**current[0], **data}
        new_etag = self._etag()
        rows[key] = (data, new_etag)
        return new_etag

    async def delete(
        self, table: str, partition_key: str, row_key: str, etag: str | None = None
    ) -> None:
        rows = self._table(table)
        key = (encode_key(partition_key), encode_key(row_key))
        current = rows.get(key)
        if current is None:
            return
        if etag is not None and etag != "*" and etag != current[1]:
            raise EntityChanged(f"{table}: row changed since it was read")
        del rows[key]

    async def query(
        self,
        table: str,
        filter_text: str,
        parameters: Mapping[str, Any] | None = None,
        select: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Row]:
        matches = _matcher(filter_text, parameters or {})
        for _, (data, etag) in sorted(self._table(table).items()):
            if matches(data):
                yield _row(data, etag, select)

    def partition(self, table: str, partition_key: str) -> AsyncIterator[Row]:
        return self.query(table, "PartitionKey eq @pk", {"pk": encode_key(partition_key)})

    async def all_rows(
        self, table: str, page_size: int = 1000, select: Sequence[str] | None = None
    ) -> AsyncIterator[Row]:
        for _, (data, etag) in sorted(self._table(table).items()):
            yield _row(data, etag, select)

    async def transact(
        self, table: str, operations: Iterable[TableOperation], concurrency: int = 1
    ) -> int:
        chunks = chunk_operations(operations)
        for chunk in chunks:
            async with self._lock:
                self._apply(table, chunk)
        return sum(len(chunk) for chunk in chunks)

    def _apply(self, table: str, chunk: Sequence[TableOperation]) -> None:
        """One entity-group transaction: checked in full on a copy, then swapped in."""
        if len(chunk) > MAX_BATCH_OPERATIONS:
            raise TransactionFailed(f"{table}: more than {MAX_BATCH_OPERATIONS} operations")
        if len({op.partition_key for op in chunk}) > 1:
            raise TransactionFailed(f"{table}: a transaction spans one partition only")
        keys = [(op.partition_key, str(op.entity["RowKey"])) for op in chunk]
        if len(set(keys)) != len(keys):
            raise TransactionFailed(f"{table}: a row appears twice in one transaction")
        rows = self._table(table)
        staged = dict(rows)
        for op in chunk:
            data = _stored(op.entity)
            key = (data["PartitionKey"], data["RowKey"])
            current = staged.get(key)
            if op.kind == "create":
                if current is not None:
                    raise EntityExists(f"{table}: a row in the transaction already exists")
                staged[key] = (data, self._etag())
            elif op.kind == "upsert":
                if op.mode is UpdateMode.MERGE and current is not None:
                    data = {**current[0], **data}
                staged[key] = (data, self._etag())
            elif current is None:  # update or delete of a missing row: the service says 404
                raise TransactionFailed(f"{table}: transaction rejected: row not found")
            elif op.etag and op.etag != "*" and op.etag != current[1]:
                raise EntityChanged(f"{table}: a row in the transaction changed since it was read")
            elif op.kind == "update":
                if op.mode is UpdateMode.MERGE:
                    data = {**current[0], **data}
                staged[key] = (data, self._etag())
            else:
                del staged[key]
        rows.clear()
        rows.update(staged)

    async def delete_table(self, name: str) -> None:
        self._tables.pop(name, None)

    async def list_tables(self) -> list[str]:
        return sorted(self._tables)

    async def close(self) -> None:
        """Nothing to release; here so tests can treat both stores alike."""
