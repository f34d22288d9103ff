"""Applying ``inventory-events`` batches to the stock projection in Table storage.

Per batch: validate every message (bad ones are returned for dead-lettering, they never block
the good ones), group the rest by item (the table partition), read the items' partitions (one
query per 15 items when the batch holds several), plan each item (pure fold), and write all
its changed locations plus their alert rows in one entity-group transaction conditional on
the ETags read. A 412/409 means another handler got
there first: read again and plan again. Alerts are published after the commit.

Why running a batch twice is harmless: the position row is its own dedup record (sequence
watermark, missing ranges, recent event ids, held events, reconciliation time) and is written
atomically with the state it protects, so a redelivered event folds to "duplicate" and a
re-applied snapshot to "in sync"; nothing is written then. Sequence-based dedup has no time
window, so a replay from the dead-letter queue days later is still recognised. Unpublished
alerts survive in the outbox and are published (with the same MessageId) by the retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.adapters.ports import MessageSender, TableStorage
from shared.adapters.stores.stock import (
    PARTITIONS_PER_QUERY,
    POSITIONS_TABLE,
    PositionBusy,
    StoredPosition,
    partitions_rows,
    position_from_entity,
)
from shared.adapters.tables import (
    EntityChanged,
    EntityExists,
    EntityMissing,
    Row,
    TableOperation,
)
from shared.domain.stock import InvalidInventoryEvent
from shared.services.inventory.alerts import PendingAlert, alerts_of, publish_alerts
from shared.services.inventory.messages import InventoryMessage, parse_inventory_message
from shared.services.inventory.policy import StockPolicy
from shared.services.inventory.projection import (
    LocationWork,
    group_by_partition,
    plan_partition,
)

_log = logging.getLogger(__name__)
_MAX_CONFLICT_RETRIES = 20
DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class InboundMessage:
    """A received message: its broker MessageId (to name it when dead-lettering) and body."""

    message_id: str
    body: bytes | str


@dataclass(frozen=True)
class RejectedMessage:
    """A message no retry can fix: dead-letter it with this reason."""

    message_id: str
    reason: str
    description: str


@dataclass
class BatchOutcome:
    """What a batch did, for logs and benchmarks."""

    received: int = 0
    partitions: int = 0
    tally: Counter[str] = field(default_factory=Counter)
    rejected: list[RejectedMessage] = field(default_factory=list)
    table_requests: int = 0
    conflicts: int = 0
    alerts_published: int = 0

    def merge(self, other: PartitionOutcome) -> None:
        self.tally.update(other.tally)
        self.table_requests += other.table_requests
        self.conflicts += other.conflicts

    def summary(self) -> dict[str, int]:
        return {
            "received": self.received,
            "rejected": len(self.rejected),
            "partitions": self.partitions,
            "tableRequests": self.table_requests,
            "conflicts": self.conflicts,
            "alertsPublished": self.alerts_published,
            **{name: count for name, count in sorted(self.tally.items()) if count},
        }


@dataclass
class PartitionOutcome:
    """One item's counts, and the alerts (new and left over) its caller must publish."""

    tally: Counter[str] = field(default_factory=Counter)
    table_requests: int = 0
    conflicts: int = 0
    alerts: list[PendingAlert] = field(default_factory=list)


def parse_batch(
    messages: Sequence[InboundMessage],
) -> tuple[list[InventoryMessage], list[RejectedMessage]]:
    """Valid messages, and the rejected ones with their dead-letter reason."""
    valid: list[InventoryMessage] = []
    rejected: list[RejectedMessage] = []
    for message in messages:
        try:
            valid.append(parse_inventory_message(message.body))
        except InvalidInventoryEvent as error:
            rejected.append(
                RejectedMessage(
                    message.message_id, error.dead_letter_reason, error.dead_letter_description
                )
            )
    return valid, rejected


async def apply_inventory_messages(
    tables: TableStorage,
    bus: MessageSender,
    messages: Sequence[InboundMessage],
    policy: StockPolicy,
    *,
    now: datetime | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    read_together: bool = True,
) -> BatchOutcome:
    """Apply a batch; returns the outcome with the rejected messages for the dead-letter queue.

    ``read_together`` reads the partitions of a batch of several items in queries of 15
    items (False: one query per item, the earlier way, kept for the benchmark's side by side).

    Raises (after every item was tried) when an item could not be written or its alerts not
    published: the caller abandons the batch and the redelivery finishes the job.
    """
    started = time.perf_counter()
    valid, rejected = parse_batch(messages)
    outcome = BatchOutcome(received=len(messages), rejected=rejected)
    grouped = group_by_partition(valid)
    outcome.partitions = len(grouped)
    results = await _for_partitions(
        tables, grouped, policy, now, concurrency, read_together=read_together
    )
    failure = await _settle(tables, bus, results, outcome)
    _log.info(
        "inventory batch applied in %.1f ms: %s",
        (time.perf_counter() - started) * 1000,
        outcome.summary(),
    )
    if failure is not None:
        raise failure
    return outcome


async def _settle(
    tables: TableStorage,
    bus: MessageSender,
    results: Sequence[PartitionOutcome | BaseException],
    outcome: BatchOutcome,
) -> BaseException | None:
    """Count what the items did and publish their alerts; return the first failure, if any."""
    failure: BaseException | None = None
    alerts: dict[str, PendingAlert] = {}
    for result in results:
        if isinstance(result, BaseException):
            failure = failure or result
            continue
        outcome.merge(result)
        alerts.update((alert.alert_id, alert) for alert in result.alerts)
    try:
        outcome.alerts_published = await publish_alerts(bus, tables, alerts.values())
    except Exception as error:
        failure = failure or error
    # Each published alert also deleted its outbox row.
    outcome.table_requests += outcome.alerts_published
    return failure


