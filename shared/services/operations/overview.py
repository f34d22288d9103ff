"""The operations overview: one typed model of everything an operator checks first.

Sections: timers (last run, result, age, history), watermarks with their age, dead-letter
counts per entity, stock-reconciliation drift over the last runs, this instance's ERP breaker
and counters (per principal when several book orders), and dependency health; ``status``
sums each area up as green/amber/red with a one-line reason. Each section is read on its own
and a failing one is reported in ``section_errors`` instead of failing the page, because the
page matters most exactly when something is down. ``extra_sections`` is a slot for titled
key/value tables that other capabilities contribute (accuracy rate, business impact).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from shared.adapters.dead_letter_queues import DeadLetterQueues
from shared.adapters.erp.request_pipeline import ErpCounters
from shared.adapters.ports import TableStorage
from shared.adapters.stores import sync_state, timer_runs
from shared.adapters.stores.timer_runs import TimerStatus
from shared.services.inventory.reconciliation import JOB as RECONCILIATION_JOB
from shared.services.operations import dead_letters, health
from shared.services.operations.dead_letters import DeadLetterCounts
from shared.services.operations.status import AreaStatus, DriftRun, assess

DRIFT_RUNS = 12
SECTION_TIMEOUT_SECONDS = 10.0

T = TypeVar("T")


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class WatermarkView(_Wire):
    job: str
    watermark: datetime | None = None
    watermark_age_seconds: float | None = None
    last_success_at: datetime | None = None
    success_age_seconds: float | None = None


class PrincipalView(_Wire):
    """One principal's breaker and counters on this instance (BC counts each on its own);
    ``principal`` is its non-secret label (client id or position)."""

    principal: str
    breaker_state: str
    counters: dict[str, int]


class ErpView(_Wire):
    """This instance's ERP client: breaker state and counters since the process started.

    The top level is the default principal's (what every call but bookings uses);
    ``principals`` lists each principal, the default one first, when several book orders."""

    breaker_state: str
    counters: dict[str, int]
    principals: list[PrincipalView] = []


class DependencyView(_Wire):
    name: str
    status: str
    latency_ms: int
    detail: str = ""
    checked_at: datetime | None = None
    age_ms: int = 0


class KeyValue(_Wire):
    key: str
    value: str


class ExtraSection(_Wire):
    """A titled key/value table contributed by another capability.

    checkedAt and ageMs: when a section served from the page's short-lived cache was read
    (absent: read for this answer)."""

    title: str
    rows: list[KeyValue] = []
    checked_at: datetime | None = None
    age_ms: int = 0


class OperationsOverview(_Wire):
    generated_at: datetime
    status: list[AreaStatus]
    timers: list[TimerStatus] = []
    watermarks: list[WatermarkView] = []
    dead_letters: DeadLetterCounts | None = None
    drift: list[DriftRun] = []
    erp: ErpView
    health: list[DependencyView] = []
    extra_sections: list[ExtraSection] = []
    section_errors: dict[str, str] = {}


def _age(moment: Any, now: datetime) -> float | None:
    if not isinstance(moment, datetime):
        return None
    return round((now - moment).total_seconds(), 1)


async def read_watermarks(tables: TableStorage, now: datetime) -> list[WatermarkView]:
    rows = [row.entity async for row in tables.partition(sync_state.STATE_TABLE, "watermark")]
    return [
        WatermarkView(
            job=str(row["RowKey"]),
            watermark=row.get("watermark"),
            watermark_age_seconds=_age(row.get("watermark"), now),
            last_success_at=row.get("lastSuccessAt"),
            success_age_seconds=_age(row.get("lastSuccessAt"), now),
        )
        for row in sorted(rows, key=lambda r: str(r["RowKey"]))
    ]


def _decimal(value: Any) -> Decimal:
    try:
        return abs(Decimal(str(value))) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def drift_run(record: Mapping[str, Any]) -> DriftRun:
    """A reconciliation run record (``SyncRuns``) as a drift point."""
    largest = _decimal(record.get("d_largestOnHandDrift")) + _decimal(
        record.get("d_largestReservedDrift")
    )
    return DriftRun(
        run_id=str(record.get("runId", "")),
        started_at=record.get("startedAt"),
        outcome=str(record.get("outcome", "")),
        checked=int(record.get("n_checked", 0)),
        drifted=int(record.get("n_drifted", 0)),
        seeded=int(record.get("n_seeded", 0)),
        largest_drift=format(largest, "f"),
        largest_sku=str(record.get("d_largestSku", "")),
        largest_location=str(record.get("d_largestLocation", "")),
        error=str(record.get("error", ""))[:300],
    )


async def read_drift(tables: TableStorage, runs: int = DRIFT_RUNS) -> list[DriftRun]:
    """The last ``runs`` reconciliation runs, newest first."""
    records = await sync_state.recent_runs(tables, RECONCILIATION_JOB, runs)
    return [drift_run(record) for record in records]


def erp_view(counters: ErpCounters, principals: Sequence[tuple[str, ErpCounters]] = ()) -> ErpView:
    """The default principal's counters, and each principal's when there are several."""
    return ErpView(
        breaker_state=str(counters.breaker_state),
        counters=_figures(counters),
        principals=[
            PrincipalView(
                principal=name, breaker_state=str(each.breaker_state), counters=_figures(each)
            )
            for name, each in principals
        ]
        if len(principals) > 1
        else [],
    )


def _figures(counters: ErpCounters) -> dict[str, int]:
    return {
        "requestsSent": counters.requests_sent,
        "throttledResponses": counters.throttled_responses,
        "retries": counters.retries,
        "failures": counters.failures,
        "ambiguousResults": counters.ambiguous_results,
        "budgetWaits": counters.budget_waits,
        "budgetUsed": counters.budget_used,
        "breakerOpenings": counters.breaker_openings,
        "inFlight": counters.in_flight,
    }


async def _section(
    name: str, load: Callable[[], Awaitable[T]], errors: dict[str, str], fallback: T
) -> T:
    try:
        return await asyncio.wait_for(load(), SECTION_TIMEOUT_SECONDS)
    except TimeoutError:
        errors[name] = f"no answer within {SECTION_TIMEOUT_SECONDS:g}s"
    except Exception as error:  # one unreadable section must not take the page down
        errors[name] = type(error).__name__
    return fallback


async def build_overview(
    *,
    tables: TableStorage,
    queues: DeadLetterQueues,
    erp_counters: ErpCounters,
    erp_principals: Sequence[tuple[str, ErpCounters]] = (),
    health_report: Callable[[], Awaitable[health.HealthReport]],
    timer_names: Iterable[str],
    extra_sections: Sequence[ExtraSection] = (),
    now: datetime | None = None,
    drift_runs: int = DRIFT_RUNS,
    peek: int = 0,
) -> OperationsOverview:
    """Read every section concurrently and sum the areas up (``peek``: messages per DLQ)."""
    moment = now or datetime.now(UTC)
    errors: dict[str, str] = {}
    names = list(timer_names)
    no_timers: list[timer_runs.TimerStatus] = []
    no_watermarks: list[WatermarkView] = []
    no_counts: dead_letters.DeadLetterCounts | None = None
    no_drift: list[DriftRun] = []
    no_report: health.HealthReport | None = None
    timers, watermarks, dead, drift, report = await asyncio.gather(
        _section(
            "timers", lambda: timer_runs.timer_statuses(tables, names, moment), errors, no_timers
        ),
        _section("watermarks", lambda: read_watermarks(tables, moment), errors, no_watermarks),
        _section(
            "deadLetters", lambda: dead_letters.count_all(queues, peek=peek), errors, no_counts
        ),
        _section("drift", lambda: read_drift(tables, drift_runs), errors, no_drift),
        _section("health", health_report, errors, no_report),
    )
    dependencies = (
        []
        if report is None
        else [
            DependencyView(
                name=d.name,
                status=d.status,
                latency_ms=d.latency_ms,
                detail=d.detail,
                checked_at=d.checked_at,
                age_ms=d.age_ms,
            )
            for d in report.dependencies
        ]
    )
    erp = erp_view(erp_counters, erp_principals)
    status = assess(
        now=moment,
        timers=timers,
        watermarks=[(w.job, w.last_success_at) for w in watermarks],
        dead_letters=dead,
        drift=drift,
        breaker_state=erp.breaker_state,
        booking_breakers=[(p.principal, p.breaker_state) for p in erp.principals[1:]],
        dependencies=[(d.name, d.status, d.detail) for d in dependencies],
        section_errors=errors,
    )
    return OperationsOverview(
        generated_at=moment,
        status=status,
        timers=timers,
        watermarks=watermarks,
        dead_letters=dead,
        drift=drift,
        erp=erp,
        health=dependencies,
        extra_sections=list(extra_sections),
        section_errors=errors,
    )
