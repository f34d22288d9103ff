"""The per-instance price book: published price data held in memory for quoting.

Loaded from the current snapshot plus the delta rows written after it, then kept current by
following the publisher's change feed: each refresh reads the feed rows written since the last
one (with an overlap, because feed rows can land slightly out of order) and point-reads just
the records they name, or reloads everything when a new snapshot is announced. A quote
therefore never reads a table per line, and never calls the ERP.

A load from the snapshot blob is the cold-start path: it keeps the blob's columns as the
storage of lines, items and units and builds each object when a quote first touches it
(``snapshot_lines``, ``item_book``), so a new instance quotes within seconds instead of
building a million lines first. The table load (the fallback) builds every line up front.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from shared.adapters.ports import TableStorage
from shared.adapters.stores import price_data, price_snapshot, sync_state
from shared.adapters.stores.price_data import LOCAL_CURRENCY_KEY, Record
from shared.domain.pricing.currency import CurrencyPrecision, CurrencyTable
from shared.domain.pricing.errors import InvalidPricingInput
from shared.domain.pricing.index import PriceIndex, PriceLines
from shared.domain.pricing.models import CustomerPricingContext
from shared.services.pricing import publisher as price_publisher
from shared.services.pricing import records
from shared.services.pricing.grouped import GroupNumbers
from shared.services.pricing.item_book import ItemBook
from shared.services.pricing.snapshot_lines import SnapshotLines

_FEED_OVERLAP_MS = 120_000
_SEEN_FEED_ROWS = 10_000
_POINT_READS_AT_ONCE = 16
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Freshness:
    """How current the published data is, as quotes report it."""

    data_as_of: datetime | None
    last_success_at: datetime | None
    stale: bool


class _Data:
    """Everything one load or refresh builds; swapped in whole after a full load."""

    def __init__(
        self, index: PriceIndex | SnapshotLines | None = None, items: ItemBook | None = None
    ) -> None:
        # A load from the tables builds every line (PriceIndex); one from the blob keeps the
        # snapshot's columns and builds a line when a quote touches it (SnapshotLines).
        self.index: PriceIndex | SnapshotLines = PriceIndex() if index is None else index
        self.items = ItemBook() if items is None else items
        self.customers: dict[str, CustomerPricingContext] = {}
        self.rates: dict[str, tuple[tuple[date, Decimal], ...]] = {}
        self.customer_rows: dict[str, Record] = {}
        self.profiles: dict[str, Record] = {}
        self.rate_rows: dict[str, Record] = {}
        # Currency code ("" = local currency) -> precisions, as the ERP rounds them.
        self.roundings: dict[str, CurrencyPrecision] = {}
        # Tables built over `roundings` per base table, so a quote does not rebuild one.
        self.currency_tables: dict[int, tuple[CurrencyTable, CurrencyTable]] = {}

    def apply(self, dataset: str, key: str, record: Record | None) -> None:
        """Set (or with None remove) one record, and rebuild what depends on it."""
        if dataset == "lines":
            if record is None:
                self.index.delete(key)
                return
            line = records.parse_line(record)
            if line is not None:
                self.index.upsert(line)
            return
        if dataset == "items":
            self.items.set_item(key, record)
        elif dataset == "units":
            number, code = key.split("|", 1)
            self.items.set_unit(number, code, None if record is None else record[2])
        elif dataset == "customers":
            self._set(self.customer_rows, key, record)
            self._rebuild_customer(key)
        elif dataset == "profiles":
            self._set(self.profiles, key, record)
            self._rebuild_customer(key)
        elif dataset == "rates":
            self._set(self.rate_rows, key, record)
            self._rebuild_rates(key.split("|", 1)[0])
        elif dataset == "roundings":
            code = "" if key == LOCAL_CURRENCY_KEY else key
            self.currency_tables.clear()
            if record is None:
                self.roundings.pop(code, None)
            else:
                self.roundings[code] = CurrencyPrecision(Decimal(record[1]), Decimal(record[2]))

    def describe(self) -> str:
        """Counts for the load's log line, without building every lazily held object."""
        if isinstance(self.index, SnapshotLines):
            return (
                f"{self.index.snapshot_rows} snapshot lines, "
                f"{self.items.snapshot_rows} snapshot items (built on use)"
            )
        return f"{len(self.index)} lines, {len(self.items)} items"

    @staticmethod
    def _set(rows: dict[str, Record], key: str, record: Record | None) -> None:
        if record is None:
            rows.pop(key, None)
        else:
            rows[key] = record

    def _rebuild_customer(self, number: str) -> None:
        row = self.customer_rows.get(number)
        if row is None:
            self.customers.pop(number, None)
            return
        profile = self.profiles.get(number)
        _, currency, _blocked = row
        try:
            self.customers[number] = CustomerPricingContext(
                customer_no=number,
                price_group=profile[1] if profile else "",
                discount_group=profile[2] if profile else "",
                currency_code=(profile[3] if profile else "") or currency,
                allow_line_disc=bool(profile[4]) if profile else True,
                # Records published before campaigns were part of the profile have 5 fields.
                active_campaigns=frozenset(profile[5] if profile and len(profile) > 5 else ()),
            )
        except InvalidPricingInput as error:
            self.customers.pop(number, None)
            _log.warning("ignored customer %s: %s", number, error)

    def _rebuild_rates(self, currency: str) -> None:
        rates = sorted(
            (
                (date.fromisoformat(record[1]), Decimal(record[2]))
                for key, record in self.rate_rows.items()
                if key.split("|", 1)[0] == currency
            ),
            reverse=True,
        )
        if rates:
            self.rates[currency] = tuple(rates)
        else:
            self.rates.pop(currency, None)