async def _for_partitions(
    tables: TableStorage,
    grouped: Mapping[str, Mapping[str, LocationWork]],
    policy: StockPolicy,
    now: datetime | None,
    concurrency: int,
    *,
    read_together: bool = False,
) -> list[PartitionOutcome | BaseException]:
    gate = asyncio.Semaphore(max(1, concurrency))
    read: dict[str, list[Row]] = {}
    if read_together and len(grouped) > 1:
        # A failed read fails the batch before anything was written: the redelivery retries.
        read = await partitions_rows(tables, grouped)
        outcome_reads = -(-len(grouped) // PARTITIONS_PER_QUERY)
    else:
        outcome_reads = 0

    async def one(sku: str, work: Mapping[str, LocationWork]) -> PartitionOutcome:
        async with gate:
            rows = read.get(sku)
            preloaded = _partition_of(rows) if rows is not None else None
            return await apply_to_partition(tables, sku, work, policy, now, preloaded=preloaded)

    results: list[PartitionOutcome | BaseException] = list(
        await asyncio.gather(
            *(one(sku, work) for sku, work in grouped.items()), return_exceptions=True
        )
    )
    for result in results:
        if isinstance(result, PartitionOutcome):  # the shared reads, counted once
            result.table_requests += outcome_reads
            break
    return results


Loaded = tuple[dict[str, StoredPosition], list[PendingAlert]]


def _partition_of(rows: Sequence[Row]) -> Loaded:
    positions: dict[str, StoredPosition] = {}
    for row in rows:
        if row.entity.get("kind") == "position":
            positions[row.row_key] = StoredPosition(position_from_entity(row.entity), row.etag)
    return positions, alerts_of([row.entity for row in rows])


async def _load_partition(tables: TableStorage, sku: str) -> Loaded:
    return _partition_of([row async for row in tables.partition(POSITIONS_TABLE, sku)])


async def apply_to_partition(
    tables: TableStorage,
    sku: str,
    work: Mapping[str, LocationWork],
    policy: StockPolicy,
    now: datetime | None = None,
    *,
    preloaded: Loaded | None = None,
) -> PartitionOutcome:
    """Fold one item's work into its stored positions; retry the whole plan on a conflict.

    ``preloaded`` is the partition as the batch's shared read found it, used for the first
    attempt only: a conflict reads the partition again on its own.

    Returns the alerts to publish: the plan's new ones (already in the outbox) and any the
    outbox still held from an earlier attempt.
    """
    outcome = PartitionOutcome()
    for _ in range(_MAX_CONFLICT_RETRIES):
        if preloaded is not None:
            (stored, pending), preloaded = preloaded, None
        else:
            stored, pending = await _load_partition(tables, sku)
            outcome.table_requests += 1
        plan = plan_partition(sku, stored, work, policy, now or datetime.now(UTC))
        try:
            for group in plan.write_groups():
                await _write(tables, group)
                outcome.table_requests += 1
        except (EntityChanged, EntityExists, EntityMissing):
            # Someone wrote between our read and our write; the plan is pure, so redo it.
            outcome.conflicts += 1
            continue
        outcome.tally.update(plan.tally)
        outcome.alerts = [*pending, *plan.alerts]
        return outcome
    raise PositionBusy(f"stock positions of {sku} kept changing; try again")


async def _write(tables: TableStorage, group: Sequence[TableOperation]) -> None:
    """One entity-group transaction; a lone write goes as a plain conditional request.

    The SDK builds a transaction as a multipart body (costly in CPU), while a single create
    or ETag-conditional update gives the same guarantee in a plain request.
    """
    if len(group) == 1 and group[0].kind == "create":
        await tables.create(POSITIONS_TABLE, group[0].entity)
    elif len(group) == 1 and group[0].kind == "update" and group[0].etag is not None:
        await tables.update(POSITIONS_TABLE, group[0].entity, group[0].etag)
    else:
        await tables.transact(POSITIONS_TABLE, group)


# Rows the sweep must visit: positions holding events for a gap, and unpublished alerts.
_SWEEP_FILTER = "held gt 0 or kind eq 'alert'"


async def sweep(
    tables: TableStorage,
    bus: MessageSender,
    policy: StockPolicy,
    *,
    now: datetime | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> BatchOutcome:
    """Release held events whose gap timed out and publish alerts left in the outbox.

    Held events only move when their position is folded, so a quiet position needs this
    periodic empty fold; it is harmless to run at any time and concurrently with handlers.
    """
    touched: dict[str, dict[str, LocationWork]] = {}
    async for row in tables.query(
        POSITIONS_TABLE, _SWEEP_FILTER, select=["PartitionKey", "RowKey", "kind"]
    ):
        locations = touched.setdefault(row.partition_key, {})
        if row.entity.get("kind") == "position":
            locations[row.row_key] = LocationWork()
    outcome = BatchOutcome(partitions=len(touched))
    results = await _for_partitions(tables, touched, policy, now, concurrency)
    failure = await _settle(tables, bus, results, outcome)
    if touched:
        _log.info("stock sweep: %s", outcome.summary())
    if failure is not None:
        raise failure
    return outcome
