"""recorded_timer: every timer's runs are recorded, and recording never changes the outcome."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from functions.timer_runs import RECORDED_TIMERS, recorded_timer
from shared.adapters.stores import timer_runs
from shared.adapters.stores.lease import LeaseHeld
from shared.adapters.tables import Row, TableStore


class MemoryTables:
    """The few TableStore calls the run records use, in memory; ``broken`` fails them all."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise ConnectionError("tables unreachable")

    async def upsert(self, table: str, entity: dict[str, Any]) -> str:
        self._check()
        key = (table, entity["PartitionKey"], entity["RowKey"])
        self.rows[key] = dict(entity)
        return "etag"

    async def delete(self, table: str, partition_key: str, row_key: str) -> None:
        self._check()
        self.rows.pop((table, partition_key, row_key), None)

    async def partition(self, table: str, partition_key: str) -> AsyncIterator[Row]:
        self._check()
        for key in sorted(self.rows):
            if key[:2] == (table, partition_key):
                yield Row(dict(self.rows[key]), "etag")

    async def all_rows(self, table: str) -> AsyncIterator[Row]:
        self._check()
        for key in sorted(self.rows):
            if key[0] == table:
                yield Row(dict(self.rows[key]), "etag")

    def runs(self, name: str) -> list[dict[str, Any]]:
        return [
            row
            for (table, pk, _rk), row in sorted(self.rows.items())
            if table == timer_runs.TIMER_RUNS_TABLE and pk == name
        ]


@pytest.fixture
def tables() -> MemoryTables:
    return MemoryTables()


def _timer(past_due: bool = False) -> func.TimerRequest:
    return TimerRequest(past_due=past_due)


def _store(tables: MemoryTables) -> TableStore:
    return cast(TableStore, tables)


async def test_a_successful_run_is_recorded_with_its_duration(tables: MemoryTables) -> None:
    calls: list[bool] = []

    @recorded_timer("job_ok", tables=lambda: _store(tables))
    async def job(timer: func.TimerRequest) -> None:
        calls.append(timer.past_due)

    await job(_timer(past_due=True))

    (row,) = tables.runs("job_ok")
    assert calls == [True]
    assert row["result"] == "ok"
    assert row["pastDue"] is True
    assert row["endedAt"] >= row["startedAt"]
    assert row["seconds"] >= 0
    assert "job_ok" in RECORDED_TIMERS


async def test_a_failing_run_is_recorded_and_its_error_still_raised(
    tables: MemoryTables,
) -> None:
    @recorded_timer("job_fails", tables=lambda: _store(tables))
    async def job(timer: func.TimerRequest) -> None:
        raise ValueError("ERP said no\nsecond line")

    with pytest.raises(ValueError, match="ERP said no"):
        await job(_timer())

    (row,) = tables.runs("job_fails")
    assert (row["result"], row["error"]) == ("failed", "ValueError: ERP said no")


async def test_a_held_lease_is_a_skip_not_a_failure(tables: MemoryTables) -> None:
    @recorded_timer("job_leased", tables=lambda: _store(tables))
    async def job(timer: func.TimerRequest) -> None:
        raise LeaseHeld("lease on job is held until 12:00")

    await job(_timer())

    (row,) = tables.runs("job_leased")
    assert row["result"] == "skipped-lease-held"
    assert "held until 12:00" in row["error"]


async def test_a_recording_failure_never_hides_the_jobs_outcome(tables: MemoryTables) -> None:
    tables.broken = True
    ran: list[str] = []

    @recorded_timer("job_ok_tables_down", tables=lambda: _store(tables))
    async def fine(timer: func.TimerRequest) -> None:
        ran.append("fine")

    @recorded_timer("job_fails_tables_down", tables=lambda: _store(tables))
    async def failing(timer: func.TimerRequest) -> None:
        raise KeyError("the job's own error")

    await fine(_timer())
    with pytest.raises(KeyError, match="the job's own error"):
        await failing(_timer())
    assert ran == ["fine"]
    assert tables.rows == {}


