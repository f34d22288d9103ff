"""Orders after booking: the delta poll / reconciliation timer of the ERP lifecycle.

Notifications reach the lifecycle through the ERP webhook processor (``functions/erp_webhooks``);
this timer is the safety net for the ones Business Central never sent.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import azure.functions as func

from functions.timer_runs import recorded_timer
from shared.bootstrap import get_services, lifecycle_deps
from shared.policy import policy_schedule
from shared.services import lease
from shared.services.orders import lifecycle

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
