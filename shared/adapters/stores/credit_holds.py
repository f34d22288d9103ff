"""Each customer's pending credit in Table storage, changed only through the row's ETag.

PartitionKey = customer number, RowKey = ``pending``. The holds are one JSON document per
customer so that "the sum stays within the limit" is checked and written in one conditional
write: two orders that together exceed the limit cannot both be accepted, because the
second write fails with 412, reloads, and sees the first order's hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from shared.adapters.ports import TableStorage
from shared.adapters.tables import EntityChanged, EntityExists, EntityMissing
from shared.domain.credit import PendingCredit, ReleasedHold

HOLDS_TABLE = "CreditHolds"
_ROW = "pending"
_MAX_CONFLICT_RETRIES = 30

Result = TypeVar("Result")


class PendingCreditBusy(RuntimeError):
    """Too many concurrent writers on one customer's pending credit; try again later."""


@dataclass(frozen=True)
class StoredPending:
    pending: PendingCredit
    etag: str | None


def _entity(pending: PendingCredit) -> dict[str, Any]:
    document = {
        "holds": {order: format(amount, "f") for order, amount in pending.holds.items()},
        "released": {
            order: [format(r.amount, "f"), r.released_at.isoformat()]
            for order, r in pending.released.items()
        },
    }
    return {
        "PartitionKey": pending.customer_no,
        "RowKey": _ROW,
        "held": format(pending.held, "f"),
        "holdCount": len(pending.holds),
        "document": json.dumps(document, separators=(",", ":")),
    }


def _pending_from(customer_no: str, entity: dict[str, Any]) -> PendingCredit:
    document = json.loads(entity["document"])
    return PendingCredit(
        customer_no=customer_no,
        holds={order: Decimal(amount) for order, amount in document["holds"].items()},
        released={
            order: ReleasedHold(Decimal(amount), datetime.fromisoformat(at))
            for order, (amount, at) in document["released"].items()
        },
    )


async def load_pending(tables: TableStorage, customer_no: str) -> StoredPending:
    """The customer's pending credit (empty, etag None, when nothing was ever held)."""
    row = await tables.get(HOLDS_TABLE, customer_no, _ROW)
    if row is None:
        return StoredPending(PendingCredit(customer_no), None)
    return StoredPending(_pending_from(customer_no, row.entity), row.etag)


async def change_pending(
    tables: TableStorage,
    customer_no: str,
    change: Callable[[PendingCredit], tuple[PendingCredit, Result]],
) -> tuple[PendingCredit, Result]:
    """Apply a pure change with optimistic concurrency (reload and re-apply on 412/409).

    `change` may raise (``CreditRefused``) to refuse; nothing is written then.
    """
    for _ in range(_MAX_CONFLICT_RETRIES):
        stored = await load_pending(tables, customer_no)
        updated, result = change(stored.pending)
        if updated == stored.pending:
            return updated, result
        try:
            if stored.etag is None:
                await tables.create(HOLDS_TABLE, _entity(updated))
            else:
                await tables.update(HOLDS_TABLE, _entity(updated), stored.etag)
        except (EntityChanged, EntityExists, EntityMissing):
            continue
        return updated, result
    raise PendingCreditBusy(f"pending credit of {customer_no} kept changing; try again")
