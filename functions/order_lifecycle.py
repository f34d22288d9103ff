"""Orders after booking: the delta poll / reconciliation timer of the ERP lifecycle.

Notifications reach the lifecycle through the ERP webhook processor (``functions/erp_webhooks``);
this timer is the safety net for the ones Business Central never sent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import azure.functions as func

from functions.timer_runs import recorded_timer
from shared.adapters.ports import TableStorage
from shared.adapters.stores import lease
from shared.bootstrap import get_services, lifecycle_deps, policy_schedule
from shared.config.policy import SyncPolicy
from shared.services.operations.overview import ExtraSection, KeyValue
from shared.services.orders import lifecycle, lifecycle_ops

bp = func.Blueprint()
_log = logging.getLogger(__name__)
_LEASE = "order-lifecycle-poll"
_LEASE_DURATION = timedelta(minutes=4)


@bp.function_name("order_lifecycle_poll")
@bp.timer_trigger(
    arg_name="timer", schedule=policy_schedule("order_lifecycle_poll"), run_on_startup=False
)
@recorded_timer("order_lifecycle_poll")
async def poll(timer: func.TimerRequest) -> None:
    """Refresh the orders whose ERP documents changed since the watermark, then the followed
    orders not looked at for an hour. A lease keeps two runs apart (``LeaseHeld`` is recorded
    as a skipped run); every refresh is idempotent, so an overlap would only cost reads."""
    services = get_services()
    held = await lease.acquire(services.tables, _LEASE, _LEASE_DURATION)
    try:
        report = await lifecycle.poll(lifecycle_deps(services))
    finally:
        await held.release()
    published = sum(1 for r in report.refreshed if r.outcome is lifecycle.Outcome.PUBLISHED)
    _log.info(
        "order lifecycle poll: %s ERP rows, %s orders refreshed (%s reconciled), %s published",
        report.read,
        len(report.refreshed),
        report.reconciled,
        published,
    )


async def ops_section(tables: TableStorage, policy: SyncPolicy) -> ExtraSection:
    """Operations page: orders waiting for ERP progress, and the oldest one not shipped."""
    summary = await lifecycle_ops.waiting_summary(tables)
    rows = [KeyValue(key="orders waiting for ERP progress", value=str(summary.waiting))]
    rows += [KeyValue(key=f"  {status}", value=str(n)) for status, n in summary.by_status.items()]
    if summary.oldest_unshipped_order and summary.oldest_unshipped_booked_at:
        age = datetime.now(UTC) - summary.oldest_unshipped_booked_at
        rows.append(
            KeyValue(
                key="oldest unshipped",
                value=(
                    f"{summary.oldest_unshipped_order} booked "
                    f"{summary.oldest_unshipped_booked_at.isoformat()} ({_age(age)} ago)"
                ),
            )
        )
    else:
        rows.append(KeyValue(key="oldest unshipped", value="none"))
    return ExtraSection(title="Orders after booking (ERP lifecycle)", rows=rows)


def _age(age: timedelta) -> str:
    hours, rest = divmod(int(age.total_seconds()), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min"
