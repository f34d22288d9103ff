"""The content sync on real parts: the ERP simulator, the storefront simulator and Azurite.

Each test gets its own ERP simulator (so it may change, block and delete items, and change
marketing content, which the ERP API cannot write, directly in the simulator's data), its own
storefront simulator and fresh tables. What the storefronts received is read back from the
storefront simulator's control routes, never from our own bookkeeping.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from devtools.erp_sim.app import create_app
from devtools.erp_sim.server import bind_socket, build_server, url_of
from devtools.erp_sim.state import SimulatorOptions, SimulatorState
from devtools.erp_sim.testing import standard_api
from devtools.storefront_sim.testing import storefront_simulator
from functions.timer_runs import recorded_timer
from shared import bootstrap
from shared.adapters.channels import CatalogBatch, CatalogUpsert, ChannelAdapter, OperationResult
from shared.adapters.channels_webhook import WebhookPolicy
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.adapters.stores import lease, timer_runs
from shared.adapters.stores.content_hashes import HASHES_TABLE, ChannelHashes, partition_of
from shared.adapters.tables import TableStore
from shared.config.settings import load_settings
from shared.services import content
from shared.services.content import ChannelTarget, SyncOptions, progress
from shared.services.content.delivery import BatchLimits
from tests.integration import content_crash_worker as crash_worker
from tests.integration.killed_worker import run_until_killed

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")
EU_CATEGORIES = {"CHAIR", "DESK", "LAMP", "STORAGE", "TABLE"}
ROOT = Path(__file__).resolve().parents[2]
FAST = WebhookPolicy(max_attempts=3, base_backoff_seconds=0.01, max_backoff_seconds=0.02)


@dataclass
class ErpSim:
    url: str
    state: SimulatorState

    def items(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{standard_api(self.url)}/items", timeout=10)
        response.raise_for_status()
        return list(response.json()["value"])

    def item(self, number: str) -> dict[str, Any]:
        return next(item for item in self.items() if item["number"] == number)

    def patch_item(self, number: str, **changes: Any) -> None:
        item = self.item(number)
        response = httpx.patch(
            f"{standard_api(self.url)}/items({item['id']})",
            json=changes,
            headers={"If-Match": item["@odata.etag"]},
            timeout=10,
        )
        assert response.status_code == 200, response.text

    def delete_item(self, number: str) -> None:
        item = self.item(number)
        response = httpx.delete(
            f"{standard_api(self.url)}/items({item['id']})",
            headers={"If-Match": item["@odata.etag"]},
            timeout=10,
        )
        assert response.status_code == 204, response.text

    def change_content(self, number: str, description: str) -> None:
        """The ERP API cannot write itemContent; change the row as BC would and stamp it."""
        row = self.state.dataset["itemContent"].find_one("itemNumber", number)
        assert row is not None
        row["description"] = description
        self.state.dataset.touch("itemContent", row)

    def malformed(self) -> set[str]:
        return set(self.state.dataset.fixtures.malformed_content)


@pytest.fixture
def erp_sim() -> Iterator[ErpSim]:
    state = SimulatorState(SimulatorOptions(seed=5, items=120, customers=8))
    sock = bind_socket("127.0.0.1", 0)
    server = build_server(create_app(state=state), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "ERP simulator did not start"
        time.sleep(0.01)
    try:
        yield ErpSim(url_of(sock), state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def storefront() -> Iterator[str]:
    with storefront_simulator() as url:
        yield url


@pytest.fixture
async def erp(erp_sim: ErpSim) -> AsyncIterator[ErpClient]:
    config = ErpConfig(
        base_url=erp_sim.url, tenant="local", environment="sandbox", company_id=COMPANY
    )
    async with ErpClient(config) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def targets(storefront: str, http: httpx.AsyncClient) -> dict[str, ChannelTarget]:
    settings = load_settings(STOREFRONT_BASE_URL=storefront)
    return bootstrap.channel_targets(settings, http, FAST)


OPTIONS = SyncOptions(erp_page_size=40, lookup_size=15, batch=BatchLimits(max_operations=25))


@dataclass
class Harness:
    """One test's world: run the sync, read what the storefronts hold."""

    erp_sim: ErpSim
    erp: ErpClient
    tables: TableStore
    storefront: str
    targets: dict[str, ChannelTarget]
    options: SyncOptions = OPTIONS
    runs: list[content.RunStats] = field(default_factory=list)

    async def sync(
        self, mode: str = "delta", targets: dict[str, ChannelTarget] | None = None, **kw: Any
    ) -> content.RunStats:
        stats = await content.run_content_sync(
            self.erp,
            self.tables,
            targets or self.targets,
            mode,
            self.options,
            **kw,  # type: ignore[arg-type]
        )
        self.runs.append(stats)
        return stats

    def catalog(self, channel: str) -> dict[str, Any]:
        response = httpx.get(f"{self.storefront}/channels/{channel}/catalog", timeout=10)
        return dict(response.json()["items"])

    def received(self, channel: str | None = None) -> list[dict[str, Any]]:
        params = {"channel": channel} if channel else {}
        response = httpx.get(f"{self.storefront}/_sim/received", params=params, timeout=10)
        return list(response.json()["items"])

    def webhook_requests(self) -> int:
        return int(httpx.get(f"{self.storefront}/_sim/stats", timeout=10).json()["totalRequests"])

    def requests_per_channel(self) -> dict[str, int]:
        stats = httpx.get(f"{self.storefront}/_sim/stats", timeout=10).json()
        return {name: channel["requests"] for name, channel in stats["channels"].items()}

    def expected(self) -> dict[str, set[str]]:
        """What each channel should list: valid, unblocked items in its assortment."""
        bad = self.erp_sim.malformed()
        sellable = [i for i in self.erp_sim.items() if not i["blocked"] and i["number"] not in bad]
        return {
            "web": {i["number"] for i in sellable},
            "b2b-eu": {i["number"] for i in sellable if i["itemCategoryCode"] in EU_CATEGORIES},
        }

    def pick(self, *, eu: bool, exclude: frozenset[str] | set[str] = frozenset()) -> str:
        expected = self.expected()
        pool = expected["b2b-eu"] if eu else expected["web"] - expected["b2b-eu"]
        return sorted(pool - exclude)[0]


