"""Layer 1, the data baseline: the ERP's rows against what the product holds and delivered.

Reads each ERP dataset once with server-driven paging through the product's own client (so
the 6,000-requests / 5-minute budget, the 5-concurrent cap and 429 handling apply), hashes
every row from its key and the fields the product copies, and compares with:

- items, customers, price list lines: the published price data (current snapshot + the delta
  rows written after it), recorded by the publisher's own ``price_data`` functions, so the
  comparison is of exactly what the product copies;
- availability: the stock projection, per item x location: on hand, and available-to-sell as
  the ERP's own figures define it (on hand - outstanding sales-order demand - reservations
  outside that demand); the product's pending holds and safety stock are its own, not the
  ERP's, and are left out of both sides;
- each storefront channel: the SKUs the channel acknowledged (content hash store) against the
  SKUs it should have (unblocked items in its categories, minus items the ERP data itself
  fails validation for, which are reported as excluded).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.models import Item, ItemAvailability
from shared.adapters.erp.odata import Api
from shared.adapters.ports import TableStorage
from shared.adapters.stores import price_data, sync_state
from shared.adapters.stores.content_failures import ERP_SCOPE, FAILURES_TABLE
from shared.adapters.stores.content_hashes import HASHES_TABLE
from shared.adapters.stores.stock import POSITIONS_TABLE
from shared.config.channels import Channels
from shared.config.policy import SyncPolicy
from shared.services.inventory.messages import erp_figures
from shared.services.operations.audit.checksums import RowState, compare_rows, row_hash
from shared.services.operations.audit.models import DataLayer, DatasetComparison, Verdict
from shared.services.operations.audit.verdicts import data_verdict
from shared.services.orders import lifecycle_ops
from shared.services.pricing import publisher as price_publisher

Progress = Callable[[str], None]
PRICE_DATASETS = ("items", "customers", "lines")
_LABELS = {"items": "items", "customers": "customers", "lines": "price list lines"}


async def _erp_price_rows(
    erp: ErpClient, dataset: price_data.Dataset, progress: Progress
) -> tuple[dict[str, RowState], int]:
    rows: dict[str, RowState] = {}
    skipped = 0
    pages = erp.iter_pages(
        dataset.entity_set,
        dataset.model,
        api=Api.CUSTOM if dataset.custom_api else Api.STANDARD,
    )
    async for page in pages:
        for row in page:
            try:
                key, record = dataset.record(row)
            except (ValueError, KeyError):
                # The publisher skips these too; they are not a difference.
                skipped += 1
                continue
            rows[key] = RowState(row_hash(key, record), _modified(row))
        progress(f"data: {_LABELS[dataset.name]}: {len(rows)} ERP rows read")
    return rows, skipped


def _modified(row: BaseModel) -> datetime | None:
    value = getattr(row, "last_modified_date_time", None)
    return value if isinstance(value, datetime) else None


async def published_rows(tables: TableStorage) -> dict[str, dict[str, RowState]]:
    """Every published record per dataset, as a quote instance would load it."""
    found: dict[str, dict[str, RowState]] = {name: {} for name in price_data.DATASET_NAMES}
    snapshot = await price_publisher.current_snapshot(tables)
    if snapshot is not None:
        for name in PRICE_DATASETS:
            partition = price_data.snapshot_partition(snapshot.run_id, name)
            async for row in tables.partition(price_data.SNAPSHOT_TABLE, partition):
                for index in range(int(row.entity["chunks"])):
                    for key, record in json.loads(row.entity[f"r{index}"]):
                        found[name][key] = RowState(row_hash(key, record), snapshot.started_at)
    async for row in tables.all_rows(price_data.DELTA_TABLE):
        written = row.entity.get("writtenAt")
        if row.partition_key not in PRICE_DATASETS:
            continue
        if snapshot is None or (written is not None and written >= snapshot.started_at):
            record = json.loads(row.entity["record"])
            found[row.partition_key][row.row_key] = RowState(row_hash(row.row_key, record), written)
    return found


def _stock_fields(on_hand: Decimal, demand: Decimal, reserved: Decimal) -> list[object]:
    """On hand and the ERP-defined available-to-sell (not clamped, so no difference hides)."""
    zero = Decimal(0)
    return [on_hand, on_hand - max(demand, zero) - max(reserved, zero)]


async def _erp_availability(erp: ErpClient, progress: Progress) -> dict[str, RowState]:
    rows: dict[str, RowState] = {}
    async for page in erp.iter_pages(
        "itemAvailabilityByLocation", ItemAvailability, api=Api.CUSTOM
    ):
        for row in page:
            key = f"{row.item_number}|{row.location_code}"
            figures = erp_figures(row)
            rows[key] = RowState(
                row_hash(
                    key,
                    _stock_fields(figures.on_hand, figures.demand or Decimal(0), figures.reserved),
                ),
                row.last_modified_date_time,
            )
        progress(f"data: availability: {len(rows)} ERP rows read")
    return rows


async def projected_rows(tables: TableStorage) -> dict[str, RowState]:
    """The stock projection: one row per (item, location) position."""
    rows: dict[str, RowState] = {}
    async for row in tables.all_rows(POSITIONS_TABLE):
        if row.entity.get("kind") != "position":
            continue
        key = f"{row.partition_key}|{row.row_key}"
        fields = _stock_fields(
            Decimal(str(row.entity["onHand"])),
            Decimal(str(row.entity.get("erpDemand", "0"))),
            Decimal(str(row.entity["erpReserved"])),
        )
        rows[key] = RowState(row_hash(key, fields), row.entity.get("lastEventAt"))
    return rows


def with_empty_positions(
    erp_rows: dict[str, RowState], projected: dict[str, RowState]
) -> dict[str, RowState]:
    """The projection plus the implicit empty positions: a key no event ever touched *is*
    zero on hand and zero reserved, so an ERP row of zeros is not missing."""
    completed = dict(projected)
    for key, state in erp_rows.items():
        if key not in completed and state.digest == row_hash(
            key, _stock_fields(Decimal(0), Decimal(0), Decimal(0))
        ):
            completed[key] = RowState(state.digest, None)
    return completed


async def _channel_rows(tables: TableStorage, channel: str) -> dict[str, RowState]:
    rows: dict[str, RowState] = {}
    async for row in tables.query(
        HASHES_TABLE,
        "PartitionKey ge @low and PartitionKey lt @high",
        {"low": f"{channel}.", "high": f"{channel}/"},
        ["PartitionKey", "RowKey", "hash", "syncedAt"],
    ):
        if row.entity.get("hash"):
            rows[row.row_key] = RowState(row_hash(row.row_key, []), row.entity.get("syncedAt"))
    return rows


async def _rejected_at_source(tables: TableStorage) -> set[str]:
    return {row.row_key async for row in tables.partition(FAILURES_TABLE, ERP_SCOPE)}


async def _erp_catalog(
    erp: ErpClient, progress: Progress
) -> tuple[list[Item], dict[str, datetime | None]]:
    items: list[Item] = []
    async for item in erp.iter_items():
        items.append(item)
    progress(f"data: catalog: {len(items)} ERP items read")
    content_changed: dict[str, datetime | None] = {}
    async for content in erp.iter_item_content():
        content_changed[content.item_number] = content.last_modified_date_time
    progress(f"data: catalog: {len(content_changed)} ERP content rows read")
    return items, content_changed


def expected_channel_rows(
    items: list[Item],
    content_changed: dict[str, datetime | None],
    categories: frozenset[str] | None,
    rejected: set[str],
) -> tuple[dict[str, RowState], int]:
    """The SKUs a channel should have, each with the newest change of its item or content."""
    rows: dict[str, RowState] = {}
    excluded = 0
    for item in items:
        if item.blocked:
            continue
        if categories is not None and item.item_category_code not in categories:
            continue
        if item.number in rejected:
            excluded += 1
            continue
        changes = [m for m in (item.last_modified_date_time, content_changed.get(item.number)) if m]
        rows[item.number] = RowState(row_hash(item.number, []), max(changes) if changes else None)
    return rows, excluded


# Followed orders compared per audit (4 ERP reads each), the longest waiting first.
LIFECYCLE_SAMPLE = 50


async def run_data_layer(
    erp: ErpClient,
    tables: TableStorage,
    channels: Channels,
    policy: SyncPolicy,
    now: datetime,
    progress: Progress,
) -> DataLayer:
    """Compare every dataset; the verdict fails on anything older than the policy allows."""
    started = time.perf_counter()
    requests_before = erp.counters().requests_sent
    limit = policy.audit.list_limit
    comparisons: list[DatasetComparison] = []

    published = await published_rows(tables)
    for dataset in price_data.DATASETS:
        if dataset.name not in PRICE_DATASETS:
            continue
        erp_rows, skipped = await _erp_price_rows(erp, dataset, progress)
        comparisons.append(
            compare_rows(
                _LABELS[dataset.name],
                "published price data",
                erp_rows,
                published[dataset.name],
                now=now,
                objective=policy.prices.freshness_objective,
                limit=limit,
                excluded=skipped,
            )
        )

    erp_stock = await _erp_availability(erp, progress)
    comparisons.append(
        compare_rows(
            "availability",
            "stock projection",
            erp_stock,
            with_empty_positions(erp_stock, await projected_rows(tables)),
            now=now,
            # Events should land in seconds; the reconciliation is the promise for the rest.
            objective=policy.stock.reconcile_interval,
            limit=limit,
        )
    )

    # Orders whose lifecycle drifted: what the storefronts were told against the ERP now.
    # Listed only while orders are followed (an empty dataset proves nothing).
    erp_life, told = await lifecycle_ops.lifecycle_rows(erp, tables, LIFECYCLE_SAMPLE)
    if erp_life or told:
        comparisons.append(
            compare_rows(
                "order lifecycles",
                "last order-status state",
                erp_life,
                told,
                now=now,
                # Webhooks bring changes within the objective; the poll is the rest's promise.
                objective=policy.orders.lifecycle_objective + policy.orders.lifecycle_poll,
                limit=limit,
            )
        )

    catalog_channels = {name: c for name, c in channels.items() if c.catalog_webhook}
    if catalog_channels:
        items, content_changed = await _erp_catalog(erp, progress)
        rejected = await _rejected_at_source(tables)
        for name, channel in sorted(catalog_channels.items()):
            categories = None if channel.categories == "*" else frozenset(channel.categories)
            expected, excluded = expected_channel_rows(items, content_changed, categories, rejected)
            comparisons.append(
                compare_rows(
                    f"channel {name}",
                    "content acknowledged by the channel",
                    expected,
                    await _channel_rows(tables, name),
                    now=now,
                    objective=policy.content.freshness_objective,
                    limit=limit,
                    excluded=excluded,
                )
            )
            progress(f"data: channel {name}: {len(expected)} SKUs expected")

    mark = await sync_state.read_watermark(tables, price_publisher.JOB)
    verdict: Verdict = data_verdict(
        comparisons, mark.last_success_at, policy.prices.freshness_objective, now
    )
    return DataLayer(
        datasets=comparisons,
        publisher_last_success=mark.last_success_at,
        erp_reads=erp.counters().requests_sent - requests_before,
        seconds=round(time.perf_counter() - started, 3),
        verdict=verdict,
    )
