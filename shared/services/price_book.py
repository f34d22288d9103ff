"""The per-instance price book: published price data held in memory for quoting.

Loaded once from Table storage, then kept current by following the publisher's change feed:
each refresh reads the feed rows written since the last one (with an overlap, because feed
rows of concurrent writers can land slightly out of order) and re-reads only the partitions
they name. A quote therefore never reads a table per line, and never calls the ERP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.adapters.tables import Row, TableStore
from shared.domain.pricing.errors import InvalidPriceListLine, InvalidPricingInput
from shared.domain.pricing.index import PriceIndex
from shared.domain.pricing.models import CustomerPricingContext, ItemPricingInfo
from shared.services import price_data, price_publisher, sync_state

_FEED_OVERLAP_MS = 120_000
_SEEN_FEED_ROWS = 10_000
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Freshness:
    """How current the published data is, as quotes report it."""

    data_as_of: datetime | None
    last_success_at: datetime | None
    stale: bool


@dataclass
class _Partition:
    """What one price partition contributed, so a refresh can replace it exactly."""

    line_keys: tuple[str, ...] = ()
    has_item: bool = False


class PriceBook:
    """Items, customers and the price index of one instance, refreshed from the change feed."""

    def __init__(
        self,
        tables: TableStore,
        *,
        refresh_interval: timedelta = timedelta(seconds=10),
        stale_after: timedelta = timedelta(minutes=15),
    ) -> None:
        self._tables = tables
        self._refresh_interval = refresh_interval.total_seconds()
        self._stale_after = stale_after
        self.index = PriceIndex()
        self.items: dict[str, ItemPricingInfo] = {}
        self.customers: dict[str, CustomerPricingContext] = {}
        # Per foreign currency: (starting date, local currency per unit), newest first.
        self.rates: dict[str, tuple[tuple[date, Decimal], ...]] = {}
        self._partitions: dict[str, _Partition] = {}
        self._feed_position = ""
        self._seen_feed: deque[str] = deque(maxlen=_SEEN_FEED_ROWS)
        self._seen_feed_set: set[str] = set()
        self._loaded = False
        self._checked_at = 0.0
        self._freshness = Freshness(None, None, True)
        self._lock = asyncio.Lock()

    @property
    def freshness(self) -> Freshness:
        return self._freshness

    def lcy_per_unit(self, currency: str, on: date) -> Decimal | None:
        """The exchange rate in force on a date (local currency per one unit), if published."""
        for starting, rate in self.rates.get(currency, ()):
            if starting <= on:
                return rate
        return None

    async def ensure_current(self) -> None:
        """Load on first use, then refresh at most once per interval (single flight)."""
        if self._loaded and time.monotonic() - self._checked_at < self._refresh_interval:
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
        async for row in self._tables.partition(
            price_publisher.FEED_TABLE, price_publisher.FEED_PARTITION
        ):
            latest = max(latest, row.row_key)
        return latest

    async def _load_all(self) -> None:
        started = time.perf_counter()
        # Taken before the scan: changes written during the scan are replayed by the feed.
        self._feed_position = _minus_overlap(await self._latest_feed_key())
        grouped: dict[str, list[Row]] = {}
        async for row in self._tables.all_rows(price_data.PRICE_TABLE):
            grouped.setdefault(row.partition_key, []).append(row)
        lines = []
        for partition, rows in grouped.items():
            lines.extend(self._apply_price_partition(partition, rows, bulk=True))
        self.index.load(lines)
        customers: dict[str, list[Row]] = {}
        async for row in self._tables.all_rows(price_data.CUSTOMER_TABLE):
            customers.setdefault(row.partition_key, []).append(row)
        for number, rows in customers.items():
            self._apply_customer_partition(number, rows)
        _log.info(
            "price book loaded: %s lines, %s items, %s customers in %.1fs",
            len(self.index),
            len(self.items),
            len(self.customers),
            time.perf_counter() - started,
        )

    async def _follow_feed(self) -> None:
        changed: dict[str, set[str]] = {}
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
            table = str(row.entity["table"])
            changed.setdefault(table, set()).update(json.loads(row.entity["partitions"]))
        self._feed_position = max(self._feed_position, _minus_overlap(newest))
        for partition in changed.get(price_data.PRICE_TABLE, set()):
            rows = [r async for r in self._tables.partition(price_data.PRICE_TABLE, partition)]
            self.index.upsert_many(self._apply_price_partition(partition, rows, bulk=False))
        for number in changed.get(price_data.CUSTOMER_TABLE, set()):
            rows = [r async for r in self._tables.partition(price_data.CUSTOMER_TABLE, number)]
            self._apply_customer_partition(number, rows)

    def _remember(self, feed_key: str) -> None:
        if len(self._seen_feed) == self._seen_feed.maxlen:
            self._seen_feed_set.discard(self._seen_feed[0])
        self._seen_feed.append(feed_key)
        self._seen_feed_set.add(feed_key)

    def _apply_price_partition(self, partition: str, rows: list[Row], *, bulk: bool) -> list[Any]:
        """Replace what a partition holds; returns its lines for the caller to index."""
        previous = self._partitions.pop(partition, _Partition())
        if not bulk:
            self.index.delete_many(previous.line_keys)
        if previous.has_item:
            self.items.pop(partition.split(":", 1)[1], None)
        if partition.startswith(price_data.CURRENCY_PARTITION_PREFIX):
            self._apply_rates(partition, rows)
            return []
        lines = []
        item_row: Mapping[str, Any] | None = None
        units = []
        for row in rows:
            kind = row.entity.get("kind")
            if kind == "line":
                try:
                    lines.append(price_data.line_from_entity(row.entity))
                except InvalidPriceListLine as error:
                    _log.warning("ignored an invalid price list line %s: %s", row.row_key, error)
            elif kind == "item":
                item_row = row.entity
            elif kind == "unit":
                units.append(row.entity)
        current = _Partition(line_keys=tuple(line.key for line in lines))
        if item_row is not None:
            try:
                item = price_data.item_from_rows(item_row, units)
            except InvalidPricingInput as error:
                _log.warning("ignored item %s: %s", item_row.get("number"), error)
            else:
                self.items[item.number] = item
                current.has_item = True
        if current.line_keys or current.has_item:
            self._partitions[partition] = current
        return lines

    def _apply_rates(self, partition: str, rows: list[Row]) -> None:
        currency = partition.removeprefix(price_data.CURRENCY_PARTITION_PREFIX)
        rates = sorted(
            (
                (date.fromisoformat(row.entity["startingDate"]), Decimal(row.entity["lcyPerUnit"]))
                for row in rows
                if row.entity.get("kind") == "rate"
            ),
            reverse=True,
        )
        if rates:
            self.rates[currency] = tuple(rates)
        else:
            self.rates.pop(currency, None)

    def _apply_customer_partition(self, number: str, rows: list[Row]) -> None:
        by_kind = {row.entity.get("kind"): row.entity for row in rows}
        customer = by_kind.get("customer")
        if customer is None:
            self.customers.pop(number, None)
            return
        try:
            self.customers[number] = price_data.customer_from_rows(customer, by_kind.get("profile"))
        except InvalidPricingInput as error:
            _log.warning("ignored customer %s: %s", number, error)

    async def _read_freshness(self) -> None:
        mark = await sync_state.read_watermark(self._tables, price_publisher.JOB)
        now = datetime.now(UTC)
        stale = mark.last_success_at is None or now - mark.last_success_at > self._stale_after
        self._freshness = Freshness(mark.value, mark.last_success_at, stale)


def _minus_overlap(feed_key: str) -> str:
    """A feed position a little before ``feed_key``, so late-landing rows are not skipped."""
    if not feed_key:
        return ""
    millis = int(feed_key.split("-", 1)[0])
    return f"{max(0, millis - _FEED_OVERLAP_MS):013d}"
