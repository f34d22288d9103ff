"""How hard the product used the ERP, persisted: per-instance counter deltas in minute buckets.

``ErpClient.counters()`` lives in one process and restarts at zero with it, while the budget
Business Central enforces (6,000 requests per 5 minutes per principal) spans every instance.
So each instance periodically stores what changed since its last recording: one row per
(minute, instance), PartitionKey = the minute ``YYYYMMDDHHMM`` (so a window is one range
query), RowKey = the instance. Only this process writes its row, and within the process a lock
orders the writes, so a read-modify-write merge is safe without ETags.

Recorded from the heartbeat timer (every 5 minutes, already running on every instance, so it
costs one table write per instance per beat and no ERP call) and at the end of each audit.
A window's figure therefore has the heartbeat's granularity: requests are booked in the minute
they were recorded, not the minute they were sent.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
import weakref
from collections.abc import Callable
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
    """Turns one client's cumulative counters into stored per-minute deltas."""

    def __init__(
        self,
        counters: Callable[[], ErpCounters],
        *,
        instance: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._counters = counters
        self.instance = instance or _instance_name()
        self._clock = clock
        self._last: ErpCounters | None = None
        self._lock = asyncio.Lock()

    async def record(self, tables: TableStorage) -> UsageTotals:
        """Store the delta since the last recording (nothing is written when nothing changed)."""
        async with self._lock:
            current = self._counters()
            change = delta(self._last, current)
            if any(change.as_entity().values()):
                bucket = bucket_of(self._clock())
                stored = await tables.get(USAGE_TABLE, bucket, self.instance)
                total = UsageTotals(
                    **{name: int(stored.entity.get(name, 0)) if stored else 0 for name in _SUMMED}
                )
                total.add(change)
                await tables.upsert(
                    USAGE_TABLE,
                    {
                        "PartitionKey": bucket,
                        "RowKey": self.instance,
                        **total.as_entity(),
                        "breakerState": str(current.breaker_state),
                    },
                )
            self._last = current
            return change


async def usage_between(tables: TableStorage, start: datetime, end: datetime) -> UsageTotals:
    """Everything recorded in the minute buckets from ``start``'s minute to ``end``'s."""
    totals = UsageTotals()
    rows = tables.query(
        USAGE_TABLE,
        "PartitionKey ge @low and PartitionKey le @high",
        {"low": bucket_of(start), "high": bucket_of(end)},
    )
    async for row in rows:
        totals.add(UsageTotals(**{name: int(row.entity.get(name, 0)) for name in _SUMMED}))
    return totals


_recorders: weakref.WeakKeyDictionary[object, UsageRecorder] = weakref.WeakKeyDictionary()


def recorder_for(owner: ErpClient) -> UsageRecorder:
    """The process's recorder for one client, created on first use (and gone with it)."""
    found = _recorders.get(owner)
    if found is None:
        found = _recorders[owner] = UsageRecorder(owner.counters)
    return found
