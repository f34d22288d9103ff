"""What a content sync run did, stored as a run record and shown by the admin route.

Counters are per run; per-channel figures are one JSON property because channel names
(``b2b-eu``) are not valid table property names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from shared.adapters.ports import TableStorage
from shared.adapters.stores import sync_state
from shared.services.content.progress import JOB, Mode, Watermarks


@dataclass
class ChannelStats:
    """One channel's share of a run."""

    sent: int = 0  # operations the channel answered for (applied, unchanged or rejected)
    applied: int = 0
    unchanged: int = 0  # sent, and the channel already had it (a repeat after a crash)
    rejected: int = 0  # refused per SKU; recorded as failures and retried next run
    deleted: int = 0  # deletes acknowledged
    skipped: int = 0  # not sent: the channel already has this content hash
    not_sold: int = 0
    failed: int = 0  # operations not delivered: rejected, or the channel was down
    deferred: int = 0  # products not even compared because the channel was down by then
    requests: int = 0
    error: str | None = None  # why the channel stopped taking batches this run


@dataclass
class RunStats:
    """Everything a run counts; ``as_json`` is the admin route's shape."""

    run_id: str
    mode: Mode
    pass_id: str
    resumed: bool
    read: int = 0  # ERP rows read (items, content, lookups)
    erp_requests: int = 0
    products: int = 0  # products joined and checked
    invalid: int = 0  # skipped by a content rule (recorded with the reason)
    withdrawn: int = 0  # blocked in the ERP
    channels: dict[str, ChannelStats] = field(default_factory=dict)
    stopped_by: str | None = None  # "time budget" when the run stopped to continue later
    watermarks: Watermarks = field(default_factory=lambda: Watermarks(None, None))
    complete: bool = False

    def channel(self, name: str) -> ChannelStats:
        return self.channels.setdefault(name, ChannelStats())

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.channels.values())

    @property
    def skipped(self) -> int:
        return sum(c.skipped for c in self.channels.values())

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.channels.values())

    @property
    def deleted(self) -> int:
        return sum(c.deleted for c in self.channels.values())

    def counters(self) -> dict[str, int]:
        return {
            "read": self.read,
            "erpRequests": self.erp_requests,
            "products": self.products,
            "invalid": self.invalid,
            "withdrawn": self.withdrawn,
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "deleted": self.deleted,
        }

    def details(self) -> dict[str, str]:
        return {
            "mode": self.mode,
            "passId": self.pass_id,
            "resumed": "true" if self.resumed else "false",
            "stoppedBy": self.stopped_by or "",
            "watermark": json.dumps(self.watermarks.as_json()),
            "channels": json.dumps({name: asdict(c) for name, c in self.channels.items()}),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "mode": self.mode,
            "passId": self.pass_id,
            "resumed": self.resumed,
            "complete": self.complete,
            "stoppedBy": self.stopped_by,
            **self.counters(),
            "watermark": self.watermarks.as_json(),
            "channels": {name: asdict(c) for name, c in self.channels.items()},
        }


async def record_run(
    tables: TableStorage,
    stats: RunStats,
    started_at: datetime,
    outcome: str,
    error: str = "",
) -> None:
    record = sync_state.RunRecord(JOB, run_id=stats.run_id, started_at=started_at)
    record.counters.update(stats.counters())
    record.details.update(stats.details())
    await record.finish(tables, outcome, error)


async def recent_runs(tables: TableStorage, limit: int = 20) -> list[dict[str, Any]]:
    """The newest run records, in the admin route's shape."""
    runs = []
    for entity in await sync_state.recent_runs(tables, JOB, limit):
        runs.append(_run_json(entity))
    return runs


def _run_json(entity: dict[str, Any]) -> dict[str, Any]:
    counters = {
        key.removeprefix("n_"): value for key, value in entity.items() if key.startswith("n_")
    }
    return {
        "runId": entity.get("runId"),
        "mode": entity.get("d_mode"),
        "passId": entity.get("d_passId"),
        "outcome": entity.get("outcome"),
        "startedAt": _iso(entity.get("startedAt")),
        "endedAt": _iso(entity.get("endedAt")),
        "seconds": entity.get("seconds"),
        "error": entity.get("error") or None,
        "resumed": entity.get("d_resumed") == "true",
        "stoppedBy": entity.get("d_stoppedBy") or None,
        **counters,
        "watermark": _json(entity.get("d_watermark"), {}),
        "channels": _json(entity.get("d_channels"), {}),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _json(text: Any, default: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) and text else default
    except ValueError:
        return default