@pytest.fixture
def world(
    erp_sim: ErpSim,
    erp: ErpClient,
    table_store: TableStore,
    storefront: str,
    targets: dict[str, ChannelTarget],
) -> Harness:
    return Harness(erp_sim, erp, table_store, storefront, targets)


def _applied(items: list[dict[str, Any]], operation: str = "upsert") -> Counter[tuple[str, str]]:
    """How often each (channel, SKU) was applied by the storefront."""
    return Counter((i["channel"], i["sku"]) for i in items if i["operation"] == operation)


# ---- first run, second run, changes ------------------------------------------------------


async def test_first_run_sends_everything_and_a_second_run_sends_nothing(world: Harness) -> None:
    first = await world.sync()
    assert first.mode == "full" and first.complete
    expected = world.expected()
    assert set(world.catalog("web")) == expected["web"]
    assert set(world.catalog("b2b-eu")) == expected["b2b-eu"]
    assert expected["b2b-eu"] and expected["b2b-eu"] < expected["web"]
    assert max(_applied(world.received()).values()) == 1
    # Full batches across ERP pages: as few requests per channel as the batch size allows.
    per_channel = world.requests_per_channel()
    batch = OPTIONS.batch.max_operations
    assert per_channel == {name: math.ceil(len(skus) / batch) for name, skus in expected.items()}
    requests_after_first = world.webhook_requests()

    second = await world.sync()
    assert second.mode == "delta" and second.complete
    assert world.webhook_requests() == requests_after_first  # not a single request to any channel
    assert second.sent == 0 and second.failed == 0


async def test_products_carry_the_canonical_content_per_channel(world: Harness) -> None:
    await world.sync()
    chair = world.pick(eu=True)
    item = world.erp_sim.item(chair)
    web = world.catalog("web")[chair]
    eu = world.catalog("b2b-eu")[chair]
    assert web["product"]["name"] == item["displayName"]
    assert web["product"]["category"]["code"] == item["itemCategoryCode"]
    assert web["product"]["listPrice"] is not None and web["product"]["currency"] == "USD"
    assert eu["product"]["listPrice"] is None and eu["product"]["locale"] == "de-DE"
    assert web["product"]["media"][0]["url"].startswith("https://")
    assert web["contentHash"] != eu["contentHash"]


