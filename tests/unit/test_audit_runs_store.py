"""Stored audit reports read back as written; one this version cannot read is a clear 409.

A report written by another version of the app (a newer one, before a rollback) or damaged
used to fail ``GET /api/ops/audit`` with a 500; now the route says what happened and how to
get a readable report.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.services.errors import Conflict
from shared.services.operations.audit import runs
from shared.services.operations.audit.models import AuditReport
from shared.services.operations.audit.service import latest_with_history
from tests.support.memory_tables import InMemoryTableStore

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _report(run_id: str) -> AuditReport:
    return AuditReport(
        run_id=run_id, started_at=NOW, finished_at=NOW, layers=[], passed=True, verdicts=[]
    )


async def test_a_stored_report_reads_back_as_written() -> None:
    tables = InMemoryTableStore()
    await runs.save_report(tables, _report("r1"))
    latest = await latest_with_history(tables)
    assert latest is not None and latest.run_id == "r1" and latest.passed


async def test_a_report_this_version_cannot_read_is_a_conflict_that_says_what_to_do() -> None:
    tables = InMemoryTableStore()
    await runs.save_report(tables, _report("r2"))
    # The same report with a field a later version added.
    stored = _report("r2").model_dump(mode="json", by_alias=True)
    stored["fieldFromALaterVersion"] = 1
    row = await tables.get(runs.AUDIT_TABLE, "report|r2", "0000")
    assert row is not None
    entity = {**row.entity, "PartitionKey": "report|r2", "RowKey": "0000"}
    await tables.upsert(runs.AUDIT_TABLE, {**entity, "chunks": 1, "c0": json.dumps(stored)})
    with pytest.raises(Conflict, match="cannot be read by this version") as caught:
        await latest_with_history(tables)
    assert "POST /api/ops/audit" in caught.value.detail
