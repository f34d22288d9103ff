"""One audit run: the chosen layers in a fixed order, the report stored, usage recorded.

Connectivity runs first, so the budget share it reports is the product's own load and not the
audit's reads that follow. The same function serves the command
(``python -m functions.audit_cli``) and the admin route (``POST /api/ops/audit``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.adapters.erp.client import ErpClient
from shared.adapters.ports import TableStorage
from shared.adapters.stores import erp_usage
from shared.config.policy import SyncPolicy
from shared.config.settings import Settings
from shared.domain.pricing import CampaignPolicy, CurrencyTable
from shared.services.operations import impact
from shared.services.operations.audit import runs
from shared.services.operations.audit.connectivity import run_connectivity_layer
from shared.services.operations.audit.data_layer import run_data_layer
from shared.services.operations.audit.logic_layer import run_logic_layer
from shared.services.operations.audit.models import LAYERS, AuditReport, Layer, Verdict
from shared.services.pricing.book import PriceBook

Progress = Callable[[str], None]
IMPACT_DAYS = 30
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditOptions:
    """What to audit; ``None`` takes the policy's value (or today's date for the seed)."""

    layers: Sequence[Layer] = LAYERS
    sample_size: int | None = None
    seed: int | None = None
    policy: SyncPolicy | None = None
    store: bool = True
    # Judge freshness as of this moment instead of now ("what if the publisher stays
    # stopped for another 20 minutes"); ERP reads are live either way.
    judge_at: datetime | None = None
    impact_days: int = IMPACT_DAYS


@dataclass(frozen=True)
class AuditDependencies:
    """What an audit run reads and writes, handed in by the composition root."""

    erp: ErpClient
    tables: TableStorage
    settings: Settings
    price_book: PriceBook
    currencies: CurrencyTable
    campaign_policy: CampaignPolicy
    # The process's sync policy; ``AuditOptions.policy`` overrides it for one run.
    policy: SyncPolicy


def default_seed(on: date) -> int:
    """Same sample all day (comparable reruns), a different one tomorrow."""
    return int(on.strftime("%Y%m%d"))


async def run_audit(
    services: AuditDependencies,
    options: AuditOptions | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Run the layers, store the report (unless told not to) and return it."""
    chosen = options or AuditOptions()
    say: Progress = progress or (lambda line: _log.info("audit: %s", line))
    policy = chosen.policy or services.policy
    started_at = datetime.now(UTC)
    run_id = uuid.uuid4().hex
    layers = [layer for layer in LAYERS if layer in chosen.layers]
    notes: list[str] = []
    report_parts: dict[str, Any] = {}

    if "connectivity" in layers:
        report_parts["connectivity"] = await run_connectivity_layer(
            services.erp, services.tables, services.settings, policy, started_at, say
        )
    if "data" in layers:
        report_parts["data"] = await run_data_layer(
            services.erp,
            services.tables,
            services.settings.channels,
            policy,
            chosen.judge_at or datetime.now(UTC),
            say,
        )
    if "logic" in layers:
        since = started_at - timedelta(days=chosen.impact_days)
        surprises = await impact.booking_surprises(services.tables, since, policy.audit.list_limit)
        today = started_at.date()
        report_parts["logic"] = await run_logic_layer(
            services.erp,
            services.price_book,
            services.currencies,
            services.settings.sold_currency_set,
            services.campaign_policy,
            sample_size=chosen.sample_size or policy.audit.sample_size,
            seed=chosen.seed if chosen.seed is not None else default_seed(today),
            run_id=run_id,
            accuracy_objective=policy.audit.accuracy_objective,
            list_limit=policy.audit.list_limit,
            today=today,
            progress=say,
            booking_surprises=surprises,
            booking_surprises_since=since,
        )

    say("impact: business impact report")
    impact_figures = await impact.impact_report(services.tables, policy, days=chosen.impact_days)

    # The audit's own ERP requests count against the budget like any other.
    await erp_usage.recorder_for(services.erp).record(services.tables)
    verdicts: list[Verdict] = [
        part.verdict for name in LAYERS if (part := report_parts.get(name)) is not None
    ]
    report = AuditReport(
        run_id=run_id,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        layers=layers,
        passed=all(v.passed for v in verdicts),
        verdicts=verdicts,
        impact=impact_figures,
        notes=notes,
        **report_parts,
    )
    if chosen.store:
        await runs.save_report(services.tables, report)
    report = report.model_copy(update={"history": await runs.history(services.tables)})
    outcomes = ", ".join(f"{v.layer} {'ok' if v.passed else 'failed'}" for v in verdicts)
    say(f"done: {'PASS' if report.passed else 'FAIL'} ({outcomes})")
    return report


async def latest_with_history(tables: TableStorage) -> AuditReport | None:
    """The newest stored report with the current history (for the admin routes)."""
    report = await runs.latest_report(tables)
    if report is None:
        return None
    return report.model_copy(update={"history": await runs.history(tables)})
