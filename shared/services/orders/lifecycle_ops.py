"""Operations and audit views of the order lifecycle.

- `waiting_summary`: the orders still waiting for ERP progress (followed, not invoiced or
  cancelled), by status, and the oldest one not yet shipped (operations page).
- `lifecycle_rows`: the audit's comparison of each followed order's stored lifecycle (what the
  storefronts were told) with a fresh fold of the ERP's documents: an order whose lifecycle
  drifted (a change no notification or poll brought in) shows as a differing row. Reads 4 ERP
  requests per order, so it looks at the `limit` longest-waiting orders only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.documents import read_order_documents
from shared.adapters.ports import TableStorage
from shared.adapters.stores import order_lifecycle as store
from shared.adapters.stores.orders import load_order
from shared.domain.orders import OrderStatus
from shared.domain.orders.lifecycle import LifecycleStatus, fold
from shared.services.operations.audit.checksums import RowState
from shared.services.orders.lifecycle import booked_lines, snapshot_of

_UNSHIPPED = frozenset({str(LifecycleStatus.BOOKED), str(LifecycleStatus.RELEASED)})


@dataclass(frozen=True)
class WaitingSummary:
    waiting: int
    by_status: dict[str, int]
    oldest_unshipped_order: str | None
    oldest_unshipped_booked_at: datetime | None


async def waiting_summary(tables: TableStorage) -> WaitingSummary:
    """Orders waiting for ERP progress and the oldest one nothing was shipped of."""
    followed = await store.tracked(tables)
    unshipped = [order for order in followed if order.status in _UNSHIPPED]
    oldest = unshipped[0] if unshipped else None
    return WaitingSummary(
        waiting=len(followed),
        by_status=dict(sorted(Counter(order.status for order in followed).items())),
        oldest_unshipped_order=oldest.order_id if oldest else None,
        oldest_unshipped_booked_at=oldest.booked_at if oldest else None,
    )


def _digest(fingerprint: str) -> int:
    return int(fingerprint[:16], 16)


async def lifecycle_rows(
    erp: ErpClient, tables: TableStorage, limit: int
) -> tuple[dict[str, RowState], dict[str, RowState]]:
    """(ERP side, product side) per followed order id, for ``compare_rows``."""
    erp_side: dict[str, RowState] = {}
    product_side: dict[str, RowState] = {}
    for followed in (await store.tracked(tables))[:limit]:
        stored = await load_order(tables, followed.order_id)
        if stored is None or stored.order.status is not OrderStatus.BOOKED:
            continue
        order = stored.order
        if not order.erp_order_id or not order.erp_order_number:
            continue
        documents = await read_order_documents(
            erp, UUID(order.erp_order_id), order.erp_order_number
        )
        truth = fold(booked_lines(order), snapshot_of(documents))
        changed = documents.order.last_modified_date_time if documents.order else None
        erp_side[order.order_id] = RowState(_digest(truth.fingerprint), changed)
        record = await store.load(tables, order.order_id)
        if record is not None:
            product_side[order.order_id] = RowState(
                _digest(record.lifecycle.fingerprint), record.occurred_at
            )
    return erp_side, product_side
