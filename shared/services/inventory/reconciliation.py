"""Reconciliation: compare the stock projection with Business Central and correct the drift.

Every ``stock.reconcileInterval`` of the sync policy (hourly as shipped), under a lease so two
runs never overlap. Pages through ``itemAvailabilityByLocation``; per page, reads each item's
partition once and compares every row (on hand, reservations, sales-order demand, expected
receipts) with the domain's ``reconcile``, taking the time the page was asked for as the
snapshot time. A drifted key gets an ERP snapshot on
``inventory-events`` (the one path every stock change takes), where the handler reconciles
again against the position as it is then: an event that arrived meanwhile and is newer than the
read wins, and events older than the read that are still on their way are recognised as
included. So the run never blindly overwrites.

What drifted is recorded, not silent: the run record (``SyncRuns``, job
``stock-reconciliation``) keeps the counts, the summed and the largest drift; the first
``max_drift_rows`` drifted keys are stored in ``StockDrift`` (PartitionKey = run id), and a
summary is logged. "Seeded" keys had no position at all (first run, or an item whose events
never came). Drift can include events that were still in flight at read time; a key that
drifts run after run points at lost events. A key whose read only confirms orders booked here
("confirmed") gets a snapshot too, so their demand moves from the projection's booked list
into the ERP's figure.

A run that fails part-way is simply run again: it holds no state between pages, and every
correction is absolute, so repeating one is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.models import ItemAvailability
from shared.adapters.erp.odata import Api
from shared.adapters.ports import MessageSender, TableStorage
from shared.adapters.stores import lease, sync_state
from shared.adapters.stores.stock import positions_of
from shared.config.policy import policy_for
from shared.domain.stock import ReconcileOutcome, StockPosition, reconcile
from shared.observability import metrics
from shared.services.inventory.messages import (
    INVENTORY_QUEUE,
    ErpStockSnapshot,
    erp_figures,
    snapshot_of_row,
)

JOB = "stock-reconciliation"
DRIFT_TABLE = "StockDrift"
AVAILABILITY_SET = "itemAvailabilityByLocation"
DEFAULT_PAGE_SIZE = 1000
DEFAULT_MAX_DRIFT_ROWS = 100
_LEASE = timedelta(minutes=10)
_CONCURRENCY = 8
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyDrift:
    """How far one (sku, location) was from the ERP."""

    sku: str
    location: str
    on_hand_drift: Decimal
    reserved_drift: Decimal
    seeded: bool
    demand_drift: Decimal = Decimal(0)
    expected_drift: Decimal = Decimal(0)

    @property
    def size(self) -> Decimal:
        return (
            abs(self.on_hand_drift)
            + abs(self.reserved_drift)
            + abs(self.demand_drift)
            + abs(self.expected_drift)
        )


@dataclass
class ReconciliationReport:
    """The run's findings (also stored as its run record)."""

    run_id: str
    checked: int = 0
    in_sync: int = 0
    drifted: int = 0
    seeded: int = 0
    deferred: int = 0
    superseded: int = 0
    confirmed: int = 0
    corrections_sent: int = 0
    on_hand_drift_total: Decimal = Decimal(0)
    reserved_drift_total: Decimal = Decimal(0)
    demand_drift_total: Decimal = Decimal(0)
    largest: KeyDrift | None = None
    drifts: list[KeyDrift] = field(default_factory=list)

    def note(self, drift: KeyDrift, keep: int) -> None:
        if drift.seeded:
            self.seeded += 1
        else:
            self.drifted += 1
            metrics.drift_found(drift.size)
            self.on_hand_drift_total += abs(drift.on_hand_drift)
            self.reserved_drift_total += abs(drift.reserved_drift)
            self.demand_drift_total += abs(drift.demand_drift)
            if self.largest is None or drift.size > self.largest.size:
                self.largest = drift
        if len(self.drifts) < keep:
            self.drifts.append(drift)

    def as_dict(self) -> dict[str, Any]:
        largest = self.largest
        return {
            "runId": self.run_id,
            "checked": self.checked,
            "inSync": self.in_sync,
            "drifted": self.drifted,
            "seeded": self.seeded,
            "deferred": self.deferred,
            "superseded": self.superseded,
            "confirmed": self.confirmed,
            "correctionsSent": self.corrections_sent,
            "onHandDriftTotal": str(self.on_hand_drift_total),
            "reservedDriftTotal": str(self.reserved_drift_total),
            "demandDriftTotal": str(self.demand_drift_total),
            "largest": None
            if largest is None
            else {
                "sku": largest.sku,
                "location": largest.location,
                "onHandDrift": str(largest.on_hand_drift),
                "reservedDrift": str(largest.reserved_drift),
                "demandDrift": str(largest.demand_drift),
            },
        }


