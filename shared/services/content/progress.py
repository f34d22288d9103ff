"""Where the content sync stands: watermarks, the checkpoint of an unfinished pass, and a
pending request for a full pass. All rows live in the shared ``SyncState`` table.

Two watermarks, because items and their marketing content change independently in the ERP:
``content-sync:items`` and ``content-sync:content``. Both move only when a pass has been
acknowledged by every channel, so a crash or a stop on the time budget repeats work instead
of losing it.

A pass may take several runs. The checkpoint says which pass is under way (delta or full,
since when, how far it got); the next run continues that pass rather than starting another,
and skips what the channels already acknowledged by its content hash.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from shared.adapters.ports import TableStorage
from shared.adapters.stores import sync_state
from shared.adapters.tables import EntityChanged, EntityMissing

JOB = "content-sync"
ITEMS_WATERMARK = f"{JOB}:items"
CONTENT_WATERMARK = f"{JOB}:content"
_CHECKPOINT_PARTITION = "checkpoint"
_REQUEST_PARTITION = "request"
_FULL_REQUEST = f"{JOB}:full"

Mode = Literal["delta", "full"]


@dataclass
class Checkpoint:
    """An unfinished pass: which kind, when it began, and how far its last run got."""

    mode: Mode
    pass_id: str
    started_at: datetime
    runs: int = 1
    phase: str = "starting"
    pages_done: int = 0
    products_done: int = 0
    last_run_id: str = ""

    def entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": _CHECKPOINT_PARTITION,
            "RowKey": JOB,
            "mode": self.mode,
            "passId": self.pass_id,
            "startedAt": self.started_at,
            "runs": self.runs,
            "phase": self.phase,
            "pagesDone": self.pages_done,
            "productsDone": self.products_done,
            "lastRunId": self.last_run_id,
            "savedAt": datetime.now(UTC),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "passId": self.pass_id,
            "startedAt": self.started_at.isoformat(),
            "runs": self.runs,
            "phase": self.phase,
            "pagesDone": self.pages_done,
            "productsDone": self.products_done,
            "lastRunId": self.last_run_id,
        }


async def load_checkpoint(tables: TableStorage) -> Checkpoint | None:
    row = await tables.get(sync_state.STATE_TABLE, _CHECKPOINT_PARTITION, JOB)
    if row is None:
        return None
    entity = row.entity
    mode: Mode = "full" if entity.get("mode") == "full" else "delta"
    return Checkpoint(
        mode=mode,
        pass_id=str(entity.get("passId", "")),
        started_at=entity.get("startedAt") or datetime.now(UTC),
        runs=int(entity.get("runs", 1)),
        phase=str(entity.get("phase", "")),
        pages_done=int(entity.get("pagesDone", 0)),
        products_done=int(entity.get("productsDone", 0)),
        last_run_id=str(entity.get("lastRunId", "")),
    )


async def save_checkpoint(tables: TableStorage, checkpoint: Checkpoint) -> None:
    # Only the lease holder writes it, so last-writer-wins is safe.
    await tables.upsert(sync_state.STATE_TABLE, checkpoint.entity())


async def clear_checkpoint(tables: TableStorage) -> None:
    await tables.delete(sync_state.STATE_TABLE, _CHECKPOINT_PARTITION, JOB)


async def request_full_pass(tables: TableStorage) -> None:
    """Ask for a full pass; the next run that gets the lease does it (the nightly timer
    calls this first, so a night on which a delta run holds the lease is not lost)."""
    await tables.upsert(
        sync_state.STATE_TABLE,
        {
            "PartitionKey": _REQUEST_PARTITION,
            "RowKey": _FULL_REQUEST,
            "requestedAt": datetime.now(UTC),
        },
    )


async def full_pass_request(tables: TableStorage) -> str | None:
    """The ETag of a pending full-pass request, or None."""
    row = await tables.get(sync_state.STATE_TABLE, _REQUEST_PARTITION, _FULL_REQUEST)
    return row.etag if row else None


async def clear_full_pass_request(tables: TableStorage, etag: str) -> None:
    """Clear the request this pass served; one made while it ran (new ETag) stays."""
    with contextlib.suppress(EntityChanged, EntityMissing):
        await tables.delete(sync_state.STATE_TABLE, _REQUEST_PARTITION, _FULL_REQUEST, etag)


@dataclass(frozen=True)
class Watermarks:
    items: datetime | None
    content: datetime | None

    def as_json(self) -> dict[str, str | None]:
        return {
            "items": self.items.isoformat() if self.items else None,
            "content": self.content.isoformat() if self.content else None,
        }


async def read_watermarks(tables: TableStorage) -> Watermarks:
    items = await sync_state.read_watermark(tables, ITEMS_WATERMARK)
    content = await sync_state.read_watermark(tables, CONTENT_WATERMARK)
    return Watermarks(items.value, content.value)


async def save_watermarks(tables: TableStorage, marks: Watermarks) -> None:
    succeeded_at = datetime.now(UTC)
    await sync_state.save_watermark(tables, ITEMS_WATERMARK, marks.items, succeeded_at)
    await sync_state.save_watermark(tables, CONTENT_WATERMARK, marks.content, succeeded_at)