async def test_a_change_sends_exactly_that_product_to_the_channels_that_sell_it(
    world: Harness,
) -> None:
    await world.sync()
    chair, other = world.pick(eu=True), world.pick(eu=False)
    before_web, before_eu = len(world.received("web")), len(world.received("b2b-eu"))
    world.erp_sim.patch_item(chair, displayName="Renamed chair")
    world.erp_sim.patch_item(other, displayName="Renamed other")

    stats = await world.sync()

    new_web = world.received("web")[before_web:]
    new_eu = world.received("b2b-eu")[before_eu:]
    assert sorted(i["sku"] for i in new_web) == sorted([chair, other])
    assert [i["sku"] for i in new_eu] == [chair]
    assert world.catalog("web")[chair]["product"]["name"] == "Renamed chair"
    assert stats.channels["web"].applied == 2 and stats.channels["b2b-eu"].applied == 1


async def test_changed_content_alone_is_sent_again(world: Harness) -> None:
    await world.sync()
    chair = world.pick(eu=True)
    before = len(world.received())
    world.erp_sim.change_content(chair, "A brand-new description.")

    await world.sync()

    new = world.received()[before:]
    assert sorted((i["channel"], i["sku"]) for i in new) == [("b2b-eu", chair), ("web", chair)]
    assert world.catalog("b2b-eu")[chair]["product"]["description"] == "A brand-new description."


async def test_a_price_change_reaches_only_the_channel_that_shows_prices(world: Harness) -> None:
    await world.sync()
    chair = world.pick(eu=True)
    before = len(world.received())
    world.erp_sim.patch_item(chair, unitPrice=1234.5)

    await world.sync()

    assert [(i["channel"], i["sku"]) for i in world.received()[before:]] == [("web", chair)]
    assert world.catalog("web")[chair]["product"]["listPrice"] == "1234.50"


# ---- bad input -----------------------------------------------------------------------------


async def test_malformed_erp_rows_are_skipped_with_reasons_and_retried(world: Harness) -> None:
    first = await world.sync()
    assert first.complete and first.invalid == len(world.erp_sim.malformed())
    failures = {f.sku: f for f in await content.list_failures(world.tables, "erp")}
    assert set(failures) == world.erp_sim.malformed()
    reasons = " | ".join(f.error for f in failures.values())
    assert "name is required" in reasons and "not an absolute http(s) URL" in reasons
    for sku in failures:
        assert sku not in world.catalog("web")

    nameless = world.erp_sim.state.dataset.fixtures.items["emptyDisplayName"]
    world.erp_sim.patch_item(nameless, displayName="Now it has a name")
    await world.sync()

    assert world.catalog("web")[nameless]["product"]["name"] == "Now it has a name"
    remaining = {f.sku: f for f in await content.list_failures(world.tables, "erp")}
    assert nameless not in remaining
    assert all(f.attempts == 2 for f in remaining.values())  # the others were retried


class RejectOne:
    """Sends the real batches but blanks one product's name, which the storefront refuses."""

    def __init__(self, inner: ChannelAdapter, sku: str) -> None:
        self.inner, self.sku = inner, sku
        self.name, self.counters = inner.name, inner.counters

    async def push(self, batch: CatalogBatch) -> list[OperationResult]:
        upserts = [
            CatalogUpsert(u.sku, u.content_hash, {**u.product, "name": ""})
            if u.sku == self.sku
            else u
            for u in batch.upserts
        ]
        return await self.inner.push(replace(batch, upserts=upserts))


async def test_a_product_the_channel_rejects_is_recorded_and_retried_without_blocking_the_rest(
    world: Harness,
) -> None:
    victim = world.pick(eu=True)
    web = world.targets["web"]
    rejecting = {**world.targets, "web": ChannelTarget(web.profile, RejectOne(web.adapter, victim))}

    first = await world.sync(targets=rejecting)

    assert set(world.catalog("web")) == world.expected()["web"] - {victim}
    assert victim in world.catalog("b2b-eu")
    assert first.channels["web"].rejected == 1 and not first.channels["web"].error
    [failure] = await content.list_failures(world.tables, "web")
    assert failure.sku == victim and "name" in failure.error

    second = await world.sync()  # the storefront accepts it now

    assert victim in world.catalog("web")
    assert second.channels["web"].applied == 1
    assert await content.list_failures(world.tables, "web") == []


