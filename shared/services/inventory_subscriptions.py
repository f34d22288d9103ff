"""Keeping the Business Central webhook subscriptions alive (they expire after three days).

The timer lists the subscriptions, creates the missing ones for the configured entity sets,
renews those expiring within ``renew_within``, and replaces one whose ``clientState`` is not
ours (after a secret rotation its notifications would be refused). A lease keeps two runs from
creating the same subscription twice; a duplicate would only mean duplicate, harmless signals.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.models import Subscription
from shared.adapters.tables import TableStore
from shared.services import lease

JOB = "erp-subscriptions"
DEFAULT_RENEW_WITHIN = timedelta(hours=36)
_LEASE = timedelta(minutes=5)
_log = logging.getLogger(__name__)


@dataclass
class SubscriptionReport:
    created: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _entity_set_of(subscription: Subscription) -> str:
    return subscription.resource.strip().rstrip("/").rsplit("/", 1)[-1]


async def maintain_subscriptions(
    erp: ErpClient,
    tables: TableStore,
    notification_url: str,
    client_state: str,
    entity_sets: Sequence[str],
    *,
    renew_within: timedelta = DEFAULT_RENEW_WITHIN,
    now: datetime | None = None,
) -> SubscriptionReport:
    """Make sure each entity set has one live subscription to our URL; ``LeaseHeld`` if busy."""
    held = await lease.acquire(tables, JOB, _LEASE)
    try:
        return await _maintain(erp, notification_url, client_state, entity_sets, renew_within, now)
    finally:
        await held.release()


async def _maintain(
    erp: ErpClient,
    notification_url: str,
    client_state: str,
    entity_sets: Sequence[str],
    renew_within: timedelta,
    now: datetime | None,
) -> SubscriptionReport:
    report = SubscriptionReport()
    moment = now or datetime.now(UTC)
    ours = [s for s in await erp.list_subscriptions() if s.notification_url == notification_url]
    for entity_set in entity_sets:
        current = [s for s in ours if _entity_set_of(s) == entity_set]
        live = None
        for subscription in current:
            if live is None and subscription.client_state == client_state:
                live = subscription
                continue
            # A stale secret or a duplicate: its signals would be refused or doubled.
            await erp.delete_subscription(subscription.subscription_id, subscription.etag or "*")
            report.removed.append(entity_set)
        if live is None:
            created = await erp.create_subscription(entity_set, notification_url, client_state)
            report.created.append(f"{entity_set}:{created.subscription_id}")
        elif live.expiration_date_time is None or (
            live.expiration_date_time - moment <= renew_within
        ):
            await erp.renew_subscription(live.subscription_id, live.etag or "*")
            report.renewed.append(entity_set)
        else:
            report.kept.append(entity_set)
    _log.info(
        "ERP subscriptions: created %s, renewed %s, removed %s, kept %s",
        report.created,
        report.renewed,
        report.removed,
        report.kept,
    )
    return report
