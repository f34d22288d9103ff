"""The price publisher: Business Central price data copied into Table storage for local quoting.

A delta run reads rows changed since each dataset's watermark (the client subtracts the
overlap window, so a row may be seen twice; writes are idempotent upserts). A full run reads
everything, stamps each row it writes with the run id and then sweeps rows the ERP no longer
has. Watermarks move only after a dataset is completely written, so a crash repeats work
instead of losing it. Every written batch is announced in a change feed that the quote
instances follow to refresh only what changed.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from shared.adapters.erp import models as erp
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.odata import Api
from shared.adapters.tables import TableOperation, TableStore
from shared.services import lease, price_data, sync_state

JOB = "price-publish"
FEED_TABLE = "PriceFeed"
FEED_PARTITION = "feed"
_FEED_PARTITIONS_PER_ROW = 500
_LEASE = timedelta(minutes=10)
_log = logging.getLogger(__name__)

Mode = Literal["delta", "full"]
PageSource = Callable[[ErpClient, datetime | None], AsyncIterator[Sequence[BaseModel]]]


@dataclass(frozen=True)
class Dataset:
    """One ERP entity set that the publisher copies into one table."""

    name: str
    table: str
    pages: PageSource
    to_entity: Callable[[Any, str], dict[str, Any]]


def _pages(entity_set: str, model: type[BaseModel], custom: bool) -> PageSource:
    api = Api.CUSTOM if custom else Api.STANDARD

    def read(erp_client: ErpClient, since: datetime | None) -> AsyncIterator[Sequence[BaseModel]]:
        return erp_client.iter_pages(entity_set, model, api=api, modified_since=since)

    return read


DATASETS: tuple[Dataset, ...] = (
    Dataset(
        "items",
        price_data.PRICE_TABLE,
        _pages("items", erp.Item, custom=False),
        price_data.item_entity,
    ),
    Dataset(
        "itemUnitsOfMeasure",
        price_data.PRICE_TABLE,
        _pages("itemUnitsOfMeasure", erp.ItemUnitOfMeasure, custom=True),
        price_data.unit_entity,
    ),
    Dataset(
        "priceListLines",
        price_data.PRICE_TABLE,
        _pages("priceListLines", erp.PriceListLine, custom=True),
        price_data.line_entity,
    ),
    Dataset(
        "currencyExchangeRates",
        price_data.PRICE_TABLE,
        _pages("currencyExchangeRates", erp.CurrencyExchangeRate, custom=False),
        price_data.rate_entity,
    ),
    Dataset(
        "customers",
        price_data.CUSTOMER_TABLE,
        _pages("customers", erp.Customer, custom=False),
        price_data.customer_entity,
    ),
    Dataset(
        "customerPricingProfiles",
        price_data.CUSTOMER_TABLE,
        _pages("customerPricingProfiles", erp.CustomerPricingProfile, custom=True),
        price_data.profile_entity,
    ),
)


@dataclass
class PublishReport:
    """What a run did; also stored as the run record."""

    mode: Mode
    run_id: str
    read: int = 0
    written: int = 0
    skipped: int = 0
    deleted: int = 0
    seconds: float = 0.0
    watermark: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "runId": self.run_id,
            "read": self.read,
            "written": self.written,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "seconds": round(self.seconds, 3),
            "watermark": self.watermark.isoformat() if self.watermark else None,
        }


async def announce(tables: TableStore, table: str, partitions: set[str]) -> None:
    """Tell quote instances which partitions changed (after the rows are written)."""
    ordered = sorted(partitions)
    now_ms = int(time.time() * 1000)
    for start in range(0, len(ordered), _FEED_PARTITIONS_PER_ROW):
        await tables.create(
            FEED_TABLE,
            {
                "PartitionKey": FEED_PARTITION,
                "RowKey": f"{now_ms:013d}-{uuid.uuid4().hex[:12]}",
                "table": table,
                "partitions": json.dumps(ordered[start : start + _FEED_PARTITIONS_PER_ROW]),
            },
        )


async def _write_page(
    tables: TableStore, dataset: Dataset, rows: Sequence[BaseModel], report: PublishReport
) -> datetime | None:
    entities = []
    newest: datetime | None = None
    for row in rows:
        report.read += 1
        try:
            entities.append(dataset.to_entity(row, report.run_id))
        except (ValueError, KeyError) as error:
            report.skipped += 1
            _log.warning("%s: skipped a row that cannot be stored: %s", dataset.name, error)
            continue
        modified = getattr(row, "last_modified_date_time", None)
        if modified is not None and (newest is None or modified > newest):
            newest = modified
    operations = [TableOperation("upsert", entity) for entity in entities]
    report.written += await tables.transact(dataset.table, operations, concurrency=8)
    if entities:
        await announce(tables, dataset.table, {str(e["PartitionKey"]) for e in entities})
    return newest


async def _sweep(tables: TableStore, table: str, run_id: str, report: PublishReport) -> None:
    """Delete rows the full run did not write: the ERP no longer has them."""
    stale: list[TableOperation] = []
    partitions: set[str] = set()
    async for row in tables.query(
        table, "runId ne @run", {"run": run_id}, ["PartitionKey", "RowKey"]
    ):
        stale.append(
            TableOperation("delete", {"PartitionKey": row.partition_key, "RowKey": row.row_key})
        )
        partitions.add(row.partition_key)
    if stale:
        report.deleted += await tables.transact(table, stale, concurrency=8)
        await announce(tables, table, partitions)


async def publish(
    erp_client: ErpClient,
    tables: TableStore,
    mode: Mode,
    datasets: Sequence[Dataset] = DATASETS,
) -> PublishReport:
    """Run one publish; ``lease.LeaseHeld`` if another run is in progress."""
    held = await lease.acquire(tables, JOB, _LEASE)
    record = sync_state.RunRecord(f"{JOB}-{mode}")
    report = PublishReport(mode=mode, run_id=record.run_id)
    started = time.perf_counter()
    try:
        for dataset in datasets:
            await _publish_dataset(erp_client, tables, dataset, mode, report, held)
        if mode == "full":
            for table in sorted({d.table for d in datasets}):
                await _sweep(tables, table, report.run_id, report)
        report.seconds = time.perf_counter() - started
        await sync_state.save_watermark(tables, JOB, report.watermark, datetime.now(UTC))
        record.counters.update(
            read=report.read, written=report.written, skipped=report.skipped, deleted=report.deleted
        )
        await record.finish(tables, "succeeded")
        _log.info("price publish (%s) done: %s", mode, report.as_dict())
        return report
    except Exception as error:
        record.counters.update(read=report.read, written=report.written)
        await record.finish(tables, "failed", f"{type(error).__name__}: {error}")
        raise
    finally:
        await held.release()


async def _publish_dataset(
    erp_client: ErpClient,
    tables: TableStore,
    dataset: Dataset,
    mode: Mode,
    report: PublishReport,
    held: lease.Lease,
) -> None:
    job = f"{JOB}:{dataset.name}"
    mark = await sync_state.read_watermark(tables, job)
    since = mark.value if mode == "delta" else None
    newest = mark.value
    read_before = report.read
    async for page in dataset.pages(erp_client, since):
        page_newest = await _write_page(tables, dataset, page, report)
        if page_newest is not None and (newest is None or page_newest > newest):
            newest = page_newest
        await held.renew(_LEASE)
        _log.info(
            "price publish %s: %s rows read so far (%s written, %s skipped)",
            dataset.name,
            report.read - read_before,
            report.written,
            report.skipped,
        )
    # Only now, with every page written, may the delta start later.
    await sync_state.save_watermark(tables, job, newest)
    if dataset.name == "priceListLines":
        report.watermark = newest
