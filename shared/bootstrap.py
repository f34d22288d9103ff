"""The composition root: the only place that turns settings into objects, once per process.

Functions reuse a worker process across invocations, so table, Service Bus and ERP clients are
created on first use and kept; connection reuse is what keeps the hot path fast. The process's
sync policy (``get_policy``), the order, stock and content settings as plain values, and each
service's narrow view of the clients (``order_context``, ``audit_dependencies``) are made here
too, so no service reads settings or takes the whole ``Services``. Tests build their own
``Services`` with ``build_services`` instead of using the process-wide one.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import httpx
from azure.servicebus.aio import ServiceBusClient

from shared.adapters.blobs import BlobStore
from shared.adapters.bus import MessageBus
from shared.adapters.channels_webhook import WebhookPolicy, catalog_webhook_channels
from shared.adapters.dead_letter_queues import DeadLetterQueues
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.clock import SystemClock
from shared.adapters.erp.config import BookingPrincipal, ErpConfig
from shared.adapters.erp.shared_limits import SharedLimits, SharedLimitSettings
from shared.adapters.stores.erp_limits import TableLimitsStore, principal_key
from shared.adapters.stores.orders import load_order
from shared.adapters.stores.price_snapshot import CONTAINER as SNAPSHOT_CONTAINER
from shared.adapters.stores.price_snapshot import SnapshotBlobs
from shared.adapters.tables import TableStore
from shared.config.policy import SyncPolicy, policy_for
from shared.config.settings import Settings, get_settings
from shared.domain.content.listing import ChannelProfile
from shared.domain.credit import CreditPolicy
from shared.domain.orders import (
    ApprovalAction,
    BackorderPolicy,
    BookingRetryPolicy,
    Order,
    QuantityLimits,
)
from shared.domain.pricing import CampaignPolicy, CurrencyTable, default_currency_table
from shared.domain.stock import StockThresholds
from shared.services.content.delivery import BatchLimits
from shared.services.content.sync import ChannelTarget, SyncOptions
from shared.services.credit.figures import CreditFiguresSource
from shared.services.inventory.policy import StockPolicy, allocation_of
from shared.services.operations.audit.service import AuditDependencies
from shared.services.operations.health import CachedProbes, dependency_probes
from shared.services.orders.context import OrderContext, OrderSettings
from shared.services.orders.erp import LocationDirectory
from shared.services.orders.history import HistoryCache, HistoryDeps
from shared.services.orders.lifecycle import LifecycleDeps, erp_stock_read_back
from shared.services.pricing.book import PriceBook


@dataclass
class Services:
    """Every client and per-process cache the triggers hand out (services get narrow views)."""

    settings: Settings
    tables: TableStore
    bus: MessageBus
    erp: ErpClient
    price_book: PriceBook
    currencies: CurrencyTable
    campaign_policy: CampaignPolicy
    credit_figures: CreditFiguresSource
    stock_policy: StockPolicy
    erp_locations: LocationDirectory
    # One pooled client for every storefront channel's catalog webhook.
    storefront_http: httpx.AsyncClient
    # Peek, count and replay of dead-lettered messages (the bus's client; closed with it).
    dead_letters: DeadLetterQueues
    # The health probes' results, reused for a few seconds (health route, operations page).
    health: CachedProbes
    # The price snapshot blobs (None where the storage has no Blob endpoint configured).
    price_snapshots: SnapshotBlobs | None = None

    async def close(self) -> None:
        await self.dead_letters.close()
        await self.erp.aclose()
        await self.storefront_http.aclose()
        await self.tables.close()
        if self.price_snapshots is not None:
            await self.price_snapshots.store.close()
        await self.bus.close()


def erp_config(settings: Settings) -> ErpConfig:
    """The ERP client's configuration from the app settings."""
    return ErpConfig(
        base_url=settings.erp_base_url,
        tenant=settings.erp_tenant,
        environment=settings.erp_environment,
        company_id=settings.erp_company_id,
        api_publisher=settings.erp_api_publisher,
        api_group=settings.erp_api_group,
        api_version=settings.erp_api_version,
        auth_mode=settings.erp_auth_mode,
        static_token=settings.erp_static_token,
        client_id=settings.erp_client_id,
        client_secret=settings.erp_client_secret,
        booking_principals=tuple(
            BookingPrincipal(
                client_id=principal.client_id,
                client_secret=principal.client_secret,
                static_token=principal.token,
            )
            for principal in settings.booking_principals
        ),
        request_timeout_seconds=settings.erp_timeout_seconds,
        read_timeout_seconds=settings.erp_timeout_seconds,
    )


def storefront_client(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client for storefront webhooks: bounded timeouts, no redirects (signed bodies)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.storefront_timeout_seconds, connect=5.0),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        follow_redirects=False,
    )


