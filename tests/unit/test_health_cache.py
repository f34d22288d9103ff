"""The health probes' cache: results reused within the bound, with their age, never beyond it;
one probe run however many callers; a hung dependency bounded by the timeout."""

from __future__ import annotations

import asyncio

from shared.services.operations.health import CachedProbes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Dependency:
    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    async def probe(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("gone")


async def test_a_result_is_reused_within_the_bound_with_its_age() -> None:
    clock, bus = Clock(), Dependency()
    cache = CachedProbes({"serviceBus": bus.probe}, max_age=5.0, clock=clock)
    first = await cache.check(frozenset({"serviceBus"}))
    clock.now += 3.5
    second = await cache.check(frozenset({"serviceBus"}))
    assert bus.calls == 1
    assert first.dependencies[0].age_ms == 0
    assert second.dependencies[0].age_ms == 3500
    assert second.dependencies[0].checked_at == first.dependencies[0].checked_at
    assert second.as_dict()["dependencies"]["serviceBus"]["ageMs"] == 3500  # type: ignore[index]


async def test_a_dependency_that_went_down_shows_as_down_once_the_bound_has_passed() -> None:
    clock, bus = Clock(), Dependency()
    cache = CachedProbes({"serviceBus": bus.probe}, max_age=5.0, clock=clock)
    assert (await cache.check(frozenset({"serviceBus"}))).status == "ok"
    bus.down = True
    clock.now += 5.0
    assert (await cache.check(frozenset({"serviceBus"}))).status == "ok"  # at the bound
    clock.now += 0.1
    report = await cache.check(frozenset({"serviceBus"}))
    assert report.status == "down"
    assert report.dependencies[0].detail == "ConnectionError"
    assert report.dependencies[0].age_ms == 0
    assert bus.calls == 2


async def test_concurrent_callers_share_one_probe_run() -> None:
    release = asyncio.Event()
    calls = 0

    async def slow() -> None:
        nonlocal calls
        calls += 1
        await release.wait()

    cache = CachedProbes({"tables": slow}, max_age=5.0, timeout=10.0)
    waiting = [asyncio.create_task(cache.check(frozenset({"tables"}))) for _ in range(20)]
    while calls == 0:
        await asyncio.sleep(0)
    release.set()
    reports = await asyncio.gather(*waiting)
    assert calls == 1
    assert {r.status for r in reports} == {"ok"}


async def test_a_hung_dependency_is_down_after_the_timeout_and_others_still_answer() -> None:
    never = asyncio.Event()
    tables = Dependency()

    async def hung() -> None:
        await never.wait()

    cache = CachedProbes({"serviceBus": hung, "tables": tables.probe}, timeout=0.05)
    report = await asyncio.wait_for(cache.check(frozenset({"tables", "serviceBus"})), 5)
    by_name = {d.name: d for d in report.dependencies}
    assert report.status == "down"
    assert by_name["serviceBus"].status == "down"
    assert by_name["serviceBus"].detail == "no answer within 0.05s"
    assert by_name["tables"].status == "ok"
    # The down result is cached like any other: the next caller does not wait again.
    again = await asyncio.wait_for(cache.check(frozenset({"tables", "serviceBus"})), 0.04)
    assert again.status == "down"


async def test_a_required_dependency_down_is_down_an_optional_one_degraded() -> None:
    erp = Dependency()
    erp.down = True
    tables = Dependency()
    cache = CachedProbes({"tables": tables.probe, "erp": erp.probe})
    assert (await cache.check(frozenset({"tables"}))).status == "degraded"
    assert (await cache.check(frozenset({"tables", "erp"}))).status == "down"
