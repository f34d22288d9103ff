"""The content sync: ERP items and content, joined and checked, pushed to every channel.

A run holds the ``content-sync`` lease (overlapping runs cannot both work), then continues the
pass under way or starts one:

- delta: first the SKUs that failed last time, then items changed since the items watermark
  (their content read by number), then content changed since the content watermark (their
  items read by number). Each product goes to every channel whose stored content hash differs.
- full (nightly, or the very first sync): every item, then every content row joined to it,
  then items without content; finally the sweep: SKUs a channel has that the ERP no longer has
  (deleted) are deleted there. Blocked items and items a channel no longer sells are deleted
  in both modes.

Acknowledged hashes and failures are written after each page; the watermarks move only when
the whole pass was acknowledged by every channel. A run that reaches its time budget stops
after the batch in flight and leaves the pass to the next run, which re-reads the same window
(a few ERP pages) and skips, by content hash, what the channels already have. So a crash, a
timeout or a down channel costs repeated reads, never a lost or duplicated update.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.channels import ChannelAdapter
from shared.adapters.erp.client import ErpClient
from shared.adapters.ports import TableStorage
from shared.adapters.stores import lease
from shared.adapters.stores.content_failures import ERP_SCOPE, FailureLog
from shared.adapters.stores.content_hashes import FULL_LOAD_THRESHOLD, ChannelHashes
from shared.domain.content.listing import ChannelProfile
from shared.domain.content.planning import deletions, plan_channel
from shared.domain.content.product import (
    InvalidProduct,
    Outcome,
    WithdrawnProduct,
    normalise,
)
from shared.domain.content.source import SourceContent, SourceItem
from shared.services.content import progress
from shared.services.content.delivery import BatchLimits, ChannelDelivery
from shared.services.content.erp_source import ErpContentSource, RowProblem, SourcePage
from shared.services.content.progress import JOB, Checkpoint, Mode, Watermarks
from shared.services.content.runs import RunStats, record_run

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncOptions:
    """How a run is sized; the defaults suit Business Central online and the demo channels."""

    budget_seconds: float = 300.0
    erp_page_size: int = 5_000
    lookup_size: int = 100
    batch: BatchLimits = field(default_factory=BatchLimits)
    # The currency the ERP keeps item list prices in (its local currency).
    price_currency: str = "USD"
    # The lease outlives the budget by this much, so a run that overruns is not joined.
    lease_margin_seconds: float = 300.0
    hash_full_load_threshold: int = FULL_LOAD_THRESHOLD


@dataclass(frozen=True)
class ChannelTarget:
    """A configured channel: what it sells and how to reach it."""

    profile: ChannelProfile
    adapter: ChannelAdapter


async def run_content_sync(
    erp_client: ErpClient,
    tables: TableStorage,
    targets: Mapping[str, ChannelTarget],
    requested: Mode = "delta",
    options: SyncOptions | None = None,
    *,
    monotonic: Callable[[], float] = time.monotonic,
) -> RunStats:
    """One run; ``lease.LeaseHeld`` when another run is working (then nothing was done)."""
    options = options or SyncOptions()
    held = await lease.acquire(
        tables, JOB, timedelta(seconds=options.budget_seconds + options.lease_margin_seconds)
    )
    started_at = datetime.now(UTC)
    run_id = uuid.uuid4().hex
    stats = RunStats(run_id, requested, run_id, resumed=False)
    try:
        checkpoint = await progress.load_checkpoint(tables)
        full_request = await progress.full_pass_request(tables)
        marks = await progress.read_watermarks(tables)
        mode = _choose_mode(requested, checkpoint, full_request, marks)
        if checkpoint is not None and checkpoint.mode == mode:
            checkpoint.runs += 1
            checkpoint.last_run_id = run_id
        else:
            checkpoint = Checkpoint(mode, run_id, started_at, last_run_id=run_id)
        await progress.save_checkpoint(tables, checkpoint)
        stats = RunStats(run_id, mode, checkpoint.pass_id, checkpoint.runs > 1, watermarks=marks)
        work = _Pass(erp_client, tables, targets, options, stats, checkpoint, held, monotonic)
        stats.complete = await work.run()
        if stats.complete:
            stats.watermarks = work.new_watermarks()
            await progress.save_watermarks(tables, stats.watermarks)
            await progress.clear_checkpoint(tables)
            if mode == "full" and full_request is not None:
                await progress.clear_full_pass_request(tables, full_request)
        outcome = "succeeded" if stats.complete else "incomplete"
        await record_run(tables, stats, started_at, outcome)
        _log.info("content sync %s run %s: %s", mode, outcome, stats.counters())
        return stats
    except Exception as error:
        # The record must not hide the failure, and its own failure must not replace it.
        with contextlib.suppress(Exception):
            await record_run(
                tables, stats, started_at, "failed", f"{type(error).__name__}: {error}"
            )
        raise
    finally:
        await held.release()


def _choose_mode(
    requested: Mode,
    checkpoint: Checkpoint | None,
    full_request: str | None,
    marks: Watermarks,
) -> Mode:
    if requested == "full" or full_request is not None:
        return "full"
    if checkpoint is not None:
        return checkpoint.mode  # finish the pass under way first
    if marks.items is None and marks.content is None:
        return "full"  # nothing was ever synced: a delta from "the beginning" is a full pass
    return "delta"


class _Pass:
    """One run's work on the current pass."""

    def __init__(
        self,
        erp_client: ErpClient,
        tables: TableStorage,
        targets: Mapping[str, ChannelTarget],
        options: SyncOptions,
        stats: RunStats,
        checkpoint: Checkpoint,
        held: lease.Lease,
        monotonic: Callable[[], float],
    ) -> None:
        self._tables = tables
        self._options = options
        self._stats = stats
        self._checkpoint = checkpoint
        self._lease = held
        self._source = ErpContentSource(erp_client, options.erp_page_size, options.lookup_size)
        self._failures = FailureLog(tables, stats.run_id)
        deadline = monotonic() + options.budget_seconds

        def out_of_time() -> bool:
            # Only once this run delivered something: a resumed run first re-reads and skips
            # what the channels already have, and stopping before any new batch would leave
            # the next run exactly where this one started.
            return monotonic() >= deadline and any(
                d.batches_sent for d in self._deliveries.values()
            )

        self._out_of_time: Callable[[], bool] = out_of_time
        self._profiles = {name: target.profile for name, target in targets.items()}
        self._deliveries = {
            name: ChannelDelivery(
                target.adapter,
                ChannelHashes(tables, name, full_load_threshold=options.hash_full_load_threshold),
                self._failures,
                stats.channel(name),
                stats.run_id,
                options.batch,
                self._out_of_time,
            )
            for name, target in targets.items()
        }
        self._categories: dict[str, str] = {}
        self._processed: set[str] = set()
        self._newest_items = stats.watermarks.items
        self._newest_content = stats.watermarks.content

    async def run(self) -> bool:
        """True when the pass is finished and every channel acknowledged all of it."""
        await self._failures.load()
        categories = await self._source.categories()
        self._read(categories)
        self._categories = dict(categories.records)
        finished = await (self._full() if self._stats.mode == "full" else self._delta())
        if not finished:
            self._stats.stopped_by = "time budget"
        return finished and all(d.down is None for d in self._deliveries.values())

    def new_watermarks(self) -> Watermarks:
        return Watermarks(self._newest_items, self._newest_content)

    # ---- delta -------------------------------------------------------------------------

    async def _delta(self) -> bool:
        await self._retry_failures()
        marks = self._stats.watermarks
        self._checkpoint.phase = "items"
        async with contextlib.aclosing(self._source.item_pages(marks.items)) as item_pages:
            async for page in item_pages:
                self._read(page)
                self._newest_items = _newer(self._newest_items, page.newest)
                items = [i for i in page.records if i.sku not in self._processed]
                contents = await self._source.content_by_number(i.sku for i in items)
                self._read(contents)
                await self._process(self._join(items, contents), page.problems)
                if self._out_of_time():
                    return False
        self._checkpoint.phase = "content"
        async with contextlib.aclosing(self._source.content_pages(marks.content)) as pages:
            async for content_page in pages:
                self._read(content_page)
                self._newest_content = _newer(self._newest_content, content_page.newest)
                wanted = [c.sku for c in content_page.records if c.sku not in self._processed]
                wanted += [
                    p.sku for p in content_page.problems if p.sku and p.sku not in self._processed
                ]
                found = await self._source.items_by_number(wanted)
                self._read(found)
                # Content whose item is gone is an orphan: nothing to show, nothing to send.
                await self._process(self._join(found.records, content_page), found.problems)
                if self._out_of_time():
                    return False
        return await self._drain()

    async def _retry_failures(self) -> None:
        """Read the SKUs that failed last time again and push them like any change."""
        skus = sorted(self._failures.skus_to_retry() - self._processed)
        if not skus:
            return
        self._checkpoint.phase = "retries"
        items = await self._source.items_by_number(skus)
        self._read(items)
        contents = await self._source.content_by_number(i.sku for i in items.records)
        self._read(contents)
        outcomes = self._join(items.records, contents)
        present = {i.sku for i in items.records} | {p.sku for p in items.problems if p.sku}
        # Gone from the ERP: channels that still have it delete it, failures are resolved.
        outcomes += [WithdrawnProduct(sku, "not in the ERP") for sku in skus if sku not in present]
        await self._process(outcomes, items.problems)

    # ---- full --------------------------------------------------------------------------

    async def _full(self) -> bool:
        self._checkpoint.phase = "reading items"
        items: dict[str, SourceItem] = {}
        present: set[str] = set()
        async with contextlib.aclosing(self._source.item_pages(None)) as item_pages:
            async for page in item_pages:
                self._read(page)
                self._newest_items = _newer(self._newest_items, page.newest)
                items.update((item.sku, item) for item in page.records)
                for problem in page.problems:
                    if problem.sku:
                        present.add(problem.sku)
                        self._record_invalid(problem.sku, problem.reason)
        present.update(items)
        await asyncio.gather(*(d.hashes.load_all() for d in self._deliveries.values()))

        self._checkpoint.phase = "content"
        async with contextlib.aclosing(self._source.content_pages(None)) as pages:
            async for content_page in pages:
                self._read(content_page)
                self._newest_content = _newer(self._newest_content, content_page.newest)
                skus = [c.sku for c in content_page.records]
                skus += [p.sku for p in content_page.problems if p.sku]
                joined = [
                    items[sku]
                    for sku in dict.fromkeys(skus)
                    if sku in items and sku not in self._processed
                ]
                unreadable = [p for p in content_page.problems if not p.sku]
                await self._process(self._join(joined, content_page), unreadable)
                if self._out_of_time():
                    return False

        self._checkpoint.phase = "items without content"
        rest = [item for sku, item in items.items() if sku not in self._processed]
        size = self._options.erp_page_size
        for start in range(0, len(rest), size):
            chunk = rest[start : start + size]
            await self._process([normalise(i, None, self._categories) for i in chunk], [])
            if self._out_of_time():
                return False

        if not await self._drain():
            return False
        self._checkpoint.phase = "sweep"
        return await self._sweep(present)

    async def _sweep(self, present: set[str]) -> bool:
        """Delete from each channel the SKUs it has and the ERP no longer has.

        False when the time budget cut it short (a down channel is the caller's concern).
        """
        cut_short = False

        async def sweep(delivery: ChannelDelivery) -> None:
            nonlocal cut_short
            if delivery.down is not None:
                return
            catalog = delivery.hashes.catalog()
            gone = sorted(sku for sku in catalog if sku not in present)
            if gone and not await delivery.deliver(deletions(gone, catalog)):
                cut_short |= delivery.down is None

        await _all(sweep(d) for d in self._deliveries.values())
        for delivery in self._deliveries.values():
            await delivery.flush()
        for sku in self._failures.skus_to_retry() - present:
            self._failures.resolve(ERP_SCOPE, sku)
            for delivery in self._deliveries.values():
                delivery.resolve_quietly(sku)
        await self._failures.flush()
        return not cut_short

    # ---- shared ------------------------------------------------------------------------

    def _join(
        self, items: Iterable[SourceItem], contents: SourcePage[SourceContent]
    ) -> list[Outcome]:
        by_sku = {content.sku: content for content in contents.records}
        broken = {p.sku: p.reason for p in contents.problems if p.sku}
        outcomes: list[Outcome] = []
        for item in items:
            reason = broken.get(item.sku)
            if reason is not None and not item.blocked:
                outcomes.append(InvalidProduct(item.sku, (f"content row: {reason}",)))
            else:
                outcomes.append(normalise(item, by_sku.get(item.sku), self._categories))
        return outcomes

    async def _process(self, outcomes: list[Outcome], problems: Sequence[RowProblem]) -> None:
        """Send ``outcomes`` to every channel, then store what was acknowledged."""
        for problem in problems:
            if problem.sku:
                self._record_invalid(problem.sku, problem.reason)
            else:
                self._stats.invalid += 1
                _log.warning("content sync: unreadable ERP row skipped: %s", problem.reason)
        invalid: set[str] = set()
        for outcome in outcomes:
            if isinstance(outcome, InvalidProduct):
                invalid.add(outcome.sku)
                self._record_invalid(outcome.sku, outcome.reason)
                continue
            self._failures.resolve(ERP_SCOPE, outcome.sku)
            if isinstance(outcome, WithdrawnProduct):
                self._stats.withdrawn += 1
        self._stats.products += len(outcomes)
        self._processed.update(outcome.sku for outcome in outcomes)
        await _all(self._deliver(name, outcomes, invalid) for name in self._deliveries)
        for delivery in self._deliveries.values():
            await delivery.flush()
        await self._failures.flush()
        self._checkpoint.pages_done += 1
        self._checkpoint.products_done += len(outcomes)
        await progress.save_checkpoint(self._tables, self._checkpoint)
        await self._lease.renew(
            timedelta(seconds=self._options.budget_seconds + self._options.lease_margin_seconds)
        )

    async def _deliver(self, name: str, outcomes: list[Outcome], invalid: set[str]) -> None:
        delivery = self._deliveries[name]
        stats = self._stats.channel(name)
        if delivery.down is not None:
            # Not even compared: the pass stays open, the next run plans them for this channel.
            stats.deferred += len(outcomes) - len(invalid)
            return
        stored = await delivery.hashes.hashes_for([outcome.sku for outcome in outcomes])
        plan = plan_channel(outcomes, self._profiles[name], stored, self._options.price_currency)
        stats.skipped += plan.unchanged
        stats.not_sold += plan.not_sold
        planned = {operation.sku for operation in plan.operations}
        for outcome in outcomes:
            if outcome.sku not in planned and outcome.sku not in invalid:
                delivery.resolve_quietly(outcome.sku)
        if plan.operations:
            await delivery.deliver(plan.operations, final=False)

    async def _drain(self) -> bool:
        """Send what the channels' last, partly filled batches still hold; False if cut short."""
        cut_short = False

        async def drain(delivery: ChannelDelivery) -> None:
            nonlocal cut_short
            if not await delivery.deliver([]) and delivery.down is None:
                cut_short = True

        await _all(drain(d) for d in self._deliveries.values())
        for delivery in self._deliveries.values():
            await delivery.flush()
        await self._failures.flush()
        return not cut_short

    def _record_invalid(self, sku: str, reason: str) -> None:
        self._stats.invalid += 1
        self._failures.record(ERP_SCOPE, sku, "erp-invalid", reason)

    def _read(self, page: SourcePage[Any]) -> None:
        self._stats.read += page.rows
        self._stats.erp_requests += page.requests


async def _all(work: Iterable[Awaitable[None]]) -> None:
    """Run the channels side by side; a crash in one still lets the others finish first."""
    results = await asyncio.gather(*work, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _newer(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current