def shared_erp_limits(
    settings: Settings, tables: TableStore, principal_number: int = 0
) -> SharedLimits:
    """BC's per-principal slots and budget, leased from Table storage by every instance.

    ``principal_number`` 0 is the default principal, n the n-th of ERP_BOOKING_PRINCIPALS;
    each has its own record, since BC counts each on its own.
    """
    config = erp_config(settings)
    if principal_number:
        config = config.for_principal(config.booking_principals[principal_number - 1])
    # A static token has no client id; its position names it (never the token itself).
    name = config.client_id or (f"static-{principal_number}" if principal_number else "")
    principal = principal_key(
        config.base_url, config.tenant, config.environment, str(config.auth_mode), name
    )
    instance = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return SharedLimits(
        TableLimitsStore(tables, principal),
        instance,
        SharedLimitSettings(
            max_concurrent=config.max_concurrent,
            requests_per_window=config.requests_per_window,
            window_seconds=config.window_seconds,
            # Leases are renewed when requests start; one that started just after a renewal
            # must end (request timeout) well inside the lease, or its slot could be re-let.
            lease_seconds=max(30.0, 3 * config.request_timeout_seconds),
        ),
        SystemClock(),
    )


def _azure_credential() -> Any:
    # Imported lazily: only cloud deployments use managed identity.
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()


def stock_policy(settings: Settings) -> StockPolicy:
    """The stock rules from the settings; channels the sync policy names in
    ``stock.sellExpectedReceipts`` sell receipts expected from purchase orders."""
    expected = policy_for(settings.sync_policy).stock.sell_expected_receipts
    return StockPolicy(
        hold_timeout=timedelta(seconds=settings.stock_hold_timeout_seconds),
        thresholds=StockThresholds(low_stock_level=settings.stock_low_stock_level),
        safety_stock=settings.stock_safety_stock,
        channels=MappingProxyType(
            {
                name: allocation_of(name, channel, name in expected)
                for name, channel in settings.channels.items()
            }
        ),
    )


def figures_source(settings: Settings) -> CreditFiguresSource:
    """The process's credit figures reader, from the app settings."""
    return CreditFiguresSource(
        erp_timeout=timedelta(seconds=settings.credit_erp_timeout_seconds),
        stale_bound=policy_for(settings.sync_policy).credit.max_cached,
    )


def order_settings(settings: Settings) -> OrderSettings:
    """The order and credit settings as plain values, from the app settings and the policy."""
    policy = policy_for(settings.sync_policy)
    approvals = policy.orders.approvals
    return OrderSettings(
        sold_currencies=settings.sold_currency_set,
        channels=settings.channels,
        credit_policy=CreditPolicy(overdue_tolerance=settings.credit_overdue_tolerance),
        credit_stale_bound=policy.credit.max_cached,
        credit_intake_cache=policy.credit.intake_cache,
        idempotency_retention=timedelta(hours=settings.order_idempotency_retention_hours),
        intake_timeout=timedelta(seconds=settings.order_intake_timeout_seconds),
        retry=BookingRetryPolicy(
            max_attempts=settings.order_booking_max_attempts,
            base_delay=timedelta(seconds=settings.order_booking_retry_base_seconds),
            max_delay=timedelta(seconds=settings.order_booking_retry_max_seconds),
        ),
        claim_duration=timedelta(seconds=settings.order_booking_claim_seconds),
        expected_receipt_channels=policy.stock.sell_expected_receipts,
        approval_actions=MappingProxyType(
            {rule: ApprovalAction(action) for rule, action in approvals.actions().items()}
        ),
        approval_hold_for=approvals.hold_for,
        backorders=BackorderPolicy(approvals.backorder.item_categories, approvals.backorder.items)
        if approvals.backorders
        else None,
        quantity_limits=QuantityLimits(
            customers=approvals.quantity_limits.customers,
            items=approvals.quantity_limits.items,
            default=approvals.quantity_limits.default,
        ),
    )


_order_settings_cache: dict[int, tuple[Settings, OrderSettings]] = {}


def _order_settings(settings: Settings) -> OrderSettings:
    # Parsing the channels JSON on every invocation would be waste: settings never change.
    cached = _order_settings_cache.get(id(settings))
    if cached is None or cached[0] is not settings:
        cached = (settings, order_settings(settings))
        _order_settings_cache[id(settings)] = cached
    return cached[1]


def order_context(services: Services) -> OrderContext:
    """The order and credit flows' view of the services (clients and caches built once)."""
    return OrderContext(
        tables=services.tables,
        bus=services.bus,
        erp=services.erp,
        price_book=services.price_book,
        currencies=services.currencies,
        campaign_policy=services.campaign_policy,
        settings=_order_settings(services.settings),
        figures=services.credit_figures,
        locations=services.erp_locations,
    )


def price_snapshot_blobs(settings: Settings) -> SnapshotBlobs | None:
    """The snapshot container: the account's Blob endpoint with the app's identity in Azure;
    locally the storage connection string's, when it names one (Azurite's Blob service)."""
    if settings.storage_account_name:
        store = BlobStore.from_account(
            settings.storage_account_name, _azure_credential(), SNAPSHOT_CONTAINER
        )
        return SnapshotBlobs(store, settings.table_prefix)
    connection = settings.storage_connection or ""
    explicit = any(f"{kind}Endpoint=" in connection for kind in ("Table", "Queue", "File"))
    if "BlobEndpoint=" in connection or (connection and not explicit):
        store = BlobStore.from_connection_string(connection, SNAPSHOT_CONTAINER)
        return SnapshotBlobs(store, settings.table_prefix)
    return None


