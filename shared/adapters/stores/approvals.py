"""The list of orders waiting for approval (table ``OrderApprovals``).

One row per held order (PartitionKey ``waiting``, RowKey = order id, ``until`` = when the
approval expires). The row is written before the order turns ``pending-approval`` and removed
once everything after the decision is done (holds given back, status published), so every
waiting order has a row; rows are hints, the order row is the truth (a row whose order was
decided meanwhile is finished or just dropped by the next sweep).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.ports import TableStorage
from shared.adapters.tables import EntityChanged

APPROVALS_TABLE = "OrderApprovals"
_WAITING = "waiting"


@dataclass(frozen=True)
class WaitingApproval:
    order_id: str
    until: datetime


async def add_waiting(tables: TableStorage, order_id: str, until: datetime) -> None:
    await tables.upsert(
        APPROVALS_TABLE, {"PartitionKey": _WAITING, "RowKey": order_id, "until": until}
    )


async def mark_due(tables: TableStorage, order_id: str, now: datetime) -> None:
    """A decision is about to be written: the expiry sweep looks at the order from ``now`` on,
    so holds a crash leaves behind after the decision are given back by the next sweep (it
    finds the order decided, or not yet expired and leaves it waiting)."""
    await add_waiting(tables, order_id, now)


async def is_listed(tables: TableStorage, order_id: str) -> bool:
    """Whether the order still has its row: what follows its decision may not all be done."""
    return await tables.get(APPROVALS_TABLE, _WAITING, order_id) is not None


async def remove_waiting(tables: TableStorage, order_id: str) -> None:
    with contextlib.suppress(EntityChanged):
        await tables.delete(APPROVALS_TABLE, _WAITING, order_id)


async def waiting(tables: TableStorage) -> list[WaitingApproval]:
    """Every order listed as waiting, soonest expiry first."""
    rows = [
        WaitingApproval(row.row_key, row.entity["until"])
        async for row in tables.partition(APPROVALS_TABLE, _WAITING)
    ]
    return sorted(rows, key=lambda w: (w.until, w.order_id))