# ---- failures of a whole channel, crashes, time budget -----------------------------------


async def test_a_failing_channel_does_not_block_the_others_and_catches_up_later(
    world: Harness,
) -> None:
    faults = httpx.post(
        f"{world.storefront}/_sim/faults", json={"channel": "b2b-eu", "outage": True}, timeout=10
    )
    assert faults.status_code == 200

    first = await world.sync()

    assert set(world.catalog("web")) == world.expected()["web"]
    assert world.catalog("b2b-eu") == {}
    assert not first.complete and first.channels["b2b-eu"].error
    assert "503" in (first.channels["b2b-eu"].error or "")
    [record] = await content.recent_runs(world.tables, 1)
    assert record["outcome"] == "incomplete"
    assert record["channels"]["b2b-eu"]["failed"] > 0 and record["channels"]["web"]["failed"] == 0
    assert (await progress.read_watermarks(world.tables)).items is None  # the pass is still open

    httpx.post(f"{world.storefront}/_sim/faults", json={"channel": "b2b-eu"}, timeout=10)
    web_before = len(world.received("web"))
    second = await world.sync()

    assert second.complete and second.resumed and second.pass_id == first.pass_id
    assert set(world.catalog("b2b-eu")) == world.expected()["b2b-eu"]
    assert len(world.received("web")) == web_before  # web already had everything


async def test_a_worker_killed_mid_run_is_resumed_without_loss_or_duplicates(
    world: Harness, azurite_connection: str, table_prefix: str
) -> None:
    """A separate process runs the sync and is killed (os._exit) right after the storefront
    applied its third batch, before the product recorded it. The lease it held runs out, the
    next run resumes the open pass, and every product is applied exactly once."""
    settings = {
        "erp": world.erp_sim.url,
        "company": str(COMPANY),
        "storage": azurite_connection,
        "prefix": table_prefix,
        "storefront": world.storefront,
        "budgetSeconds": 8,
    }
    await run_until_killed(
        "tests.integration.content_crash_worker", settings, crash_worker.KILLED_EXIT
    )
    assert await content.recent_runs(world.tables, 1) == []  # it never got to record itself
    on_storefront = len(world.catalog("web"))
    recorded = ChannelHashes(world.tables, "web")
    await recorded.load_all()
    applied_not_recorded = on_storefront - len(recorded.catalog())
    assert 0 < len(recorded.catalog()) < on_storefront < len(world.expected()["web"])

    # The dead run's lease still holds for a few seconds: the next timer runs skip, a later
    # one gets it and resumes the pass (each recorded as the timer function records it).
    world.options = crash_worker.options(settings)
    finished: list[content.RunStats] = []

    async def timer_run() -> None:
        finished.append(await world.sync())

    timer = recorded_timer(crash_worker.TIMER, tables=lambda: world.tables)(timer_run)
    deadline = time.monotonic() + 30
    while not finished:
        assert time.monotonic() < deadline, "the killed run's lease never ran out"
        await timer()
        if not finished:
            await asyncio.sleep(0.5)
    (resumed,) = finished

    assert resumed.complete and resumed.resumed and resumed.mode == "full"
    expected = world.expected()
    for channel in ("web", "b2b-eu"):
        assert set(world.catalog(channel)) == expected[channel]
        applied = _applied(world.received(channel))
        assert {sku for _, sku in applied} == expected[channel] and max(applied.values()) == 1
    # What the storefront applied but the kill kept us from recording was sent once more,
    # and the storefront answered "unchanged" (no second change in its catalog, see above).
    assert resumed.channels["web"].unchanged == applied_not_recorded
    # The operations view tells what happened: the killed run ended without a record.
    statuses = await timer_runs.timer_statuses(world.tables, [crash_worker.TIMER])
    (history,) = [[run.result for run in s.history] for s in statuses]
    assert history[0] == "ok" and history[-1] == "interrupted", history
    assert set(history[1:-1]) <= {"skipped-lease-held"}


