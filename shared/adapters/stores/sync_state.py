"""Watermarks and run records of the batch jobs, kept in Table storage.

A watermark is the newest ERP ``lastModifiedDateTime`` a job has safely written; it only moves
after the rows are stored, so a crash repeats work instead of losing it. Run records say what
each run did (read, written, skipped, failed, seconds) for the operations view.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.adapters.ports import TableStorage

STATE_TABLE = "SyncState"
RUNS_TABLE = "SyncRuns"


@dataclass(frozen=True)
class Watermark:
    """Where a job's delta reads start, and when it last completed successfully."""

    job: str
    value: datetime | None
    last_success_at: datetime | None


async def read_watermark(tables: TableStorage, job: str) -> Watermark:
    row = await tables.get(STATE_TABLE, "watermark", job)
    if row is None:
        return Watermark(job, None, None)
    return Watermark(job, row.entity.get("watermark"), row.entity.get("lastSuccessAt"))


async def save_watermark(
    tables: TableStorage, job: str, value: datetime | None, succeeded_at: datetime | None = None
) -> None:
    """Store the watermark; only the job holding the lease writes it, so last-writer-wins."""
    entity: dict[str, Any] = {"PartitionKey": "watermark", "RowKey": job}
    if value is not None:
        entity["watermark"] = value
    if succeeded_at is not None:
        entity["lastSuccessAt"] = succeeded_at
    current = await tables.get(STATE_TABLE, "watermark", job)
    merged = {**(current.entity if current else {}), **entity}
    await tables.upsert(STATE_TABLE, merged)


@dataclass
class RunRecord:
    """Counters of one run; ``finish`` stores it."""

    job: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    counters: dict[str, int] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    async def finish(self, tables: TableStorage, outcome: str, error: str = "") -> None:
        ended_at = datetime.now(UTC)
        # RowKey sorts newest first, so "last N runs" is a short prefix query.
        inverted = f"{10**13 - int(self.started_at.timestamp() * 1000):013d}"
        await tables.upsert(
            RUNS_TABLE,
            {
                "PartitionKey": self.job,
                "RowKey": f"{inverted}-{self.run_id}",
                "runId": self.run_id,
                "startedAt": self.started_at,
                "endedAt": ended_at,
                "seconds": round((ended_at - self.started_at).total_seconds(), 3),
                "outcome": outcome,
                "error": error[:2000],
                **{f"n_{k}": v for k, v in self.counters.items()},
                **{f"d_{k}": v for k, v in self.details.items()},
            },
        )


async def recent_runs(tables: TableStorage, job: str, limit: int = 20) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    async for row in tables.partition(RUNS_TABLE, job):
        runs.append(row.entity)
        if len(runs) >= limit:
            break
    return runs