async def test_history_keeps_the_newest_runs_only(tables: MemoryTables) -> None:
    store = _store(tables)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for minute in range(timer_runs.HISTORY_LENGTH + 5):
        run = timer_runs.TimerRun("busy", started_at=start + timedelta(minutes=minute))
        await timer_runs.record_end(store, run, "ok")

    statuses = await timer_runs.timer_statuses(store, ["busy"], now=start + timedelta(hours=1))

    (busy,) = statuses
    assert len(tables.runs("busy")) == timer_runs.HISTORY_LENGTH
    assert len(busy.history) == timer_runs.HISTORY_LENGTH
    newest = start + timedelta(minutes=timer_runs.HISTORY_LENGTH + 4)
    assert busy.last_run is not None and busy.last_run.started_at == newest
    assert busy.history[-1].started_at == newest - timedelta(minutes=timer_runs.HISTORY_LENGTH - 1)
    assert busy.age_seconds == (start + timedelta(hours=1) - newest).total_seconds()


async def test_timers_that_never_ran_are_listed(tables: MemoryTables) -> None:
    store = _store(tables)
    await timer_runs.record_start(store, timer_runs.TimerRun("ran"))

    statuses = {s.name: s for s in await timer_runs.timer_statuses(store, ["ran", "idle"])}

    assert statuses["idle"].never_ran and statuses["idle"].last_run is None
    assert not statuses["ran"].never_ran
    assert statuses["ran"].last_run is not None
    assert statuses["ran"].last_run.result == "running"


async def test_a_run_that_cannot_still_be_running_is_shown_interrupted(
    tables: MemoryTables,
) -> None:
    """A killed process writes no end: its row says ``running`` forever. Shown as interrupted
    once a newer run of the same (singleton) timer started, or functionTimeout has passed."""
    store = _store(tables)
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    killed = timer_runs.TimerRun("sync", started_at=start)
    await timer_runs.record_start(store, killed)
    alone = timer_runs.TimerRun("lone", started_at=start)
    await timer_runs.record_start(store, alone)
    later = timer_runs.TimerRun("sync", started_at=start + timedelta(minutes=1))
    await timer_runs.record_start(store, later)
    limit = timer_runs.RUN_TIME_LIMIT

    within = await timer_runs.timer_statuses(store, [], now=start + limit)
    beyond = await timer_runs.timer_statuses(store, [], now=start + limit + timedelta(seconds=1))

    by_name = {s.name: [run.result for run in s.history] for s in within}
    assert by_name == {"lone": ["running"], "sync": ["running", "interrupted"]}
    by_name = {s.name: [run.result for run in s.history] for s in beyond}
    assert by_name == {"lone": ["interrupted"], "sync": ["running", "interrupted"]}
    assert {s.name: s.history[-1].error for s in beyond}["lone"] == timer_runs.INTERRUPTED


async def test_a_newer_run_skipped_for_the_lease_does_not_end_a_running_one(
    tables: MemoryTables,
) -> None:
    """A manual invocation while the scheduled run still works finds the lease held: that
    proves nothing about the running one, which stays ``running`` until functionTimeout."""
    store = _store(tables)
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    busy = timer_runs.TimerRun("sync", started_at=start)
    await timer_runs.record_start(store, busy)
    skipped = timer_runs.TimerRun("sync", started_at=start + timedelta(minutes=1))
    await timer_runs.record_end(store, skipped, "skipped-lease-held")

    (status,) = await timer_runs.timer_statuses(store, [], now=start + timedelta(minutes=2))

    assert [run.result for run in status.history] == ["skipped-lease-held", "running"]


def test_the_run_time_limit_is_the_hosts_function_timeout() -> None:
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    hours, minutes, seconds = (int(part) for part in host["functionTimeout"].split(":"))
    limit = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    assert limit == timer_runs.RUN_TIME_LIMIT


def test_every_timer_of_the_app_records_its_runs_under_its_own_name() -> None:
    import function_app

    # get_functions() remembers names from an earlier indexing in this process.
    function_app.app.functions_bindings = None
    timers = {
        f.get_function_name(): f
        for f in function_app.app.get_functions()
        if any(b.type == "timerTrigger" for b in f.get_bindings())
    }
    assert timers, "the app has timers"
    for name, function in timers.items():
        handler = function.get_user_function()
        assert getattr(handler, "recorded_timer_name", None) == name, name
    assert set(timers) <= set(RECORDED_TIMERS)
