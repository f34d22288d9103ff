"""The operations page's business sections: transactional accuracy, impact, the last audit,
the orders waiting for approval, the ERP budget per principal.

Each reads what the product already records (the order-outcome ledger, stored audit runs) and
answers a titled key/value table; the page shows it beside the technical sections. Each
takes the tables and the sync policy, no more (the trigger hands them in).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.adapters.erp.request_pipeline import ErpCounters
from shared.adapters.ports import TableStorage
from shared.adapters.stores import erp_usage
from shared.adapters.stores.approvals import waiting
from shared.adapters.stores.orders import load_order
from shared.config.policy import SyncPolicy
from shared.services.operations import impact
from shared.services.operations.audit.connectivity import usage_of_rows
from shared.services.operations.audit.runs import recent_summaries
from shared.services.operations.overview import ExtraSection, KeyValue

ACCURACY_WINDOW = timedelta(days=7)
IMPACT_DAYS = 30


def _percent(rate: Decimal | None) -> str:
    return "no booked orders yet" if rate is None else f"{rate * 100:.2f} %"


async def accuracy_section(tables: TableStorage, policy: SyncPolicy) -> ExtraSection:
    """Booked orders whose ERP total equals what intake promised, over the last week."""
    now = datetime.now(UTC)
    figures = await impact.accuracy(tables, now - ACCURACY_WINDOW, now)
    objective = policy.audit.accuracy_objective
    return ExtraSection(
        title="Transactional accuracy (last 7 days)",
        rows=[
            KeyValue(key="accuracy rate", value=_percent(figures.rate)),
            KeyValue(key="objective", value=_percent(objective)),
            KeyValue(key="booked orders", value=str(figures.booked)),
            KeyValue(key="repriced by the ERP", value=str(figures.repriced)),
            KeyValue(key="rejected at booking", value=str(figures.rejected_at_booking)),
            KeyValue(key="formula", value="1 - repriced / booked"),
        ],
    )


async def impact_section(tables: TableStorage, policy: SyncPolicy) -> ExtraSection:
    """Problems caught at intake versus those that reached the ERP, and what that saves."""
    report = await impact.impact_report(tables, policy, days=IMPACT_DAYS)
    totals = report.totals
    return ExtraSection(
        title=f"Business impact (last {IMPACT_DAYS} days)",
        rows=[
            KeyValue(key="problems caught at intake", value=str(totals.caught_orders)),
            KeyValue(key="problems that reached the ERP", value=str(totals.reached_erp)),
            KeyValue(key="orders saved by approval", value=str(totals.saved_by_approval)),
            KeyValue(key="orders saved by backorder", value=str(totals.saved_by_backorder)),
            KeyValue(key="held orders rejected or expired", value=str(totals.rejected_at_approval)),
            KeyValue(
                key="estimated cost avoided per month",
                value=f"{report.estimated_cost_avoided_per_month} {report.currency}",
            ),
            KeyValue(key="formula", value=report.formula),
        ],
    )


async def audit_section(tables: TableStorage, policy: SyncPolicy) -> ExtraSection:
    """The latest audit's verdicts (``python -m functions.audit_cli``)."""
    summaries = await recent_summaries(tables, limit=1)
    if not summaries:
        return ExtraSection(
            title="Integration audit",
            rows=[KeyValue(key="last run", value="never (POST /api/ops/audit runs one)")],
        )
    last = summaries[0]
    verdicts = json.loads(last.get("verdicts") or "{}")
    rows = [
        KeyValue(key="last run", value=str(last.get("startedAt", ""))),
        KeyValue(key="result", value="pass" if last.get("passed") else "FAIL"),
    ]
    rows += [
        KeyValue(key=f"layer {layer}", value="pass" if passed else "FAIL")
        for layer, passed in verdicts.items()
    ]
    if "accuracy" in last:
        rows.append(KeyValue(key="sampled accuracy", value=_percent(Decimal(last["accuracy"]))))
    return ExtraSection(title="Integration audit", rows=rows)


async def approvals_section(tables: TableStorage, policy: SyncPolicy) -> ExtraSection:
    """Orders held for approval (``GET /api/ops/approvals`` has the figures), soonest first."""
    rows = []
    for entry in await waiting(tables):
        stored = await load_order(tables, entry.order_id)
        if stored is None or str(stored.order.status) != "pending-approval":
            continue  # decided a moment ago
        order = stored.order
        rules = ", ".join(sorted({str(v.rule) for v in order.violations}))
        rows.append(
            KeyValue(
                key=order.order_id,
                value=(
                    f"customer {order.customer_no}, {order.total_amount} {order.currency}, "
                    f"breaks {rules}; held until {entry.until.isoformat()}"
                ),
            )
        )
    if not rows:
        rows = [KeyValue(key="waiting", value="none")]
    return ExtraSection(title="Orders waiting for approval", rows=rows)


def _share(value: Decimal) -> str:
    return f"{(value * 100).quantize(Decimal('0.01'))} %"


async def erp_budget_section(
    tables: TableStorage,
    principals: Sequence[tuple[str, ErpCounters]],
    now: datetime | None = None,
) -> ExtraSection:
    """ERP requests every instance recorded in the budget window, per principal (Business
    Central counts its 6,000 per 5 minutes for each on its own) and in total.

    ``principals``: this instance's, the default one first (rows recorded without a principal
    are the default's). Only the window's rows are read, a few per instance and principal, so
    the page stays fast; the day's figures per principal are the audit's (a day of rows takes
    about a second to read at 10 instances and 4 principals, docs/benchmarks.md)."""
    moment = now or datetime.now(UTC)
    rows = await erp_usage.rows_between(tables, moment - erp_usage.BUDGET_WINDOW, moment)
    usage = usage_of_rows(rows, principals, moment)
    minutes = usage.window_seconds // 60
    figures = [
        (f"principal {p.principal}", p.window_requests, p.budget, p.budget_share, p.breaker_state)
        for p in usage.principals
    ]
    figures.append(("total", usage.window_requests, usage.budget, usage.budget_share, None))
    return ExtraSection(
        title=f"ERP budget (last {minutes} min, recorded by every instance)",
        rows=[
            KeyValue(
                key=key,
                value=f"{sent} of {budget} requests ({_share(share)})"
                + (f"; breaker {breaker}" if breaker else ""),
            )
            for key, sent, budget, share, breaker in figures
        ],
    )


SECTIONS = (accuracy_section, impact_section, approvals_section, audit_section)


# The signature every section shares (the operations trigger may add its own).
SectionProvider = Callable[[TableStorage, SyncPolicy], Awaitable[ExtraSection]]
