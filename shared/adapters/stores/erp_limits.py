"""The shared ERP limits record (``shared.adapters.erp.shared_limits``) in Table storage.

One row per principal: PartitionKey = a hash of the principal (tenant, environment, client
id; never the secret), RowKey ``limits``; the leases and grants as JSON in one property.
Writes are ETag-conditional (a new row is created, never upserted), so two instances can
never both take the last slot.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from shared.adapters.erp.shared_limits import LimitsConflict, encode_record
from shared.adapters.ports import TableStorage
from shared.adapters.tables import EntityChanged, EntityExists, EntityMissing

LIMITS_TABLE = "ErpLimits"
_ROW = "limits"


def principal_key(*parts: str) -> str:
    """A stable, non-secret name for one principal."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


class TableLimitsStore:
    """``LimitsStore`` on one Table storage row."""

    def __init__(self, tables: TableStorage, principal: str) -> None:
        self._tables = tables
        self._partition = principal

    async def read(self) -> tuple[dict[str, Any], str | None]:
        row = await self._tables.get(LIMITS_TABLE, self._partition, _ROW)
        if row is None:
            return {}, None
        try:
            record = json.loads(str(row.entity.get("Record") or "{}"))
        except ValueError:
            record = {}  # unreadable: start over (leases run out within seconds anyway)
        return (record if isinstance(record, dict) else {}), row.etag

    async def write(self, record: dict[str, Any], etag: str | None) -> None:
        entity = {"PartitionKey": self._partition, "RowKey": _ROW, "Record": encode_record(record)}
        try:
            if etag is None:
                await self._tables.create(LIMITS_TABLE, entity)
            else:
                await self._tables.update(LIMITS_TABLE, entity, etag)
        except (EntityChanged, EntityExists, EntityMissing) as error:
            raise LimitsConflict(str(error)) from error