class SlowChannel:
    """Every batch takes 10 (fake) seconds."""

    def __init__(self, inner: ChannelAdapter, clock: list[float]) -> None:
        self.inner, self.clock = inner, clock
        self.name, self.counters = inner.name, inner.counters

    async def push(self, batch: CatalogBatch) -> list[OperationResult]:
        self.clock[0] += 10
        return await self.inner.push(batch)


async def test_a_run_stops_on_its_time_budget_and_the_next_runs_continue(world: Harness) -> None:
    clock = [0.0]
    slow = {
        name: ChannelTarget(t.profile, SlowChannel(t.adapter, clock))
        for name, t in world.targets.items()
    }
    world.options = replace(OPTIONS, budget_seconds=25)
    outcomes = []
    for _ in range(12):
        stats = await world.sync(targets=slow, monotonic=lambda: clock[0])
        outcomes.append(stats)
        if stats.complete:
            break
    assert len(outcomes) > 1 and outcomes[-1].complete
    assert all(s.stopped_by == "time budget" for s in outcomes[:-1])
    assert {s.pass_id for s in outcomes} == {outcomes[0].pass_id}
    expected = world.expected()
    for channel in ("web", "b2b-eu"):
        applied = _applied(world.received(channel))
        assert {sku for _, sku in applied} == expected[channel] and max(applied.values()) == 1
    assert (await progress.read_watermarks(world.tables)).items is not None
    assert await progress.load_checkpoint(world.tables) is None


async def test_every_run_makes_progress_even_when_it_starts_out_of_time(world: Harness) -> None:
    ticks = iter(range(0, 10**9, 1000))  # every reading of the clock is past any budget
    world.options = replace(OPTIONS, budget_seconds=1)
    runs = []
    while not (runs and runs[-1].complete):
        assert len(runs) < 30, "the pass never finished"
        runs.append(await world.sync(monotonic=lambda: float(next(ticks))))
    assert len(runs) > 1
    assert all(run.sent > 0 for run in runs[:-1])  # no run stopped before delivering a batch
    expected = world.expected()
    for channel in ("web", "b2b-eu"):
        applied = _applied(world.received(channel))
        assert {sku for _, sku in applied} == expected[channel] and max(applied.values()) == 1


async def test_overlapping_runs_cannot_both_work(world: Harness) -> None:
    held = await lease.acquire(world.tables, progress.JOB, timedelta(minutes=1))
    with pytest.raises(lease.LeaseHeld):
        await world.sync()
    assert world.webhook_requests() == 0
    await held.release()

    results = await asyncio.gather(world.sync(), world.sync(), return_exceptions=True)
    assert sum(isinstance(r, lease.LeaseHeld) for r in results) == 1
    assert sum(isinstance(r, content.RunStats) for r in results) == 1


# ---- deletions ---------------------------------------------------------------------------


async def test_blocked_items_go_at_once_and_deleted_items_in_the_nightly_pass(
    world: Harness,
) -> None:
    await world.sync()
    blocked = world.pick(eu=True)
    deleted_eu = world.pick(eu=True, exclude={blocked})
    deleted_web_only = world.pick(eu=False)
    world.erp_sim.patch_item(blocked, blocked=True)
    world.erp_sim.delete_item(deleted_eu)
    world.erp_sim.delete_item(deleted_web_only)

    delta = await world.sync()

    assert delta.mode == "delta"
    assert blocked not in world.catalog("web") and blocked not in world.catalog("b2b-eu")
    assert deleted_eu in world.catalog("web")  # a delta cannot see a deletion
    before = len(world.received())

    await content.request_full_pass(world.tables)  # what the nightly timer does first
    nightly = await world.sync()

    assert nightly.mode == "full" and nightly.complete
    deletes = sorted((i["channel"], i["sku"]) for i in world.received()[before:])
    assert deletes == sorted(
        [("web", deleted_eu), ("b2b-eu", deleted_eu), ("web", deleted_web_only)]
    )
    assert all(i["operation"] == "delete" for i in world.received()[before:])
    assert await progress.full_pass_request(world.tables) is None
    gone = await world.tables.get(HASHES_TABLE, partition_of("web", deleted_eu), deleted_eu)
    assert gone is None
