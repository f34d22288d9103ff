"""The seams services see: what they need of Table storage and of the message bus.

``TableStore`` and ``MessageBus`` are the real implementations; tests hand in others (an
in-memory table store with the same ETag and transaction rules, a recording bus), so a
service test runs in milliseconds while the contract suite keeps Azurite the judge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from azure.data.tables import UpdateMode

from shared.adapters.bus import MessageBus
from shared.adapters.tables import Row, TableOperation, TableStore


class TableStorage(Protocol):
    """Rows by (table, partition key, row key), written conditionally on their ETag.

    The rules every implementation keeps (tests/integration/test_table_store_contract.py):
    ``create`` refuses an existing row (``EntityExists``); ``update`` and a conditional
    ``delete`` refuse a stale ETag (``EntityChanged``) and ``update`` a missing row
    (``EntityMissing``); ``transact`` applies each chunk (one partition, at most 100
    operations) all or nothing.
    """

    async def get(self, table: str, partition_key: str, row_key: str) -> Row | None: ...

    async def create(self, table: str, entity: Mapping[str, Any]) -> str: ...

    async def upsert(
        self, table: str, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.REPLACE
    ) -> str: ...

    async def update(
        self,
        table: str,
        entity: Mapping[str, Any],
        etag: str,
        mode: UpdateMode = UpdateMode.REPLACE,
    ) -> str: ...

    async def delete(
        self, table: str, partition_key: str, row_key: str, etag: str | None = None
    ) -> None: ...

    def query(
        self,
        table: str,
        filter_text: str,
        parameters: Mapping[str, Any] | None = None,
        select: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Row]: ...

    def partition(self, table: str, partition_key: str) -> AsyncIterator[Row]: ...

    def all_rows(
        self, table: str, page_size: int = 1000, select: Sequence[str] | None = None
    ) -> AsyncIterator[Row]: ...

    async def transact(
        self, table: str, operations: Iterable[TableOperation], concurrency: int = 1
    ) -> int: ...


class MessageSender(Protocol):
    """Sending one JSON message to a queue or topic (``MessageBus`` is the real one)."""

    async def send_json(
        self,
        entity: str,
        body: Mapping[str, Any],
        *,
        message_id: str,
        correlation_id: str | None = None,
        subject: str | None = None,
        properties: Mapping[str, str | int] | None = None,
        scheduled_at: datetime | None = None,
        session_id: str | None = None,
    ) -> None: ...


def _real_adapters_fit(tables: TableStore, bus: MessageBus) -> tuple[TableStorage, MessageSender]:
    """Never called: mypy proves here that the real adapters fit the seams."""
    return tables, bus
