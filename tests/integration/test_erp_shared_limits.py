"""BC's per-principal limits shared by several instances: slot leases and budget blocks in
Table storage (Azurite), real HTTP to the simulator.

Two ErpClients stand for two Function instances of one service principal. The simulator is
set to refuse at once (no queue) whatever goes beyond the concurrency limit, so any excess
shows as a 429 in its stats.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from uuid import UUID

import httpx
import pytest

from devtools.erp_sim.testing import running_simulator
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.clock import SystemClock
from shared.adapters.erp.config import ErpConfig
from shared.adapters.erp.errors import ErpThrottled
from shared.adapters.erp.shared_limits import SharedLimits, SharedLimitSettings
from shared.adapters.stores.erp_limits import TableLimitsStore, principal_key
from shared.adapters.tables import TableStore

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with running_simulator(seed=3, items=20, customers=5) as base_url:
        yield base_url


def _control(sim: str, path: str, body: dict[str, object]) -> dict[str, object]:
    response = httpx.post(f"{sim}{path}", json=body, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def _config(sim: str, **overrides: object) -> ErpConfig:
    values: dict[str, object] = {
        "base_url": sim,
        "tenant": "local",
        "environment": "sandbox",
        "company_id": COMPANY,
        "max_concurrent": 2,  # each instance alone would use the whole limit
        "throttle_max_retries": 0,
        "default_retry_after_seconds": 0.1,
        "call_deadline_seconds": 20,
    }
    values.update(overrides)
    return ErpConfig.model_validate(values)


def _clients(
    sim: str, tables: TableStore | None, settings: SharedLimitSettings, **overrides: object
) -> list[ErpClient]:
    principal = principal_key("local", "sandbox", uuid.uuid4().hex)
    clients = []
    for instance in ("instance-a", "instance-b"):
        shared = None
        if tables is not None:
            store = TableLimitsStore(tables, principal)
            shared = SharedLimits(store, instance, settings, SystemClock())
        clients.append(ErpClient(_config(sim, **overrides), shared_limits=shared))
    return clients


async def _hammer(clients: list[ErpClient], calls_each: int) -> list[BaseException | None]:
    async def one(client: ErpClient) -> BaseException | None:
        try:
            await client.get_item_by_number("IT-000001")
        except Exception as error:
            return error
        return None

    return await asyncio.gather(*(one(c) for c in clients for _ in range(calls_each)))


@pytest.mark.parametrize("shared", [True, False], ids=["shared-leases", "each-alone"])
async def test_two_instances_never_exceed_the_principals_concurrency(
    sim: str, table_store: TableStore, shared: bool
) -> None:
    _control(sim, "/_sim/limits", {"maxConcurrent": 2, "queueSize": 0})
    _control(sim, "/_sim/faults", {"latencyMs": 150})
    _control(sim, "/_sim/stats/reset", {})
    settings = SharedLimitSettings(max_concurrent=2, lease_seconds=4, block=20)
    clients = _clients(sim, table_store if shared else None, settings)
    try:
        errors = await _hammer(clients, 8)
    finally:
        _control(sim, "/_sim/faults", {})
        _control(sim, "/_sim/limits", {"maxConcurrent": 5, "queueSize": 95})
        for client in clients:
            await client.aclose()
    stats = httpx.get(f"{sim}/_sim/stats", timeout=10).json()
    if shared:
        assert errors == [None] * 16
        assert stats["throttled"] == 0 and stats["inFlightMax"] <= 2
    else:
        # The control: each instance keeps its own limit of 2, together they send 4.
        assert stats["throttled"] > 0


async def test_the_window_budget_is_counted_across_instances(
    sim: str, table_store: TableStore
) -> None:
    _control(sim, "/_sim/stats/reset", {})
    settings = SharedLimitSettings(
        max_concurrent=2, requests_per_window=12, window_seconds=120, lease_seconds=4, block=4
    )
    # A short deadline: a caller is told at once that no budget frees before it.
    clients = _clients(sim, table_store, settings, call_deadline_seconds=2)
    try:
        errors = await _hammer(clients, 10)
    finally:
        for client in clients:
            await client.aclose()
    sent = httpx.get(f"{sim}/_sim/stats", timeout=10).json()["requests"]["items"]["GET"]
    assert sum(sent.values()) <= 12  # the window's budget, both instances together
    refused = [e for e in errors if e is not None]
    assert refused and all(isinstance(e, ErpThrottled) for e in refused)
    assert len(refused) == 20 - sum(sent.values())
