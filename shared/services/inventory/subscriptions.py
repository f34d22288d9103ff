"""Keeping the Business Central webhook subscriptions alive (they expire after three days).

The timer lists the subscriptions at the root of each API it needs (BC keeps standard and
custom API subscriptions apart: ``api/v2.0/subscriptions`` and
``api/{publisher}/{group}/{version}/subscriptions``), creates the missing ones for the
configured entity sets, renews those expiring within ``renew_within``, and replaces one whose
``clientState`` is not ours (after a secret rotation its notifications would be refused).

Each entity set is handled on its own: a set BC refuses (a custom page that is not
subscribable, an unreachable API) is logged and reported, and the others are still
subscribed. The subscriptions we hold are recorded in Table storage, so the receiver can tell
our subscriptions from another environment's that point at the same URL.

A lease keeps two runs from creating the same subscription twice; a duplicate would only
mean duplicate, harmless signals.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.errors import ErpError
from shared.adapters.erp.models import Subscription
from shared.adapters.erp.odata import Api
from shared.adapters.ports import TableStorage
from shared.adapters.stores import lease
from shared.adapters.stores.erp_subscriptions import forget, remember

JOB = "erp-subscriptions"
DEFAULT_RENEW_WITHIN = timedelta(hours=36)
_LEASE = timedelta(minutes=5)
_log = logging.getLogger(__name__)


@dataclass
class SubscriptionReport:
    """What a run did per entity set; ``refused`` maps a set to BC's reason."""

    created: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


class SubscriptionsRefused(RuntimeError):
    """Some entity sets could not be subscribed; the others were. Raised after the run so
    the timer records it as failed with the reasons, instead of failing silently."""

    def __init__(self, report: SubscriptionReport) -> None:
        reasons = "; ".join(f"{name}: {why}" for name, why in report.refused.items())
        super().__init__(f"Business Central refused subscriptions for {reasons}")
        self.report = report


def _entity_set_of(subscription: Subscription) -> str:
    path = subscription.resource.strip().split("?", 1)[0]
    return path.rstrip("/").rsplit("/", 1)[-1]


async def maintain_subscriptions(
    erp: ErpClient,
    tables: TableStorage,
    notification_url: str,
    client_state: str,
    entity_sets: Sequence[str],
    *,
    renew_within: timedelta = DEFAULT_RENEW_WITHIN,
    now: datetime | None = None,
    raise_on_refusal: bool = False,
) -> SubscriptionReport:
    """Make sure each entity set has one live subscription to our URL; ``LeaseHeld`` if busy.

    With ``raise_on_refusal`` a run in which BC refused some sets ends with
    ``SubscriptionsRefused`` (after every other set was handled).
    """
    held = await lease.acquire(tables, JOB, _LEASE)
    try:
        report = await _maintain(
            erp, tables, notification_url, client_state, entity_sets, renew_within, now
        )
    finally:
        await held.release()
    if report.refused and raise_on_refusal:
        raise SubscriptionsRefused(report)
    return report


async def _maintain(
    erp: ErpClient,
    tables: TableStorage,
    notification_url: str,
    client_state: str,
    entity_sets: Sequence[str],
    renew_within: timedelta,
    now: datetime | None,
) -> SubscriptionReport:
    report = SubscriptionReport()
    moment = now or datetime.now(UTC)
    listed: dict[Api, list[Subscription] | str] = {}
    for entity_set in entity_sets:
        api = erp.api_of(entity_set)
        if api not in listed:
            try:
                listed[api] = [
                    s
                    for s in await erp.list_subscriptions(api=api)
                    if s.notification_url == notification_url
                ]
            except ErpError as error:
                listed[api] = f"listing failed: {error.message}"
        ours = listed[api]
        if isinstance(ours, str):
            report.refused[entity_set] = ours
            continue
        try:
            await _maintain_one(
                erp, tables, entity_set, api, ours, notification_url, client_state,
                renew_within, moment, report,
            )  # fmt: skip
        except ErpError as error:
            # One refusal (say, a custom page BC cannot subscribe to) must not stop the rest.
            report.refused[entity_set] = f"{type(error).__name__}: {error.message}"
            _log.warning("ERP subscription for %s refused: %s", entity_set, error.message)
    _log.info(
        "ERP subscriptions: created %s, renewed %s, removed %s, kept %s, refused %s",
        report.created,
        report.renewed,
        report.removed,
        report.kept,
        report.refused,
    )
    return report


async def _maintain_one(
    erp: ErpClient,
    tables: TableStorage,
    entity_set: str,
    api: Api,
    ours: list[Subscription],
    notification_url: str,
    client_state: str,
    renew_within: timedelta,
    moment: datetime,
    report: SubscriptionReport,
) -> None:
    live = None
    for subscription in (s for s in ours if _entity_set_of(s) == entity_set):
        if live is None and subscription.client_state == client_state:
            live = subscription
            continue
        # A stale secret or a duplicate: its signals would be refused or doubled.
        await erp.delete_subscription(
            subscription.subscription_id, subscription.etag or "*", api=api
        )
        await forget(tables, subscription.subscription_id)
        report.removed.append(entity_set)
    if live is None:
        created = await erp.create_subscription(entity_set, notification_url, client_state, api=api)
        await remember(tables, created.subscription_id, entity_set, api)
        report.created.append(f"{entity_set}:{created.subscription_id}")
        return
    await remember(tables, live.subscription_id, entity_set, api)
    if live.expiration_date_time is None or live.expiration_date_time - moment <= renew_within:
        await erp.renew_subscription(live.subscription_id, live.etag or "*", api=api)
        report.renewed.append(entity_set)
    else:
        report.kept.append(entity_set)
