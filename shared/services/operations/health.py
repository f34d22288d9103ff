"""Dependency health: can this instance reach its tables, Service Bus and the ERP right now?

Each probe is bounded by a short timeout so a hanging dependency cannot hang the health route,
and the report names dependencies and outcomes only, never connection strings or keys.

``CachedProbes`` keeps each probe's last result for ``max_age`` seconds (one per process, so a
load balancer polling ``/api/health`` does not turn into a Service Bus peek per call) and
says how old every result is. A result is never served older than ``max_age``: the first
caller after that runs the probes again (one run, however many callers wait for it), bounded
by the probe timeout, so a dependency that went down shows as down within ``max_age`` plus
that timeout, and a hung dependency makes no caller wait longer than the timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from shared.adapters.bus import MessageBus
from shared.adapters.ports import TableStorage
from shared.services.http_contract import WireModel
from shared.services.operations import selftest

Probe = Callable[[], Awaitable[None]]
Status = Literal["ok", "down"]

# A probe result is reused for at most this long; a probe run waits at most the timeout.
PROBE_CACHE_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class DependencyHealth:
    name: str
    status: Status
    latency_ms: int
    detail: str = ""
    checked_at: datetime | None = None
    age_ms: int = 0


@dataclass(frozen=True)
class HealthReport:
    status: Literal["ok", "degraded", "down"]
    dependencies: list[DependencyHealth]

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "dependencies": {
                d.name: {
                    "status": d.status,
                    "latencyMs": d.latency_ms,
                    "detail": d.detail,
                    "checkedAt": d.checked_at,
                    "ageMs": d.age_ms,
                }
                for d in self.dependencies
            },
        }


async def _run_probe(name: str, probe: Probe, timeout: float) -> DependencyHealth:
    checked_at = datetime.now(UTC)
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), timeout)
    except TimeoutError:
        status: Status = "down"
        detail = f"no answer within {timeout:g}s"
    except Exception as error:  # a probe reports any failure; it never raises
        status, detail = "down", type(error).__name__
    else:
        status, detail = "ok", ""
    latency = int((time.perf_counter() - started) * 1000)
    return DependencyHealth(name, status, latency, detail, checked_at=checked_at)


def _report(results: list[DependencyHealth], required: frozenset[str]) -> HealthReport:
    down = {r.name for r in results if r.status == "down"}
    overall: Literal["ok", "degraded", "down"] = (
        "down" if down & required else "degraded" if down else "ok"
    )
    return HealthReport(overall, results)


async def check(
    probes: Mapping[str, Probe], required: frozenset[str], timeout: float = PROBE_TIMEOUT_SECONDS
) -> HealthReport:
    """Run probes concurrently: down if a required dependency is down, else degraded if any."""
    results = await asyncio.gather(
        *(_run_probe(name, probe, timeout) for name, probe in probes.items())
    )
    return _report(list(results), required)


class CachedProbes:
    """The probes' results, each reused for at most ``max_age`` seconds (see the module)."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        max_age: float = PROBE_CACHE_SECONDS,
        timeout: float = PROBE_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probes = dict(probes)
        self.max_age = max_age
        self.timeout = timeout
        self._clock = clock
        self._results: dict[str, tuple[float, DependencyHealth]] = {}
        self._running: dict[str, asyncio.Task[DependencyHealth]] = {}

    async def _result(self, name: str) -> DependencyHealth:
        kept = self._results.get(name)
        now = self._clock()
        if kept is not None and now - kept[0] <= self.max_age:
            return replace(kept[1], age_ms=int((now - kept[0]) * 1000))
        task = self._running.get(name)
        if task is None:
            # One run per probe however many callers arrive; the task outlives a caller that
            # is cancelled, so the next one reuses it instead of starting another.
            task = asyncio.create_task(self._refresh(name))
            self._running[name] = task
        return await asyncio.shield(task)

    async def _refresh(self, name: str) -> DependencyHealth:
        try:
            started = self._clock()
            result = await _run_probe(name, self.probes[name], self.timeout)
            self._results[name] = (started, result)
            return result
        finally:
            self._running.pop(name, None)

    async def check(self, required: frozenset[str]) -> HealthReport:
        """Down if a required dependency is down, else degraded if any; each result with
        its age."""
        results = await asyncio.gather(*(self._result(name) for name in self.probes))
        return _report(list(results), required)


class DependencyAnswer(WireModel):
    status: Status
    latency_ms: int = Field(ge=0)
    detail: str = Field(description="Why it is down (an error class name); empty when ok.")
    checked_at: datetime | None = Field(
        None, description="When this result was probed (results are reused for a few seconds)."
    )
    age_ms: int = Field(
        0, ge=0, description="How old this result is; never more than the cache bound (5 s)."
    )


class HealthAnswer(WireModel):
    """200 (ok, degraded) or 503 (down) of ``GET /api/health``: names and outcomes only.

    Each dependency's result may be reused for up to 5 s; ``checkedAt`` and ``ageMs`` say how
    old it is."""

    status: Literal["ok", "degraded", "down"]
    dependencies: dict[str, DependencyAnswer]


REQUIRED = frozenset({"tables", "serviceBus"})


def dependency_probes(tables: TableStorage, bus: MessageBus) -> dict[str, Probe]:
    """The probes the health route and the operations page share: one cheap read each."""

    async def table_probe() -> None:
        await tables.get(selftest.HEARTBEAT_TABLE, "timer", "heartbeat")

    async def bus_probe() -> None:
        await bus.peek_count(selftest.QUEUE)

    return {"tables": table_probe, "serviceBus": bus_probe}