def build_services(settings: Settings) -> Services:
    """Create the clients the settings describe (connection strings locally, identity in Azure)."""
    if settings.storage_account_name:
        tables = TableStore.from_account(
            settings.storage_account_name, _azure_credential(), settings.table_prefix
        )
    else:
        assert settings.storage_connection is not None  # guaranteed by Settings validation
        tables = TableStore.from_connection_string(
            settings.storage_connection, settings.table_prefix
        )
    # One Service Bus connection per process, shared by the senders and the dead-letter tools.
    if settings.service_bus_namespace:
        sb_client = ServiceBusClient(settings.service_bus_namespace, _azure_credential())
    else:
        assert settings.service_bus_connection is not None
        sb_client = ServiceBusClient.from_connection_string(settings.service_bus_connection)
    bus = MessageBus(sb_client)
    snapshots = price_snapshot_blobs(settings)
    return Services(
        settings=settings,
        tables=tables,
        bus=bus,
        erp=ErpClient(
            erp_config(settings),
            shared_limits=shared_erp_limits(settings, tables),
            booking_shared_limits=[
                shared_erp_limits(settings, tables, number)
                for number in range(1, len(settings.booking_principals) + 1)
            ],
        ),
        price_book=PriceBook(
            tables,
            stale_after=policy_for(settings.sync_policy).prices.freshness_objective,
            snapshots=snapshots,
        ),
        currencies=default_currency_table(settings.local_currency),
        campaign_policy=CampaignPolicy(settings.campaign_policy),
        credit_figures=figures_source(settings),
        stock_policy=stock_policy(settings),
        erp_locations=LocationDirectory(),
        storefront_http=storefront_client(settings),
        dead_letters=DeadLetterQueues(sb_client),
        health=CachedProbes(dependency_probes(tables, bus)),
        price_snapshots=snapshots,
    )


def channel_targets(
    settings: Settings, http: httpx.AsyncClient, policy: WebhookPolicy | None = None
) -> dict[str, ChannelTarget]:
    """Every configured channel that has a catalog webhook, with its assortment and adapter."""
    channels = settings.channels
    adapters = catalog_webhook_channels(
        {name: channel.catalog_webhook for name, channel in channels.items()},
        settings.channel_secret,
        settings.storefront_base_url,
        http,
        policy
        or WebhookPolicy(max_retry_after_seconds=settings.storefront_max_retry_after_seconds),
    )
    return {
        name: ChannelTarget(
            ChannelProfile(
                name=name,
                locale=channel.locale,
                currency=channel.currency,
                categories=None if channel.categories == "*" else frozenset(channel.categories),
            ),
            adapters[name],
        )
        for name, channel in channels.items()
        if name in adapters
    }


def sync_options(settings: Settings) -> SyncOptions:
    """The content sync's run sizes and budget from the app settings."""
    return SyncOptions(
        budget_seconds=settings.content_run_budget_seconds,
        erp_page_size=settings.content_erp_page_size,
        lookup_size=settings.content_erp_lookup_size,
        batch=BatchLimits(max_operations=settings.content_batch_size),
        price_currency=settings.local_currency,
    )


def get_policy() -> SyncPolicy:
    """The process-wide policy: the shipped file with the ``SYNC_POLICY`` app setting over it."""
    return policy_for(get_settings().sync_policy)


def policy_schedule(job: str) -> str:
    """The NCRONTAB of a timer function, for ``@bp.timer_trigger(schedule=...)`` at import."""
    return get_policy().schedule(job)


def audit_dependencies(services: Services) -> AuditDependencies:
    """The narrow view of the services an audit run uses."""
    return AuditDependencies(
        erp=services.erp,
        tables=services.tables,
        settings=services.settings,
        price_book=services.price_book,
        currencies=services.currencies,
        campaign_policy=services.campaign_policy,
        policy=policy_for(services.settings.sync_policy),
    )


def lifecycle_deps(services: Services) -> LifecycleDeps:
    """What following booked orders in the ERP needs (orders, lifecycle rows, ERP, bus)."""
    tables = services.tables

    async def booked_order(order_id: str) -> Order | None:
        stored = await load_order(tables, order_id)
        return None if stored is None else stored.order

    return LifecycleDeps(
        tables=tables,
        bus=services.bus,
        erp=services.erp,
        load_order=booked_order,
        stock_read_back=erp_stock_read_back(services.erp, services.bus, _utc_now),
        clock=_utc_now,
    )


_history_cache = HistoryCache()


def history_deps(services: Services) -> HistoryDeps:
    """B2B history: the ERP (read replica), this process's answer cache and its bound."""
    return HistoryDeps(
        erp=services.erp,
        cache=_history_cache,
        cache_for=policy_for(services.settings.sync_policy).orders.history_cache,
        clock=_utc_now,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


_services: Services | None = None


def get_services() -> Services:
    """The process-wide services, built on first use."""
    global _services
    if _services is None:
        _services = build_services(get_settings())
    return _services
