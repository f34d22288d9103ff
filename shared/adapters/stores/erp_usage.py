"""How hard the product used the ERP, persisted: per-instance counter deltas in minute buckets.

``ErpClient.counters()`` lives in one process and restarts at zero with it, while the budget
Business Central enforces (6,000 requests per 5 minutes per principal) spans every instance.
So each instance periodically stores what changed since its last recording: one row per
(minute, instance, principal), PartitionKey = the minute ``YYYYMMDDHHMM`` (so a window is one
range query), RowKey = the instance and the principal's position, property ``principal`` =
the principal's non-secret label (``ErpConfig.principal_labels``). Business Central counts its
budget per principal, so each booking principal's pipeline is recorded on its own. Rows
written before principals were recorded carry no ``principal``: they were the default
principal's, and are read as such. Only this process writes its rows, and within the process
a lock orders the writes, so a read-modify-write merge is safe without ETags.

Recorded from the heartbeat timer (every 5 minutes, already running on every instance, so it
costs a read and a write per instance and principal that sent requests since the last beat,
and no ERP call) and at the end of each audit.
A window's figure therefore has the heartbeat's granularity: requests are booked in the minute
they were recorded, not the minute they were sent.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.request_pipeline import ErpCounters
from shared.adapters.ports import TableStorage

USAGE_TABLE = "ErpUsage"
BUDGET_REQUESTS = 6000
BUDGET_WINDOW = timedelta(minutes=5)
_BUCKET_FORMAT = "%Y%m%d%H%M"


@dataclass
class UsageTotals:
    """Summed deltas over a window (the counters that add up; states are not summed)."""

    requests_sent: int = 0
    throttled_responses: int = 0
    retries: int = 0
    failures: int = 0
    ambiguous_results: int = 0
    budget_waits: int = 0
    breaker_openings: int = 0

    def add(self, other: UsageTotals) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def as_entity(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


_SUMMED = tuple(item.name for item in fields(UsageTotals))


def bucket_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_BUCKET_FORMAT)


def delta(previous: ErpCounters | None, current: ErpCounters) -> UsageTotals:
    """What changed between two snapshots of one client (all of it for the first snapshot)."""
    values = {}
    for name in _SUMMED:
        before = getattr(previous, name) if previous is not None else 0
        now = getattr(current, name)
        # A smaller value means a new client (process restart): count it from zero.
        values[name] = now - before if now >= before else now
    return UsageTotals(**values)


def _instance_name() -> str:
    site = os.environ.get("WEBSITE_INSTANCE_ID") or socket.gethostname()
    return f"{site[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class UsageRecorder:
    """Turns each principal's cumulative counters into stored per-minute deltas."""

    def __init__(
        self,
        counters: Callable[[], Sequence[tuple[str, ErpCounters]]],
        *,
        instance: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``counters``: each principal's label and counters, always in the same order."""
        self._counters = counters
        self.instance = instance or _instance_name()
        self._clock = clock
        self._last: dict[str, ErpCounters] = {}
        self._lock = asyncio.Lock()

    async def record(self, tables: TableStorage) -> UsageTotals:
        """Store each principal's delta since the last recording (nothing is written for a
        principal whose counters did not change); answers the sum over the principals."""
        async with self._lock:
            bucket = bucket_of(self._clock())
            changes: list[tuple[int, str, ErpCounters, UsageTotals]] = []
            for position, (principal, current) in enumerate(self._counters()):
                changes.append(
                    (position, principal, current, delta(self._last.get(principal), current))
                )
            await asyncio.gather(
                *(
                    self._add(tables, bucket, position, principal, current, change)
                    for position, principal, current, change in changes
                    if any(change.as_entity().values())
                )
            )
            total = UsageTotals()
            for _, principal, current, change in changes:
                self._last[principal] = current
                total.add(change)
            return total

    async def _add(
        self,
        tables: TableStorage,
        bucket: str,
        position: int,
        principal: str,
        current: ErpCounters,
        change: UsageTotals,
    ) -> None:
        row_key = f"{self.instance}.{position}"
        stored = await tables.get(USAGE_TABLE, bucket, row_key)
        total = UsageTotals(
            **{name: int(stored.entity.get(name, 0)) if stored else 0 for name in _SUMMED}
        )
        total.add(change)
        await tables.upsert(
            USAGE_TABLE,
            {
                "PartitionKey": bucket,
                "RowKey": row_key,
                "principal": principal,
                **total.as_entity(),
                "breakerState": str(current.breaker_state),
            },
        )


@dataclass(frozen=True)
class UsageRow:
    """One stored row: its minute, its principal (None: written before principals were
    recorded, so the default principal's) and its figures."""

    bucket: str
    principal: str | None
    totals: UsageTotals


async def rows_between(tables: TableStorage, start: datetime, end: datetime) -> list[UsageRow]:
    """Every row recorded in the minute buckets from ``start``'s minute to ``end``'s."""
    rows = tables.query(
        USAGE_TABLE,
        "PartitionKey ge @low and PartitionKey le @high",
        {"low": bucket_of(start), "high": bucket_of(end)},
    )
    found: list[UsageRow] = []
    async for row in rows:
        principal = row.entity.get("principal")
        found.append(
            UsageRow(
                bucket=row.partition_key,
                principal=str(principal) if principal else None,
                totals=UsageTotals(**{name: int(row.entity.get(name, 0)) for name in _SUMMED}),
            )
        )
    return found


def by_principal(
    rows: Iterable[UsageRow], default_principal: str, since: datetime | None = None
) -> dict[str, UsageTotals]:
    """The rows summed per principal (rows without one count as ``default_principal``'s),
    only those from ``since``'s minute on when it is given."""
    low = bucket_of(since) if since is not None else ""
    totals: dict[str, UsageTotals] = {}
    for row in rows:
        if row.bucket < low:
            continue
        totals.setdefault(row.principal or default_principal, UsageTotals()).add(row.totals)
    return totals


async def usage_between(tables: TableStorage, start: datetime, end: datetime) -> UsageTotals:
    """Everything recorded in the minute buckets from ``start``'s minute to ``end``'s, summed
    over every instance and principal."""
    totals = UsageTotals()
    for row in await rows_between(tables, start, end):
        totals.add(row.totals)
    return totals


_recorders: weakref.WeakKeyDictionary[object, UsageRecorder] = weakref.WeakKeyDictionary()


def recorder_for(owner: ErpClient) -> UsageRecorder:
    """The process's recorder for one client and all its principals, created on first use
    (and gone with it)."""
    found = _recorders.get(owner)
    if found is None:
        found = _recorders[owner] = UsageRecorder(owner.principal_counters)
    return found