class PriceBook:
    """Items, customers, rates and the price index of one instance, kept current."""

    def __init__(
        self,
        tables: TableStorage,
        *,
        refresh_interval: timedelta = timedelta(seconds=10),
        stale_after: timedelta = timedelta(minutes=15),
        snapshots: price_snapshot.SnapshotBlobs | None = None,
    ) -> None:
        self._tables = tables
        self._snapshots = snapshots
        # Where the last full load came from: "blob", "tables" (or "" before the first).
        self.loaded_from = ""
        self._refresh_interval = refresh_interval.total_seconds()
        self._stale_after = stale_after
        self._data = _Data()
        self._snapshot: price_publisher.Snapshot | None = None
        self._feed_position = ""
        self._seen_feed: deque[str] = deque(maxlen=_SEEN_FEED_ROWS)
        self._seen_feed_set: set[str] = set()
        self._loaded = False
        self._checked_at = 0.0
        self._freshness = Freshness(None, None, True)
        self._lock = asyncio.Lock()

    @property
    def index(self) -> PriceLines:
        return self._data.index

    @property
    def items(self) -> ItemBook:
        return self._data.items

    @property
    def customers(self) -> dict[str, CustomerPricingContext]:
        return self._data.customers

    @property
    def freshness(self) -> Freshness:
        return self._freshness

    def currency_table(self, base: CurrencyTable) -> CurrencyTable:
        """`base` (the local currency code, the fallbacks) with the ERP's own precisions on
        top: each currency's rounding as published, the local currency's as the default.
        Built once per base and published data, not per quote."""
        data = self._data
        cached = data.currency_tables.get(id(base))
        if cached is not None and cached[0] is base:
            return cached[1]
        roundings = data.roundings
        foreign = {code: p for code, p in roundings.items() if code}
        table = CurrencyTable(
            local_currency_code=base.local_currency_code,
            precisions={
                **base.precisions,
                base.local_currency_code: roundings.get("", base.default_precision),
                **foreign,
            },
            default_precision=roundings.get("", base.default_precision),
        )
        data.currency_tables[id(base)] = (base, table)
        return table

    def lcy_per_unit(self, currency: str, on: date) -> Decimal | None:
        """The exchange rate in force on a date (local currency per one unit), if published."""
        for starting, rate in self._data.rates.get(currency, ()):
            if starting <= on:
                return rate
        return None

    async def ensure_current(self) -> None:
        """Load on first use, then refresh at most once per interval (single flight).

        Once loaded, a caller never waits for a refresh another caller is running: it is
        served the data as it stands, and the refresh swaps its result in when done. So a
        reload after a full publish (seconds) holds up at most the one caller that runs it,
        not every quote meanwhile."""
        if self._loaded and (
            self._lock.locked() or time.monotonic() - self._checked_at < self._refresh_interval
        ):
            return
        async with self._lock:
            if self._loaded and time.monotonic() - self._checked_at < self._refresh_interval:
                return
            if not self._loaded:
                await self._load_all()
                self._loaded = True
            else:
                await self._follow_feed()
            await self._read_freshness()
            self._checked_at = time.monotonic()

    async def _latest_feed_key(self) -> str:
        latest = ""
        async for row in self._tables.query(
            price_publisher.FEED_TABLE,
            "PartitionKey eq @pk",
            {"pk": price_publisher.FEED_PARTITION},
            ["PartitionKey", "RowKey"],
        ):
            latest = max(latest, row.row_key)
        return latest

    async def _load_all(self) -> None:
        started = time.perf_counter()
        # Taken before reading: changes written meanwhile are replayed from the feed.
        self._feed_position = _minus_overlap(await self._latest_feed_key())
        snapshot = await price_publisher.current_snapshot(self._tables)
        # The deltas are read before the snapshot is built: building is seconds of CPU with
        # no I/O, in which the storage service may close the idle pooled connections, and a
        # request that is not retried (the first use of a table creates it) would then fail.
        deltas = [
            (row.partition_key, row.row_key, json.loads(row.entity["record"]))
            async for row in self._tables.all_rows(price_data.DELTA_TABLE)
            if snapshot is None or row.entity["writtenAt"] >= snapshot.started_at
        ]
        data = _Data()
        from_blob = await self._from_blob(snapshot)
        if from_blob is not None:
            data = from_blob
            self.loaded_from = "blob"
        elif snapshot is not None:
            self.loaded_from = "tables"
            index = PriceIndex()
            data = _Data(index)
            for dataset in price_data.DATASET_NAMES:
                rows = self._snapshot_records(snapshot.run_id, dataset)
                if dataset == "lines":
                    # Domain lines only: a million raw JSON records would double the memory.
                    lines = []
                    async for _, record in rows:
                        line = records.parse_line(record)
                        if line is not None:
                            lines.append(line)
                    index.load(lines)
                    del lines
                else:
                    async for key, record in rows:
                        data.apply(dataset, key, record)
        for dataset, key, record in deltas:
            data.apply(dataset, key, record)
        self._data, self._snapshot = data, snapshot
        # Millions of long-lived, acyclic objects: keep the cyclic collector from walking
        # them on every full collection (a pause that would land on some quote).
        gc.collect()
        gc.freeze()
        _log.info(
            "price book loaded from %s: %s, %s customers in %.1fs",
            self.loaded_from,
            data.describe(),
            len(data.customers),
            time.perf_counter() - started,
        )

    async def _from_blob(self, snapshot: price_publisher.Snapshot | None) -> _Data | None:
        """The snapshot built from its blob, every check passed; None (and why, logged) to
        load from the tables instead. Lines, items and units stay as the frames' columns
        (built on use); the few customers, rates and roundings are applied as records."""
        if self._snapshots is None or snapshot is None:
            return None
        try:
            content = await price_snapshot.read_snapshot(self._snapshots, snapshot.run_id)
            # Seconds of CPU: built in a worker thread so the event loop keeps serving the
            # other requests of this instance (quotes on the current data among them).
            return await asyncio.to_thread(_build_from_blob, content)
        except price_snapshot.SnapshotRejected as error:
            _log.warning("price snapshot blob not used (%s): loading from the tables", error)
        except Exception as error:  # the blob service down: the tables still serve
            _log.warning("price snapshot blob unreadable (%s): loading from the tables", error)
        return None

    async def _snapshot_records(
        self, run_id: str, dataset: str
    ) -> AsyncIterator[tuple[str, Record]]:
        partition = price_data.snapshot_partition(run_id, dataset)
        async for row in self._tables.partition(price_data.SNAPSHOT_TABLE, partition):
            for index in range(int(row.entity["chunks"])):
                for key, record in json.loads(row.entity[f"r{index}"]):
                    yield key, record

    async def _follow_feed(self) -> None:
        changed: set[tuple[str, str]] = set()
        reload = False
        newest = self._feed_position
        async for row in self._tables.query(
            price_publisher.FEED_TABLE,
            "PartitionKey eq @pk and RowKey gt @after",
            {"pk": price_publisher.FEED_PARTITION, "after": self._feed_position},
        ):
            newest = max(newest, row.row_key)
            if row.row_key in self._seen_feed_set:
                continue
            self._remember(row.row_key)
            if "reload" in row.entity:
                reload = reload or (
                    self._snapshot is None or row.entity["reload"] != self._snapshot.run_id
                )
            else:
                changed.update((d, k) for d, k in json.loads(row.entity["keys"]))
        if reload:
            await self._load_all()
            return
        self._feed_position = max(self._feed_position, _minus_overlap(newest))
        gate = asyncio.Semaphore(_POINT_READS_AT_ONCE)

        async def read(dataset: str, key: str) -> tuple[str, str, Record | None]:
            async with gate:
                row = await self._tables.get(price_data.DELTA_TABLE, dataset, key)
            return dataset, key, None if row is None else json.loads(row.entity["record"])

        for dataset, key, record in await asyncio.gather(*(read(d, k) for d, k in changed)):
            # A delta row already cleaned up belongs to a superseded snapshot: the reload
            # entry that follows brings its data; nothing to do here.
            if record is not None:
                self._data.apply(dataset, key, record)

    def _remember(self, feed_key: str) -> None:
        if len(self._seen_feed) == self._seen_feed.maxlen:
            self._seen_feed_set.discard(self._seen_feed[0])
        self._seen_feed.append(feed_key)
        self._seen_feed_set.add(feed_key)

    async def _read_freshness(self) -> None:
        mark = await sync_state.read_watermark(self._tables, price_publisher.JOB)
        now = datetime.now(UTC)
        stale = mark.last_success_at is None or now - mark.last_success_at > self._stale_after
        self._freshness = Freshness(mark.value, mark.last_success_at, stale)


def _build_from_blob(content: price_snapshot.SnapshotContent) -> _Data:
    """The book's data from a checked blob: lines, items and units stay as the frames'
    columns (found through the blob's directory, or for an older blob grouped here with the
    item numbers held once for all three); the few customers, rates and roundings are applied
    as records. ``SnapshotRejected`` if a frame does not decode or fit."""
    numbers, directory = GroupNumbers(), content.directory
    lines = SnapshotLines(numbers=numbers, directory=directory.get("lines"))
    data = _Data(lines, ItemBook(numbers=numbers, directory=directory))
    for frame in content.column_frames():
        if frame.dataset == "lines":
            lines.add(frame)
        elif frame.dataset == "items":
            data.items.add_items(frame)
        elif frame.dataset == "units":
            data.items.add_units(frame)
        else:
            for key, record in frame.rows():
                data.apply(frame.dataset, key, record)
    lines.finish()
    data.items.finish()
    return data


def _minus_overlap(feed_key: str) -> str:
    """A feed position a little before ``feed_key``, so late-landing rows are not skipped."""
    if not feed_key:
        return ""
    millis = int(feed_key.split("-", 1)[0])
    return f"{max(0, millis - _FEED_OVERLAP_MS):013d}"
