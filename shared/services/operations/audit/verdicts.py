"""Each layer's verdict against the policy's objectives, with the reasons in words. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from shared.services.operations.audit.models import (
    DatasetComparison,
    Latency,
    QueueDepth,
    SubscriptionState,
    Usage,
    Verdict,
)


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60} min"
    return f"{value.total_seconds():g} s"


def percent(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal('0.01'))} %"


def data_verdict(
    datasets: Sequence[DatasetComparison],
    publisher_last_success: datetime | None,
    price_objective: timedelta,
    now: datetime,
) -> Verdict:
    reasons: list[str] = []
    for dataset in datasets:
        if dataset.over_policy:
            reasons.append(
                f"{dataset.name}: {dataset.over_policy} row(s) missing, extra or different for "
                f"longer than {_duration(timedelta(seconds=dataset.objective_seconds))} "
                f"(missing {dataset.missing.total}, extra {dataset.extra.total}, "
                f"different {dataset.differing.total})"
            )
    if publisher_last_success is None:
        reasons.append("prices: the publisher has never completed a run")
    elif now - publisher_last_success > price_objective:
        reasons.append(
            f"prices: the publisher last succeeded {_duration(now - publisher_last_success)} "
            f"ago, objective {_duration(price_objective)}"
        )
    return Verdict(
        layer="data",
        passed=not reasons,
        reasons=reasons,
        objectives={
            "rows older than policy": "0",
            "price data freshness": _duration(price_objective),
            **{
                d.name: _duration(timedelta(seconds=d.objective_seconds))
                for d in datasets
                if not d.name.startswith("channel ")
            },
        },
    )


def connectivity_verdict(
    latency: Latency,
    usage: Usage,
    queues: Sequence[QueueDepth],
    subscriptions: Sequence[SubscriptionState],
    *,
    p99_objective: timedelta,
    budget_share_objective: Decimal,
    max_dead_letters: int,
) -> Verdict:
    reasons: list[str] = []
    objective_ms = Decimal(int(p99_objective.total_seconds() * 1000))
    if latency.p99_ms is None:
        reasons.append(f"ERP: no read-replica probe answered ({latency.failures} failed)")
    else:
        if latency.p99_ms > objective_ms:
            reasons.append(f"ERP latency p99 {latency.p99_ms} ms > objective {objective_ms} ms")
        if latency.failures:
            reasons.append(f"ERP: {latency.failures} of {latency.probes} probes failed")
    minutes = usage.window_seconds // 60
    objective = percent(budget_share_objective)
    several = len(usage.principals) > 1
    if not several and usage.budget_share > budget_share_objective:
        reasons.append(
            f"ERP budget: {percent(usage.budget_share)} of {usage.budget} requests used in the "
            f"last {minutes} min > objective {objective}"
        )
    # Business Central throttles each principal on its own: one over its budget is a finding
    # however much room the others have.
    for principal in usage.principals if several else ():
        if principal.budget_share > budget_share_objective:
            reasons.append(
                f"ERP budget of principal {principal.principal}: "
                f"{percent(principal.budget_share)} of {principal.budget} requests used in the "
                f"last {minutes} min > objective {objective}"
            )
    if usage.breaker_state == "open":
        reasons.append("ERP circuit breaker is open")
    for principal in usage.principals[1:]:
        if principal.breaker_state == "open":
            reasons.append(f"ERP circuit breaker of principal {principal.principal} is open")
    for queue in queues:
        if queue.error:
            reasons.append(f"{queue.queue}: could not be read ({queue.error})")
        elif queue.dead_letters > max_dead_letters:
            more = "+" if queue.dead_letters_capped else ""
            reasons.append(
                f"{queue.queue}: {queue.dead_letters}{more} dead-lettered message(s) "
                f"> objective {max_dead_letters}"
            )
    for subscription in subscriptions:
        if not subscription.ok:
            reasons.append(f"webhook {subscription.resource}: {subscription.problem}")
    return Verdict(
        layer="connectivity",
        passed=not reasons,
        reasons=reasons,
        objectives={
            "ERP latency p99": f"{objective_ms} ms",
            "ERP budget share (5 min)": percent(budget_share_objective),
            "dead letters per queue": str(max_dead_letters),
            "webhook subscriptions": "one per resource, expiring in more than 1 day",
        },
    )


def logic_verdict(
    compared: int, accuracy: Decimal | None, errors: int, objective: Decimal
) -> Verdict:
    reasons: list[str] = []
    if compared == 0 or accuracy is None:
        reasons.append("no (customer, item, quantity) triple could be compared")
    elif accuracy < objective:
        reasons.append(
            f"transactional accuracy {percent(accuracy)} < objective {percent(objective)}"
        )
    if errors:
        reasons.append(f"{errors} triple(s) could not be priced by both sides")
    return Verdict(
        layer="logic",
        passed=not reasons,
        reasons=reasons,
        objectives={"transactional accuracy": percent(objective)},
    )
