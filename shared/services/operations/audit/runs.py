"""Audit runs in Table storage: a summary row per run (for the chart) and the full report.

``AuditRuns``: PartitionKey ``run``, RowKey = inverted start time + run id, so the newest run
is the first row of the partition; the summary holds accuracy, rows older than policy and the
verdicts. The report JSON is stored in partition ``report|<runId>``, split into string
properties of 30,000 characters (a property holds 64 KiB of UTF-16), ten to a row, so a large
report never hits the 1 MiB entity limit.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from shared.adapters.ports import TableStorage
from shared.adapters.stores import sync_state
from shared.adapters.tables import TableOperation
from shared.services.errors import Conflict
from shared.services.inventory.reconciliation import JOB as RECONCILIATION_JOB
from shared.services.operations.audit.models import AuditReport, HistoryPoint

AUDIT_TABLE = "AuditRuns"
SUMMARY_PARTITION = "run"
_CHUNK_CHARS = 30_000
_CHUNKS_PER_ROW = 10
HISTORY_POINTS = 30


def _inverted(moment: datetime) -> str:
    return f"{10**13 - int(moment.timestamp() * 1000):013d}"


def _report_partition(run_id: str) -> str:
    return f"report|{run_id}"


def summary_entity(report: AuditReport) -> dict[str, Any]:
    data_over = sum(d.over_policy for d in report.data.datasets) if report.data else None
    entity: dict[str, Any] = {
        "PartitionKey": SUMMARY_PARTITION,
        "RowKey": f"{_inverted(report.started_at)}-{report.run_id}",
        "runId": report.run_id,
        "startedAt": report.started_at,
        "finishedAt": report.finished_at,
        "passed": report.passed,
        "layers": ",".join(report.layers),
        "verdicts": json.dumps({v.layer: v.passed for v in report.verdicts}),
    }
    if report.logic is not None and report.logic.accuracy is not None:
        entity["accuracy"] = str(report.logic.accuracy)
    if data_over is not None:
        entity["dataOverPolicy"] = data_over
    return entity


async def save_report(tables: TableStorage, report: AuditReport) -> None:
    """Store the report first, then the summary that points readers at it."""
    text = report.model_dump_json(by_alias=True)
    chunks = [text[i : i + _CHUNK_CHARS] for i in range(0, len(text), _CHUNK_CHARS)] or [""]
    operations = []
    for number, start in enumerate(range(0, len(chunks), _CHUNKS_PER_ROW)):
        part = chunks[start : start + _CHUNKS_PER_ROW]
        entity: dict[str, Any] = {
            "PartitionKey": _report_partition(report.run_id),
            "RowKey": f"{number:04d}",
            "chunks": len(part),
        }
        entity.update({f"c{i}": chunk for i, chunk in enumerate(part)})
        operations.append(TableOperation("upsert", entity))
    await tables.transact(AUDIT_TABLE, operations)
    await tables.upsert(AUDIT_TABLE, summary_entity(report))


async def load_report(tables: TableStorage, run_id: str) -> AuditReport | None:
    parts: list[str] = []
    async for row in tables.partition(AUDIT_TABLE, _report_partition(run_id)):
        parts.extend(str(row.entity[f"c{i}"]) for i in range(int(row.entity["chunks"])))
    if not parts:
        return None
    try:
        return AuditReport.model_validate_json("".join(parts))
    except ValidationError as error:
        # Written by another version of the app (e.g. before a rollback) or damaged: say so,
        # and how to get a readable one, instead of failing the route.
        raise Conflict(
            "Stored audit report unreadable",
            f"audit report {run_id} cannot be read by this version of the app "
            f"({error.error_count()} fields do not fit); run POST /api/ops/audit for a new one",
        ) from error


async def latest_report(tables: TableStorage) -> AuditReport | None:
    """The newest stored report, or None before the first audit."""
    async for row in tables.partition(AUDIT_TABLE, SUMMARY_PARTITION):
        return await load_report(tables, str(row.entity["runId"]))
    return None


async def recent_summaries(
    tables: TableStorage, limit: int = HISTORY_POINTS
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async for row in tables.partition(AUDIT_TABLE, SUMMARY_PARTITION):
        found.append(row.entity)
        if len(found) >= limit:
            break
    return found


def _rate(part: object, whole: object) -> Decimal | None:
    try:
        total = int(str(whole))
        return (
            (Decimal(int(str(part))) / Decimal(total)).quantize(Decimal("0.0001"))
            if total
            else None
        )
    except ValueError:
        return None


async def history(tables: TableStorage, limit: int = HISTORY_POINTS) -> list[HistoryPoint]:
    """Accuracy of past audits and drift rate of past reconciliations, oldest first."""
    points = [
        HistoryPoint(at=s["startedAt"], accuracy=Decimal(str(s["accuracy"])))
        for s in await recent_summaries(tables, limit)
        if s.get("accuracy") is not None
    ]
    for run in await sync_state.recent_runs(tables, RECONCILIATION_JOB, limit):
        rate = _rate(run.get("n_drifted", 0), run.get("n_checked", 0))
        if rate is not None and run.get("startedAt") is not None:
            points.append(HistoryPoint(at=run["startedAt"], drift_rate=rate))
    return sorted(points, key=lambda point: point.at)
