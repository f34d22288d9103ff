"""The operations page's section cache: fresh, stale-while-refreshing, too old, one read."""

from __future__ import annotations

import asyncio

import pytest

from shared.services.operations.section_cache import SectionCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts reads; each read answers the next number, after ``gate`` opens if set."""

    def __init__(self) -> None:
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def __call__(self) -> int:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("ledger unreadable")
        return self.reads


async def test_a_fresh_section_is_served_without_a_read() -> None:
    clock, load = Clock(), Loader()
    cache = SectionCache(fresh_seconds=5, max_age_seconds=60, clock=clock)
    assert (await cache.get("impact", load)).value == 1
    clock.now += 4
    served = await cache.get("impact", load)
    assert served.value == 1 and load.reads == 1
    assert cache.age_ms(served) == 4000


async def test_a_stale_section_is_served_while_one_refresh_runs_behind() -> None:
    clock, load = Clock(), Loader()
    cache = SectionCache(fresh_seconds=5, max_age_seconds=60, clock=clock)
    await cache.get("impact", load)
    clock.now += 10
    load.gate = asyncio.Event()
    first, second = await cache.get("impact", load), await cache.get("impact", load)
    assert first.value == second.value == 1  # stale, answered at once
    await asyncio.sleep(0)  # the refresh starts
    assert load.reads == 2  # one refresh for both callers
    load.gate.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    refreshed = await cache.get("impact", load)
    assert refreshed.value == 2 and cache.age_ms(refreshed) == 0


async def test_a_section_older_than_the_bound_is_read_while_the_caller_waits() -> None:
    clock, load = Clock(), Loader()
    cache = SectionCache(fresh_seconds=5, max_age_seconds=60, clock=clock)
    await cache.get("impact", load)
    clock.now += 61
    assert (await cache.get("impact", load)).value == 2


async def test_concurrent_first_reads_share_one_read_and_failures_reach_the_caller() -> None:
    clock, load = Clock(), Loader()
    cache = SectionCache(fresh_seconds=5, max_age_seconds=60, clock=clock)
    load.gate = asyncio.Event()
    waiting = [asyncio.ensure_future(cache.get("impact", load)) for _ in range(3)]
    await asyncio.sleep(0)
    load.gate.set()
    assert [c.value for c in await asyncio.gather(*waiting)] == [1, 1, 1]
    assert load.reads == 1
    clock.now += 61
    load.fail = True
    with pytest.raises(RuntimeError, match="unreadable"):
        await cache.get("impact", load)
