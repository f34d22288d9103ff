"""Run records of the timer functions: when each ran, how long, and how it ended.

A timer that silently stops running (bad schedule, disabled, a lease never released) is the
classic unnoticed integration failure, so every timer writes a row when it starts and updates
it when it ends. ``TimerRuns`` keeps one partition per function (PartitionKey = the app's
function name) with RowKeys that sort newest first, pruned to a short history. A killed
process never writes its end, so a row still ``running`` is shown as ``interrupted`` once it
cannot be running any more: the host ends every run at ``functionTimeout``, and a timer is a
singleton, so a newer run of the same function that got to work means the older one is over.

Recording is best effort by design: the caller (``functions/timer_runs.py``) bounds it in time
and never lets a recording failure replace the job's own outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from shared.adapters.ports import TableStorage

TIMER_RUNS_TABLE = "TimerRuns"
HISTORY_LENGTH = 20
MAX_ERROR_CHARS = 300

# host.json's functionTimeout: the host stops any run that reaches it (a test keeps them equal).
RUN_TIME_LIMIT = timedelta(minutes=10)
INTERRUPTED = "no end was recorded: the process stopped (killed, crashed or timed out) first"

TimerResult = Literal["running", "ok", "skipped-lease-held", "failed", "interrupted"]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class TimerRunView(_Wire):
    """One run as the operations overview shows it."""

    run_id: str
    started_at: datetime
    ended_at: datetime | None = None
    seconds: float | None = None
    result: TimerResult
    error: str = ""
    past_due: bool = False


class TimerStatus(_Wire):
    """A timer's last run and its recent history (newest first)."""

    name: str
    never_ran: bool
    last_run: TimerRunView | None = None
    age_seconds: float | None = None
    history: list[TimerRunView] = []


@dataclass
class TimerRun:
    """A run in progress; ``row_key`` sorts newest first within the function's partition."""

    function_name: str
    past_due: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def row_key(self) -> str:
        inverted = 10**13 - int(self.started_at.timestamp() * 1000)
        return f"{inverted:013d}-{self.run_id}"


def short_error(error: BaseException) -> str:
    """The exception class and first line of its message, short enough for a table cell."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    summary = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return summary[:MAX_ERROR_CHARS]


async def record_start(tables: TableStorage, run: TimerRun) -> None:
    await tables.upsert(TIMER_RUNS_TABLE, _row(run, "running"))


async def record_end(
    tables: TableStorage, run: TimerRun, result: TimerResult, error: str = ""
) -> None:
    """Store the outcome, then drop rows beyond the history length."""
    ended_at = datetime.now(UTC)
    row = _row(run, result)
    row["endedAt"] = ended_at
    row["seconds"] = round((ended_at - run.started_at).total_seconds(), 3)
    row["error"] = error[:MAX_ERROR_CHARS]
    await tables.upsert(TIMER_RUNS_TABLE, row)
    await _prune(tables, run.function_name)


def _row(run: TimerRun, result: TimerResult) -> dict[str, object]:
    return {
        "PartitionKey": run.function_name,
        "RowKey": run.row_key,
        "runId": run.run_id,
        "startedAt": run.started_at,
        "result": result,
        "pastDue": run.past_due,
    }


async def _prune(tables: TableStorage, function_name: str) -> None:
    keys = [row.row_key async for row in tables.partition(TIMER_RUNS_TABLE, function_name)]
    # Partition queries return RowKey order, which is newest first here.
    for row_key in sorted(keys)[HISTORY_LENGTH:]:
        await tables.delete(TIMER_RUNS_TABLE, function_name, row_key)


def _view(entity: dict[str, object]) -> TimerRunView:
    return TimerRunView.model_validate(
        {
            "run_id": entity.get("runId", ""),
            "started_at": entity["startedAt"],
            "ended_at": entity.get("endedAt"),
            "seconds": entity.get("seconds"),
            "result": entity.get("result", "failed"),
            "error": entity.get("error", ""),
            "past_due": entity.get("pastDue", False),
        }
    )


def judged(runs: list[TimerRunView], now: datetime) -> list[TimerRunView]:
    """One function's runs (newest first), each ``running`` one that is over marked so.

    A newer run proves it only when that run got to work: one skipped because the job's lease
    is held says the opposite (a manual invocation may overlap a scheduled one)."""
    shown = []
    took_over = False  # a newer run of this function started its job
    for run in runs:
        over = took_over or now - run.started_at > RUN_TIME_LIMIT
        if run.result == "running" and over:
            run = run.model_copy(update={"result": "interrupted", "error": INTERRUPTED})
        took_over = took_over or run.result != "skipped-lease-held"
        shown.append(run)
    return shown


async def timer_statuses(
    tables: TableStorage,
    function_names: Iterable[str],
    now: datetime | None = None,
    history: int = HISTORY_LENGTH,
) -> list[TimerStatus]:
    """Every known timer (the app's list plus any with records), never-run ones included."""
    moment = now or datetime.now(UTC)
    runs: dict[str, list[TimerRunView]] = {}
    rows: list[tuple[str, str, dict[str, object]]] = []
    async for row in tables.all_rows(TIMER_RUNS_TABLE):
        rows.append((row.partition_key, row.row_key, row.entity))
    for partition, _key, entity in sorted(rows, key=lambda item: (item[0], item[1])):
        runs.setdefault(partition, []).append(_view(entity))
    statuses = []
    for name in sorted(set(function_names) | set(runs)):
        found = judged(runs.get(name, []), moment)[:history]
        last = found[0] if found else None
        statuses.append(
            TimerStatus(
                name=name,
                never_ran=last is None,
                last_run=last,
                age_seconds=None
                if last is None
                else round((moment - last.started_at).total_seconds(), 1),
                history=found,
            )
        )
    return statuses
