"""The order sweeper: finish what an interrupted intake left behind, and purge old keys.

Runs on a timer under a lease (one sweep at a time). For every outbox entry older than the
intake timeout (younger ones may belong to an intake still running):
- the order is ``accepted`` but its message was never confirmed: send it again with the
  same MessageId (the broker drops it if the first send had landed; the handler would skip
  it anyway);
- the order is still ``pending``: its intake died; reject it and give back its holds;
- anything else: the entry is stale; drop it.
Then every order held for approval whose ``approvalUntil`` has passed is rejected with the
reason and its holds are given back (``approvals.expire_due``).
Every step is idempotent, so a sweep that dies midway is simply repeated by the next one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from shared.adapters.bus import BusSendFailed
from shared.adapters.stores import idempotency_keys as keys
from shared.adapters.stores import lease
from shared.adapters.stores.orders import load_order, outbox_entries, remove_from_outbox
from shared.domain.orders import OrderStatus
from shared.services.orders.approvals import expire_due
from shared.services.orders.context import OrderContext
from shared.services.orders.intake import abandon_intake
from shared.services.orders.messages import send_booking_message

SWEEP_JOB = "orders-sweep"
_LEASE = timedelta(minutes=2)
_log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    examined: int = 0
    resent: int = 0
    abandoned: int = 0
    cleared: int = 0
    send_failures: int = 0
    approvals_expired: int = 0


async def sweep(ctx: OrderContext) -> SweepReport:
    """One sweep of the outbox; raises ``LeaseHeld`` when another sweep is running."""
    held = await lease.acquire(ctx.tables, SWEEP_JOB, _LEASE)
    report = SweepReport()
    try:
        cutoff = ctx.clock() - ctx.settings.intake_timeout
        for order_id in await outbox_entries(ctx.tables, cutoff):
            report.examined += 1
            await _sweep_one(ctx, order_id, report)
        report.approvals_expired = (await expire_due(ctx)).expired
    finally:
        await held.release()
    return report


async def _sweep_one(ctx: OrderContext, order_id: str, report: SweepReport) -> None:
    stored = await load_order(ctx.tables, order_id)
    if stored is None:
        report.cleared += 1
    elif stored.order.status is OrderStatus.PENDING:
        await abandon_intake(ctx, stored.order, "intake did not finish in time")
        report.abandoned += 1
    elif stored.order.status is OrderStatus.ACCEPTED:
        order = stored.order
        try:
            await send_booking_message(
                ctx.bus, order.order_id, order.generation, order.attempt, order.correlation_id
            )
        except BusSendFailed:
            _log.warning("outbox: order %s still cannot be enqueued", order_id)
            report.send_failures += 1
            return
        report.resent += 1
    else:
        report.cleared += 1
    await remove_from_outbox(ctx.tables, order_id)


async def purge_idempotency_keys(ctx: OrderContext) -> int:
    """Delete Idempotency-Keys older than the retention."""
    return await keys.purge_expired(ctx.tables, ctx.clock())
