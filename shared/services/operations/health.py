"""Dependency health: can this instance reach its tables, Service Bus and the ERP right now?

Each probe is bounded by a short timeout so a hanging dependency cannot hang the health route,
and the report names dependencies and outcomes only, never connection strings or keys.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from shared.adapters.bus import MessageBus
from shared.adapters.ports import TableStorage
from shared.services.http_contract import WireModel
from shared.services.operations import selftest

Probe = Callable[[], Awaitable[None]]
Status = Literal["ok", "down"]


@dataclass(frozen=True)
class DependencyHealth:
    name: str
    status: Status
    latency_ms: int
    detail: str = ""


@dataclass(frozen=True)
class HealthReport:
    status: Literal["ok", "degraded", "down"]
    dependencies: list[DependencyHealth]

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "dependencies": {
                d.name: {"status": d.status, "latencyMs": d.latency_ms, "detail": d.detail}
                for d in self.dependencies
            },
        }


async def _run_probe(name: str, probe: Probe, timeout: float) -> DependencyHealth:
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
    return DependencyHealth(name, status, int((time.perf_counter() - started) * 1000), detail)


async def check(
    probes: Mapping[str, Probe], required: frozenset[str], timeout: float = 3.0
) -> HealthReport:
    """Run probes concurrently: down if a required dependency is down, else degraded if any."""
    results = await asyncio.gather(
        *(_run_probe(name, probe, timeout) for name, probe in probes.items())
    )
    down = {r.name for r in results if r.status == "down"}
    overall: Literal["ok", "degraded", "down"] = (
        "down" if down & required else "degraded" if down else "ok"
    )
    return HealthReport(overall, list(results))


class DependencyAnswer(WireModel):
    status: Status
    latency_ms: int = Field(ge=0)
    detail: str = Field(description="Why it is down (an error class name); empty when ok.")


class HealthAnswer(WireModel):
    """200 (ok, degraded) or 503 (down) of ``GET /api/health``: names and outcomes only."""

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
