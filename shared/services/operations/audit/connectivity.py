"""Layer 2, connectivity: ERP latency and budget, queues, webhook subscriptions.

- Latency: a few small reads sent to the read replica (``Data-Access-Intent: ReadOnly``), one
  after the other so they measure the ERP and not our own concurrency cap.
- Budget: the requests every instance recorded (``erp_usage``) in the last 5-minute window
  as a share of Business Central's 6,000, and throttles, retries and breaker openings over
  the last day: per principal (BC counts each on its own) and in total.
- Queues: dead-letter depth per queue and subscription (``dead_letters.count_all``), the age
  of the oldest dead-lettered and the oldest waiting message (peeked, never received).
- Webhooks: each configured resource must have a subscription to our URL that expires in
  more than a day (Business Central drops them after three days unless renewed).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from azure.servicebus import ServiceBusReceivedMessage
from azure.servicebus.aio import ServiceBusClient

from shared.adapters.dead_letter_queues import DeadLetterQueues
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.models import Item, Subscription
from shared.adapters.erp.request_pipeline import ErpCounters
from shared.adapters.ports import TableStorage
from shared.adapters.stores import erp_usage
from shared.config.policy import SyncPolicy
from shared.config.settings import Settings
from shared.services.operations import dead_letters
from shared.services.operations.audit.models import (
    ConnectivityLayer,
    Latency,
    PrincipalUsage,
    QueueDepth,
    SubscriptionState,
    Usage,
)
from shared.services.operations.audit.stats import NoSamples, budget_share, milliseconds, percentile
from shared.services.operations.audit.verdicts import connectivity_verdict

Progress = Callable[[str], None]
PROBES = 10
WAITING_CAP = 1000
SUBSCRIPTION_MARGIN = timedelta(days=1)
_PEEK_TIMEOUT = 10.0


async def probe_latency(erp: ErpClient, probes: int = PROBES) -> Latency:
    """p50/p99 of ``probes`` one-row reads from the read replica."""
    timings: list[float] = []
    failures = 0
    for _ in range(probes):
        started = time.perf_counter()
        try:
            await erp.find_first("items", Item, "number ne ''", read_only=True)
        except Exception:  # a failed probe is a finding, not a crash of the audit
            failures += 1
            continue
        timings.append(time.perf_counter() - started)
    try:
        p50, p99 = percentile(timings, 0.5), percentile(timings, 0.99)
    except NoSamples:
        return Latency(probes=probes, failures=failures)
    return Latency(
        probes=probes, failures=failures, p50_ms=milliseconds(p50), p99_ms=milliseconds(p99)
    )


def _principal_usage(
    name: str,
    window: erp_usage.UsageTotals | None,
    day: erp_usage.UsageTotals | None,
    budget: int,
    breaker_state: str | None,
) -> PrincipalUsage:
    window = window or erp_usage.UsageTotals()
    day = day or erp_usage.UsageTotals()
    return PrincipalUsage(
        principal=name,
        window_requests=window.requests_sent,
        budget=budget,
        budget_share=budget_share(window.requests_sent, budget),
        day_requests=day.requests_sent,
        day_throttled=day.throttled_responses,
        day_retries=day.retries,
        day_breaker_openings=day.breaker_openings,
        breaker_state=breaker_state,
    )


async def usage_figures(erp: ErpClient, tables: TableStorage, now: datetime) -> Usage:
    """Record this process's usage first, then sum every instance's records per principal."""
    await erp_usage.recorder_for(erp).record(tables)
    return await recorded_usage(tables, erp.principal_counters(), now)


async def recorded_usage(
    tables: TableStorage, current: Sequence[tuple[str, ErpCounters]], now: datetime
) -> Usage:
    """Every instance's records over the window and the day, per principal and in total.

    ``current``: this instance's principals (label and counters, the default one first), for
    their order, their breakers and the label of rows recorded without one. One range query
    over the day serves both figures: the window's rows are its newest."""
    rows = await erp_usage.rows_between(tables, now - timedelta(days=1), now)
    return usage_of_rows(rows, current, now)


