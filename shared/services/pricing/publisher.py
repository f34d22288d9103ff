"""The price publisher: Business Central price data copied into Table storage for local quoting.

A delta run reads rows changed since each dataset's watermark (the client subtracts the
overlap window, so a row may be seen twice; the delta rows are idempotent upserts) and
announces the changed keys in a change feed that quote instances follow. A full run writes a
new snapshot of everything, points instances at it (a ``reload`` feed entry) and drops what it
supersedes, which is also how rows deleted in the ERP disappear. Watermarks and the snapshot
pointer move only after everything before them is written, so a crash repeats work instead
of losing it. A lease keeps two runs from working at once.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.odata import Api
from shared.adapters.ports import TableStorage
from shared.adapters.stores import lease, price_data, price_snapshot, sync_state
from shared.adapters.stores.price_data import DATASETS, Dataset, Record
from shared.adapters.tables import TableOperation

JOB = "price-publish"
FEED_TABLE = "PriceFeed"
FEED_PARTITION = "feed"
SNAPSHOT_POINTER = "snapshot"
_FEED_KEYS_PER_ROW = 400
_FEED_RETENTION = timedelta(days=2)
_LEASE = timedelta(minutes=10)
_log = logging.getLogger(__name__)

Mode = Literal["delta", "full"]


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


@dataclass(frozen=True)
class Snapshot:
    """The snapshot instances load: which run wrote it and when that run started."""

    run_id: str
    started_at: datetime


def _feed_key() -> str:
    return f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:12]}"


async def announce(tables: TableStorage, keys: Sequence[tuple[str, str]]) -> None:
    """Tell quote instances which (dataset, key) records changed, after they are written."""
    for start in range(0, len(keys), _FEED_KEYS_PER_ROW):
        await tables.create(
            FEED_TABLE,
            {
                "PartitionKey": FEED_PARTITION,
                "RowKey": _feed_key(),
                "keys": json.dumps(list(keys[start : start + _FEED_KEYS_PER_ROW])),
            },
        )


async def announce_reload(tables: TableStorage, run_id: str) -> None:
    """Tell quote instances to load the new snapshot."""
    await tables.create(
        FEED_TABLE, {"PartitionKey": FEED_PARTITION, "RowKey": _feed_key(), "reload": run_id}
    )


async def current_snapshot(tables: TableStorage) -> Snapshot | None:
    row = await tables.get(sync_state.STATE_TABLE, SNAPSHOT_POINTER, JOB)
    if row is None:
        return None
    return Snapshot(str(row.entity["runId"]), row.entity["startedAt"])


def _records(
    dataset: Dataset, rows: Sequence[BaseModel], report: PublishReport
) -> tuple[list[tuple[str, Record]], datetime | None]:
    records = []
    newest: datetime | None = None
    for row in rows:
        report.read += 1
        try:
            records.append(dataset.record(row))
        except (ValueError, KeyError) as error:
            report.skipped += 1
            _log.warning("%s: skipped a row that cannot be published: %s", dataset.name, error)
            continue
        modified = getattr(row, "last_modified_date_time", None)
        if modified is not None and (newest is None or modified > newest):
            newest = modified
    return records, newest


def _snapshot_entities(
    run_id: str, dataset: str, records: list[tuple[str, Record]], first_index: int
) -> list[dict[str, Any]]:
    """Pack records into as few entities as the property and entity limits allow."""
    entities: list[dict[str, Any]] = []
    chunks: list[str] = []
    current: list[str] = []
    size = 0

    def close_chunk() -> None:
        nonlocal current, size
        if current:
            chunks.append("[" + ",".join(current) + "]")
            current, size = [], 0

    for key, record in records:
        text = json.dumps([key, record], separators=(",", ":"))
        if size + len(text) + 2 > price_data.CHUNK_CHARS:
            close_chunk()
        current.append(text)
        size += len(text) + 1
    close_chunk()
    for start in range(0, len(chunks), price_data.CHUNKS_PER_ENTITY):
        part = chunks[start : start + price_data.CHUNKS_PER_ENTITY]
        entity: dict[str, Any] = {
            "PartitionKey": price_data.snapshot_partition(run_id, dataset),
            "RowKey": f"{first_index + len(entities):07d}",
            "chunks": len(part),
        }
        entity.update({f"r{i}": chunk for i, chunk in enumerate(part)})
        entities.append(entity)
    return entities


async def _publish_delta(
    erp_client: ErpClient,
    tables: TableStorage,
    dataset: Dataset,
    report: PublishReport,
    held: lease.Lease,
) -> None:
    job = f"{JOB}:{dataset.name}"
    mark = await sync_state.read_watermark(tables, job)
    newest = mark.value
    pages = erp_client.iter_pages(
        dataset.entity_set,
        dataset.model,
        api=Api.CUSTOM if dataset.custom_api else Api.STANDARD,
        modified_since=mark.value,
    )
    async for page in pages:
        records, page_newest = _records(dataset, page, report)
        operations = [
            TableOperation(
                "upsert",
                {
                    "PartitionKey": dataset.name,
                    "RowKey": key,
                    "record": json.dumps(record, separators=(",", ":")),
                    "runId": report.run_id,
                    "writtenAt": datetime.now(UTC),
                },
            )
            for key, record in records
        ]
        report.written += await tables.transact(price_data.DELTA_TABLE, operations, concurrency=4)
        await announce(tables, [(dataset.name, key) for key, _ in records])
        if page_newest is not None and (newest is None or page_newest > newest):
            newest = page_newest
        await held.renew(_LEASE)
        _log.info(
            "price delta %s: %s rows read, %s written, %s skipped so far",
            dataset.name,
            report.read,
            report.written,
            report.skipped,
        )
    # Only now, with every page written, may the next delta start later.
    await sync_state.save_watermark(tables, job, newest)
    if dataset.name == "lines":
        report.watermark = newest


async def _publish_snapshot(
    erp_client: ErpClient,
    tables: TableStorage,
    dataset: Dataset,
    report: PublishReport,
    held: lease.Lease,
    writer: price_snapshot.SnapshotWriter | None = None,
) -> datetime | None:
    newest: datetime | None = None
    entity_count = 0
    read_before = report.read
    pages = erp_client.iter_pages(
        dataset.entity_set,
        dataset.model,
        api=Api.CUSTOM if dataset.custom_api else Api.STANDARD,
    )
    async for page in pages:
        records, page_newest = _records(dataset, page, report)
        entities = _snapshot_entities(report.run_id, dataset.name, records, entity_count)
        entity_count += len(entities)
        await tables.transact(
            price_data.SNAPSHOT_TABLE,
            [TableOperation("upsert", entity) for entity in entities],
        )
        if writer is not None:
            await writer.add(dataset.name, records)
        report.written += len(records)
        if page_newest is not None and (newest is None or page_newest > newest):
            newest = page_newest
        await held.renew(_LEASE)
        _log.info("price snapshot %s: %s rows so far", dataset.name, report.read - read_before)
    return newest


async def _drop_superseded(
    tables: TableStorage, previous: Snapshot | None, started_at: datetime, report: PublishReport
) -> None:
    """Delete delta rows older than the new snapshot, and the snapshot before the previous one.

    The previous snapshot stays until the next full run, so an instance that is loading it
    right now finishes its load; it then follows the reload entry to the new one.
    """
    stale_deltas = [
        TableOperation("delete", {"PartitionKey": row.partition_key, "RowKey": row.row_key})
        async for row in tables.query(
            price_data.DELTA_TABLE, "writtenAt lt @t", {"t": started_at}, ["PartitionKey", "RowKey"]
        )
    ]
    report.deleted += await tables.transact(price_data.DELTA_TABLE, stale_deltas, concurrency=4)
    keep = {report.run_id, previous.run_id if previous else ""}
    old_snapshot_rows = [
        TableOperation("delete", {"PartitionKey": row.partition_key, "RowKey": row.row_key})
        async for row in tables.all_rows(
            price_data.SNAPSHOT_TABLE, select=["PartitionKey", "RowKey"]
        )
        if row.partition_key.split("|", 1)[0] not in keep
    ]
    await tables.transact(price_data.SNAPSHOT_TABLE, old_snapshot_rows, concurrency=4)
    horizon = f"{int((time.time() - _FEED_RETENTION.total_seconds()) * 1000):013d}"
    old_feed = [
        TableOperation("delete", {"PartitionKey": row.partition_key, "RowKey": row.row_key})
        async for row in tables.query(
            FEED_TABLE,
            "PartitionKey eq @pk and RowKey lt @h",
            {"pk": FEED_PARTITION, "h": horizon},
            ["PartitionKey", "RowKey"],
        )
    ]
    await tables.transact(FEED_TABLE, old_feed)


async def publish(
    erp_client: ErpClient,
    tables: TableStorage,
    mode: Mode,
    datasets: Sequence[Dataset] = DATASETS,
    *,
    snapshots: price_snapshot.SnapshotBlobs | None = None,
) -> PublishReport:
    """Run one publish; ``lease.LeaseHeld`` if another run is in progress.

    With ``snapshots``, a full publish also writes the snapshot as one blob (committed before
    the pointer moves to the run, so an instance that sees the pointer finds the blob).
    """
    held = await lease.acquire(tables, JOB, _LEASE)
    record = sync_state.RunRecord(f"{JOB}-{mode}")
    report = PublishReport(mode=mode, run_id=record.run_id)
    started = time.perf_counter()
    try:
        if mode == "delta":
            for dataset in datasets:
                await _publish_delta(erp_client, tables, dataset, report, held)
        else:
            previous = await current_snapshot(tables)
            writer = (
                price_snapshot.SnapshotWriter(snapshots, report.run_id)
                if snapshots is not None
                else None
            )
            newest: dict[str, datetime | None] = {}
            for dataset in datasets:
                newest[dataset.name] = await _publish_snapshot(
                    erp_client, tables, dataset, report, held, writer
                )
            if writer is not None:
                await writer.commit()
            # The snapshot is complete: point instances at it, then move the watermarks.
            await tables.upsert(
                sync_state.STATE_TABLE,
                {
                    "PartitionKey": SNAPSHOT_POINTER,
                    "RowKey": JOB,
                    "runId": report.run_id,
                    "startedAt": record.started_at,
                },
            )
            await announce_reload(tables, report.run_id)
            for name, value in newest.items():
                await sync_state.save_watermark(tables, f"{JOB}:{name}", value)
            report.watermark = newest.get("lines")
            await _drop_superseded(tables, previous, record.started_at, report)
            if snapshots is not None:
                keep = {report.run_id, previous.run_id if previous else ""}
                try:
                    await price_snapshot.drop_other_runs(snapshots, keep)
                except Exception:
                    _log.warning("price snapshot blobs: old ones not deleted", exc_info=True)
        report.seconds = time.perf_counter() - started
        freshness = (
            report.watermark or (await sync_state.read_watermark(tables, f"{JOB}:lines")).value
        )
        await sync_state.save_watermark(tables, JOB, freshness, datetime.now(UTC))
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
