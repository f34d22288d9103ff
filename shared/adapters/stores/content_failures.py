"""Per-SKU failures of the content sync, kept until a later run gets the SKU through.

Two scopes: ``erp`` (the ERP rows fail a content rule, so nothing is sent anywhere) and
``channel:{name}`` (that channel rejected the product). Every run starts by reading the list
and retries those SKUs; a SKU that goes through (valid again, acknowledged by the channel, or
gone from the ERP) has its row removed. A run holds the lease, so it is the only writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.adapters.ports import TableStorage
from shared.adapters.tables import TableOperation

FAILURES_TABLE = "ContentFailures"
ERP_SCOPE = "erp"
_CHANNEL_PREFIX = "channel:"
_MAX_ERROR_LENGTH = 2_000


def channel_scope(channel: str) -> str:
    return f"{_CHANNEL_PREFIX}{channel}"


@dataclass
class Failure:
    scope: str
    sku: str
    stage: str
    error: str
    content_hash: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    run_id: str

    def entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": self.scope,
            "RowKey": self.sku,
            "stage": self.stage,
            "error": self.error[:_MAX_ERROR_LENGTH],
            "attempts": self.attempts,
            "firstFailedAt": self.first_failed_at,
            "lastFailedAt": self.last_failed_at,
            "runId": self.run_id,
        }
        if self.content_hash:
            entity["contentHash"] = self.content_hash
        return entity

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Failure:
        now = datetime.now(UTC)
        return cls(
            scope=str(entity["PartitionKey"]),
            sku=str(entity["RowKey"]),
            stage=str(entity.get("stage", "")),
            error=str(entity.get("error", "")),
            content_hash=entity.get("contentHash"),
            attempts=int(entity.get("attempts", 1)),
            first_failed_at=entity.get("firstFailedAt") or now,
            last_failed_at=entity.get("lastFailedAt") or now,
            run_id=str(entity.get("runId", "")),
        )

    def as_json(self) -> dict[str, Any]:
        channel = self.scope.removeprefix(_CHANNEL_PREFIX) if self.scope != ERP_SCOPE else None
        return {
            "scope": self.scope,
            "channel": channel,
            "sku": self.sku,
            "stage": self.stage,
            "error": self.error,
            "contentHash": self.content_hash,
            "attempts": self.attempts,
            "firstFailedAt": self.first_failed_at.isoformat(),
            "lastFailedAt": self.last_failed_at.isoformat(),
            "runId": self.run_id,
        }


class FailureLog:
    """The failure list as one run sees it: loaded at the start, changes written per page."""

    def __init__(self, tables: TableStorage, run_id: str) -> None:
        self._tables = tables
        self._run_id = run_id
        self._stored: dict[tuple[str, str], Failure] = {}
        self._pending_upserts: dict[tuple[str, str], Failure] = {}
        self._pending_deletes: set[tuple[str, str]] = set()

    async def load(self) -> None:
        async for row in self._tables.all_rows(FAILURES_TABLE):
            failure = Failure.from_entity(row.entity)
            self._stored[(failure.scope, failure.sku)] = failure

    def skus_to_retry(self) -> set[str]:
        return {sku for (_, sku) in self._stored}

    def stored(self, scope: str, sku: str) -> Failure | None:
        return self._stored.get((scope, sku))

    def record(
        self, scope: str, sku: str, stage: str, error: str, content_hash: str | None = None
    ) -> None:
        key = (scope, sku)
        now = datetime.now(UTC)
        previous = self._pending_upserts.get(key) or self._stored.get(key)
        self._pending_deletes.discard(key)
        self._pending_upserts[key] = Failure(
            scope=scope,
            sku=sku,
            stage=stage,
            error=error,
            content_hash=content_hash,
            attempts=(previous.attempts + 1) if previous else 1,
            first_failed_at=previous.first_failed_at if previous else now,
            last_failed_at=now,
            run_id=self._run_id,
        )

    def resolve(self, scope: str, sku: str) -> None:
        """The SKU went through for this scope: forget its failure, if it had one."""
        key = (scope, sku)
        self._pending_upserts.pop(key, None)
        if key in self._stored:
            self._pending_deletes.add(key)

    async def flush(self) -> None:
        operations = [TableOperation("upsert", f.entity()) for f in self._pending_upserts.values()]
        operations += [
            TableOperation("delete", {"PartitionKey": scope, "RowKey": sku})
            for scope, sku in self._pending_deletes
        ]
        if operations:
            await self._tables.transact(FAILURES_TABLE, operations, concurrency=4)
        for key in self._pending_deletes:
            self._stored.pop(key, None)
        self._stored.update(self._pending_upserts)
        self._pending_upserts.clear()
        self._pending_deletes.clear()


async def list_failures(
    tables: TableStorage, channel: str | None = None, limit: int = 500
) -> list[Failure]:
    """Recorded failures, newest first; ``channel='erp'`` lists the ERP validation failures."""
    if channel is None:
        rows = tables.all_rows(FAILURES_TABLE)
    else:
        rows = tables.partition(
            FAILURES_TABLE, ERP_SCOPE if channel == ERP_SCOPE else channel_scope(channel)
        )
    found = [Failure.from_entity(row.entity) async for row in rows]
    found.sort(key=lambda failure: failure.last_failed_at, reverse=True)
    return found[:limit]