def usage_of_rows(
    rows: Sequence[erp_usage.UsageRow], current: Sequence[tuple[str, ErpCounters]], now: datetime
) -> Usage:
    """``rows`` summed per principal: the window's (those from ``now`` - 5 minutes on) and
    all of them as the day's; the total over the principals next to them."""
    breakers = {principal: str(counters.breaker_state) for principal, counters in current}
    default = current[0][0]
    window = erp_usage.by_principal(rows, default, since=now - erp_usage.BUDGET_WINDOW)
    day = erp_usage.by_principal(rows, default)
    # The configured principals in order, then any other one found in the records.
    names = list(breakers) + sorted(set(day) - set(breakers))
    budget = erp_usage.BUDGET_REQUESTS
    principals = [
        _principal_usage(name, window.get(name), day.get(name), budget, breakers.get(name))
        for name in names
    ]
    window_requests = sum(p.window_requests for p in principals)
    return Usage(
        window_seconds=int(erp_usage.BUDGET_WINDOW.total_seconds()),
        window_requests=window_requests,
        budget=budget * len(principals),
        budget_share=budget_share(window_requests, budget * len(principals)),
        day_requests=sum(p.day_requests for p in principals),
        day_throttled=sum(p.day_throttled for p in principals),
        day_retries=sum(p.day_retries for p in principals),
        day_breaker_openings=sum(p.day_breaker_openings for p in principals),
        breaker_state=breakers[default],
        principals=principals,
    )


def _service_bus_client(settings: Settings) -> ServiceBusClient:
    if settings.service_bus_namespace:
        from azure.identity.aio import DefaultAzureCredential

        return ServiceBusClient(settings.service_bus_namespace, DefaultAzureCredential())
    assert settings.service_bus_connection is not None  # guaranteed by Settings validation
    return ServiceBusClient.from_connection_string(settings.service_bus_connection, retry_total=0)


def _age(message: ServiceBusReceivedMessage | None, now: datetime) -> int | None:
    if message is None or message.enqueued_time_utc is None:
        return None
    return max(0, int((now - message.enqueued_time_utc).total_seconds()))


# Subscriptions that require sessions (infra/servicebus-topology.json). Peeking them takes a
# session receiver, which locks the session away from its consumer, so the audit does not
# count their waiting messages (Azure's runtime properties over ATOM could; not done here).
SESSION_ENTITIES = frozenset({"order-status:storefront"})


async def _waiting(client: ServiceBusClient, entity: str, now: datetime) -> tuple[int, int | None]:
    """Active messages (peeked up to a cap) and the age of the oldest one."""
    if entity in SESSION_ENTITIES:
        return 0, None
    topic, _, subscription = entity.partition(":")
    receiver = (
        client.get_subscription_receiver(topic, subscription, prefetch_count=0)
        if subscription
        else client.get_queue_receiver(topic, prefetch_count=0)
    )
    seen, oldest, next_sequence = 0, None, 0
    async with receiver:
        while seen <= WAITING_CAP:
            batch = await receiver.peek_messages(
                max_message_count=min(100, WAITING_CAP + 1 - seen), sequence_number=next_sequence
            )
            if not batch:
                break
            if oldest is None:
                oldest = _age(batch[0], now)
            seen += len(batch)
            next_sequence = max(int(m.sequence_number or 0) for m in batch) + 1
    return seen, oldest


