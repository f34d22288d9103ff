"""Slot leases and budget blocks of the shared ERP limits, on an in-memory record with ETags
(the Table storage behaviour is covered against Azurite in tests/integration)."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.erp.shared_limits import LimitsConflict, SharedLimits, SharedLimitSettings
from shared.adapters.erp.throttling import SlotWaitTooLong


class JumpClock:
    """Real time that a test can move forward (lease expiry without waiting for it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class MemoryStore:
    def __init__(self) -> None:
        self.record: dict[str, Any] | None = None
        self.version = 0
        self.writes = 0

    async def read(self) -> tuple[dict[str, Any], str | None]:
        if self.record is None:
            return {}, None
        return copy.deepcopy(self.record), str(self.version)

    async def write(self, record: dict[str, Any], etag: str | None) -> None:
        current = None if self.record is None else str(self.version)
        if etag != current:
            raise LimitsConflict("changed")
        self.record = {k: v for k, v in copy.deepcopy(record).items() if not k.startswith("_")}
        self.version += 1
        self.writes += 1


SETTINGS = SharedLimitSettings(max_concurrent=2, requests_per_window=6, window_seconds=60,
                               lease_seconds=10, block=3)  # fmt: skip


async def test_a_crashed_instances_slots_come_back_when_its_lease_runs_out() -> None:
    store, clock = MemoryStore(), JumpClock()
    crashed = SharedLimits(store, "a", SETTINGS, clock)
    other = SharedLimits(store, "b", SETTINGS, clock)
    await crashed.acquire(clock.monotonic() + 1)
    await crashed.acquire(clock.monotonic() + 1)  # both slots, never released
    waiter = asyncio.create_task(other.acquire(clock.monotonic() + 60))
    await asyncio.sleep(0.6)
    assert not waiter.done()  # no slot while the lease holds
    clock.advance(SETTINGS.lease_seconds + 0.1)
    await asyncio.wait_for(waiter, 2)
    assert other.held >= 1


async def test_the_budget_is_granted_in_blocks_and_never_beyond_the_window() -> None:
    store, clock = MemoryStore(), JumpClock()
    a = SharedLimits(store, "a", SETTINGS, clock)
    b = SharedLimits(store, "b", SETTINGS, clock)
    for limits in (a, b, a, b, a, b):
        await limits.acquire(clock.monotonic() + 1)
        limits.release()
    # 6 requests used two blocks of 3; a third block would pass the window's 6.
    with pytest.raises(SlotWaitTooLong):
        await a.acquire(clock.monotonic() + 1)
    assert store.record is not None and sum(g[1] for g in store.record["grants"]) == 6
    clock.advance(SETTINGS.window_seconds + 1)
    await a.acquire(clock.monotonic() + 1)  # the old blocks left the window


async def test_a_busy_instance_shrinks_to_a_fair_share_when_another_waits() -> None:
    store, clock = MemoryStore(), JumpClock()
    busy = SharedLimits(store, "busy", SETTINGS, clock)
    await busy.acquire(clock.monotonic() + 1)
    await busy.acquire(clock.monotonic() + 1)
    assert busy.held == 2
    newcomer = SharedLimits(store, "new", SETTINGS, clock)
    waiting = asyncio.create_task(newcomer.acquire(clock.monotonic() + 60))
    await asyncio.sleep(0.3)
    busy.release()
    busy.release()
    clock.advance(SETTINGS.lease_seconds / 2 + 0.1)  # the busy one's renewal is due
    await busy.acquire(clock.monotonic() + 1)
    assert busy.held == 1  # its fair share while another instance waits
    await asyncio.wait_for(waiting, 3)
    assert newcomer.in_use == 1