async def reconcile_stock(
    erp: ErpClient,
    tables: TableStorage,
    bus: MessageSender,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_drift_rows: int = DEFAULT_MAX_DRIFT_ROWS,
    reconcile_interval: timedelta | None = None,
) -> ReconciliationReport:
    """One reconciliation run; ``LeaseHeld`` if another is in progress.

    The lease never outlasts the policy's reconcile interval (the trigger passes the app's; the
    shipped policy's otherwise), so a run that died holding it cannot make the next scheduled
    run skip.
    """
    interval = reconcile_interval or policy_for("").stock.reconcile_interval
    lease_for = min(_LEASE, interval)
    held = await lease.acquire(tables, JOB, lease_for)
    record = sync_state.RunRecord(JOB)
    report = ReconciliationReport(record.run_id)
    try:
        pages = aiter(
            erp.iter_pages(AVAILABILITY_SET, ItemAvailability, api=Api.CUSTOM, page_size=page_size)
        )
        while True:
            # The page holds everything the ERP committed before it was asked for.
            as_of = datetime.now(UTC)
            try:
                page = await anext(pages)
            except StopAsyncIteration:
                break
            await held.renew(lease_for)
            corrections = await _compare_page(tables, page, as_of, report, max_drift_rows)
            await _send(bus, corrections)
            report.corrections_sent += len(corrections)
        await _store_drifts(tables, report)
        _finish_counters(record, report)
        await record.finish(tables, "succeeded")
        _log_summary(report)
        return report
    except Exception as error:
        _finish_counters(record, report)
        await record.finish(tables, "failed", f"{type(error).__name__}: {error}")
        raise
    finally:
        await held.release()


async def _compare_page(
    tables: TableStorage,
    rows: Sequence[ItemAvailability],
    as_of: datetime,
    report: ReconciliationReport,
    keep: int,
) -> list[ErpStockSnapshot]:
    by_sku: dict[str, list[ItemAvailability]] = {}
    for row in rows:
        by_sku.setdefault(row.item_number, []).append(row)
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def compare(sku: str, sku_rows: list[ItemAvailability]) -> list[ErpStockSnapshot]:
        async with gate:
            stored = {entry.position.location: entry for entry in await positions_of(tables, sku)}
        found: list[ErpStockSnapshot] = []
        for row in sku_rows:
            entry = stored.get(row.location_code)
            position = entry.position if entry else StockPosition.new(sku, row.location_code)
            snapshot = _compare_row(position, entry is None, row, as_of, report, keep)
            if snapshot is not None:
                found.append(snapshot)
        return found

    results = await asyncio.gather(*(compare(sku, sku_rows) for sku, sku_rows in by_sku.items()))
    return [snapshot for found in results for snapshot in found]


def _compare_row(
    position: StockPosition,
    unseen: bool,
    row: ItemAvailability,
    as_of: datetime,
    report: ReconciliationReport,
    keep: int,
) -> ErpStockSnapshot | None:
    report.checked += 1
    if min(row.reserved_quantity, row.qty_on_sales_orders, row.qty_on_purchase_orders) < 0:
        _log.warning(
            "%s@%s: ERP reports a negative reservation, demand or receipt; using 0",
            row.item_number,
            row.location_code,
        )
    found = reconcile(position, erp_figures(row), as_of)
    if found.outcome is ReconcileOutcome.IN_SYNC:
        report.in_sync += 1
        return None
    if found.outcome is ReconcileOutcome.DEFERRED_NEWER_EVENTS:
        report.deferred += 1
        return None
    if found.outcome is ReconcileOutcome.SUPERSEDED_SNAPSHOT:
        report.superseded += 1
        return None
    if found.outcome is ReconcileOutcome.CONFIRMED:
        report.confirmed += 1
    else:
        report.note(
            KeyDrift(
                row.item_number,
                row.location_code,
                found.on_hand_drift,
                found.erp_reserved_drift,
                unseen,
                found.demand_drift,
                found.expected_drift,
            ),
            keep,
        )
    return snapshot_of_row(row, as_of, "reconciliation")


async def _send(bus: MessageSender, snapshots: Sequence[ErpStockSnapshot]) -> None:
    for snapshot in snapshots:
        await bus.send_json(
            INVENTORY_QUEUE,
            snapshot.to_message(),
            message_id=snapshot.event_id,
            subject="erp-snapshot",
        )


async def _store_drifts(tables: TableStorage, report: ReconciliationReport) -> None:
    for number, drift in enumerate(report.drifts, start=1):
        await tables.upsert(
            DRIFT_TABLE,
            {
                "PartitionKey": report.run_id,
                "RowKey": f"{number:06d}",
                "sku": drift.sku,
                "location": drift.location,
                "onHandDrift": str(drift.on_hand_drift),
                "reservedDrift": str(drift.reserved_drift),
                "demandDrift": str(drift.demand_drift),
                "expectedDrift": str(drift.expected_drift),
                "seeded": drift.seeded,
            },
        )


def _finish_counters(record: sync_state.RunRecord, report: ReconciliationReport) -> None:
    record.counters.update(
        checked=report.checked,
        inSync=report.in_sync,
        drifted=report.drifted,
        seeded=report.seeded,
        deferred=report.deferred,
        superseded=report.superseded,
        confirmed=report.confirmed,
        correctionsSent=report.corrections_sent,
    )
    record.details["onHandDriftTotal"] = str(report.on_hand_drift_total)
    record.details["reservedDriftTotal"] = str(report.reserved_drift_total)
    record.details["demandDriftTotal"] = str(report.demand_drift_total)
    if report.largest is not None:
        record.details["largestSku"] = report.largest.sku
        record.details["largestLocation"] = report.largest.location
        record.details["largestOnHandDrift"] = str(report.largest.on_hand_drift)
        record.details["largestReservedDrift"] = str(report.largest.reserved_drift)
        record.details["largestDemandDrift"] = str(report.largest.demand_drift)


def _log_summary(report: ReconciliationReport) -> None:
    level = logging.WARNING if report.drifted else logging.INFO
    _log.log(level, "stock reconciliation: %s", report.as_dict())


async def drift_rows(tables: TableStorage, run_id: str) -> list[dict[str, Any]]:
    """The stored per-key drifts of one run (operations view and tests)."""
    return [row.entity async for row in tables.partition(DRIFT_TABLE, run_id)]