async def queue_depths(settings: Settings, now: datetime) -> list[QueueDepth]:
    """Dead letters and waiting messages of every queue and subscription the product uses."""
    client = _service_bus_client(settings)
    try:
        queues = DeadLetterQueues(client)
        counts = await dead_letters.count_all(queues)

        async def depth(count: dead_letters.DeadLetterCount) -> QueueDepth:
            waiting, oldest, oldest_dead, error = 0, None, None, count.error or None
            if error is None:
                try:
                    waiting, oldest = await asyncio.wait_for(
                        _waiting(client, count.entity, now), _PEEK_TIMEOUT
                    )
                    first = await queues.peek(dead_letters.address_of(count.entity), 1)
                    if first and first[0].enqueued_at is not None:
                        oldest_dead = max(0, int((now - first[0].enqueued_at).total_seconds()))
                except Exception as failure:  # one unreadable entity must not hide the others
                    error = type(failure).__name__
            return QueueDepth(
                queue=count.entity,
                dead_letters=count.count or 0,
                dead_letters_capped=count.capped,
                waiting=min(waiting, WAITING_CAP),
                waiting_capped=waiting > WAITING_CAP,
                oldest_waiting_seconds=oldest,
                oldest_dead_letter_seconds=oldest_dead,
                error=error,
            )

        found = list(await asyncio.gather(*(depth(count) for count in counts.entities)))
        return found
    finally:
        with contextlib.suppress(Exception):
            await client.close()


def _hours(left: timedelta) -> Decimal:
    return (Decimal(int(left.total_seconds())) / 3600).quantize(Decimal("0.1"))


def subscription_states(
    subscriptions: Sequence[Subscription],
    notification_url: str,
    resources: Sequence[str],
    now: datetime,
) -> list[SubscriptionState]:
    """One state per configured resource: its live subscription to our URL and its expiry."""
    states: list[SubscriptionState] = []
    ours = [s for s in subscriptions if s.notification_url == notification_url]
    for resource in resources:
        matching = [s for s in ours if s.resource.strip().rstrip("/").endswith(f"/{resource}")]
        if not matching:
            states.append(SubscriptionState(resource=resource, ok=False, problem="no subscription"))
            continue
        best = max(
            matching,
            key=lambda s: s.expiration_date_time or datetime.min.replace(tzinfo=now.tzinfo),
        )
        expires = best.expiration_date_time
        left = None if expires is None else expires - now
        problem = None
        if left is None:
            problem = "no expiry reported"
        elif left <= SUBSCRIPTION_MARGIN:
            problem = f"expires within a day ({expires:%Y-%m-%d %H:%M} UTC)"
        states.append(
            SubscriptionState(
                resource=resource,
                subscription_id=best.subscription_id,
                expires_at=expires,
                hours_left=None if left is None else _hours(left),
                ok=problem is None,
                problem=problem,
            )
        )
    return states


async def run_connectivity_layer(
    erp: ErpClient,
    tables: TableStorage,
    settings: Settings,
    policy: SyncPolicy,
    now: datetime,
    progress: Progress,
) -> ConnectivityLayer:
    started = time.perf_counter()
    progress(f"connectivity: {PROBES} read-replica probes")
    latency = await probe_latency(erp)
    progress("connectivity: ERP usage from the recorded counters")
    usage = await usage_figures(erp, tables, now)
    progress("connectivity: dead-letter and waiting messages per queue")
    queues = await queue_depths(settings, now)
    progress("connectivity: webhook subscriptions")
    try:
        subscriptions = subscription_states(
            # Custom pages' subscriptions live at their own API's root.
            await erp.list_all_subscriptions(),
            settings.erp_webhook_url,
            settings.erp_webhook_resource_list,
            now,
        )
    except Exception as error:  # an unreadable list is a finding for every resource
        subscriptions = [
            SubscriptionState(resource=r, ok=False, problem=f"list failed: {type(error).__name__}")
            for r in settings.erp_webhook_resource_list
        ]
    verdict = connectivity_verdict(
        latency,
        usage,
        queues,
        subscriptions,
        p99_objective=policy.audit.erp_latency_p99_objective,
        budget_share_objective=policy.audit.erp_budget_share_objective,
        max_dead_letters=policy.audit.max_dead_letters,
    )
    return ConnectivityLayer(
        latency=latency,
        usage=usage,
        queues=queues,
        subscriptions=subscriptions,
        seconds=round(time.perf_counter() - started, 3),
        verdict=verdict,
    )
