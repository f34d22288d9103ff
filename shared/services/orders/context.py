"""Everything order intake, booking and the credit check need, handed in as one object.

Built from the process-wide ``Services`` by ``order_context`` (the trigger modules do it),
or by tests and benchmarks with their own clients, clock and settings.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.adapters.bus import MessageBus
from shared.adapters.erp.client import ErpClient
from shared.adapters.tables import TableStore
from shared.config.channels import Channels
from shared.config.policy import policy_for
from shared.config.settings import Settings
from shared.domain.credit import CreditPolicy
from shared.domain.orders import BookingRetryPolicy, new_order_id
from shared.domain.pricing import CampaignPolicy, CurrencyTable
from shared.services.credit.figures import CreditFiguresSource
from shared.services.orders.erp import LocationDirectory
from shared.services.pricing.book import PriceBook

if TYPE_CHECKING:
    from shared.bootstrap import Services

# Service Bus dead-letters an ``orders`` message after this many deliveries
# (infra/servicebus-topology.json); the handler gives up one delivery earlier, with a reason.
ORDERS_MAX_DELIVERY_COUNT = 10


def utc_now() -> datetime:
    return datetime.now(UTC)


def random_order_id() -> str:
    return new_order_id(time.time_ns() // 1_000_000, os.urandom(10))


@dataclass(frozen=True)
class OrderSettings:
    """The order and credit settings as plain values (tests build their own)."""

    sold_currencies: frozenset[str]
    channels: Channels
    credit_policy: CreditPolicy = field(default_factory=CreditPolicy)
    credit_stale_bound: timedelta = timedelta(minutes=5)
    idempotency_retention: timedelta = timedelta(hours=24)
    intake_timeout: timedelta = timedelta(seconds=90)
    duplicate_wait: timedelta = timedelta(seconds=20)
    retry: BookingRetryPolicy = field(default_factory=BookingRetryPolicy)
    claim_duration: timedelta = timedelta(minutes=3)
    max_deliveries: int = ORDERS_MAX_DELIVERY_COUNT
    # Channels that sell receipts expected from purchase orders (sync policy).
    expected_receipt_channels: frozenset[str] = frozenset()

    def sells_expected(self, channel: str) -> bool:
        """Whether orders of ``channel`` may take receipts expected from purchase orders."""
        return channel in self.expected_receipt_channels

    @property
    def released_credit_memory(self) -> timedelta:
        """How long a booked order's released hold is remembered (see credit holds)."""
        return self.credit_stale_bound + self.credit_policy.replica_lag + timedelta(minutes=5)

    @property
    def stuck_after(self) -> timedelta:
        """An accepted order untouched this long has no booking in flight (its message was
        lost, e.g. expired or dead-lettered by the broker): a replay may send a new one."""
        return self.retry.max_delay + self.claim_duration + timedelta(minutes=1)

    @property
    def booking_timeout(self) -> timedelta:
        """An attempt's ERP work must end well inside its claim, or two could overlap."""
        return self.claim_duration / 2

    @classmethod
    def from_settings(cls, settings: Settings) -> OrderSettings:
        return cls(
            sold_currencies=settings.sold_currency_set,
            channels=settings.channels,
            credit_policy=CreditPolicy(overdue_tolerance=settings.credit_overdue_tolerance),
            credit_stale_bound=policy_for(settings.sync_policy).credit.max_cached,
            idempotency_retention=timedelta(hours=settings.order_idempotency_retention_hours),
            intake_timeout=timedelta(seconds=settings.order_intake_timeout_seconds),
            retry=BookingRetryPolicy(
                max_attempts=settings.order_booking_max_attempts,
                base_delay=timedelta(seconds=settings.order_booking_retry_base_seconds),
                max_delay=timedelta(seconds=settings.order_booking_retry_max_seconds),
            ),
            claim_duration=timedelta(seconds=settings.order_booking_claim_seconds),
            expected_receipt_channels=policy_for(settings.sync_policy).stock.sell_expected_receipts,
        )


@dataclass
class OrderContext:
    """Clients, per-process caches, settings and the clock of the order and credit flows."""

    tables: TableStore
    bus: MessageBus
    erp: ErpClient
    price_book: PriceBook
    currencies: CurrencyTable
    campaign_policy: CampaignPolicy
    settings: OrderSettings
    figures: CreditFiguresSource
    locations: LocationDirectory
    clock: Callable[[], datetime] = utc_now
    random: Callable[[], float] = random.random
    new_order_id: Callable[[], str] = random_order_id


def figures_source(settings: Settings) -> CreditFiguresSource:
    """The process's credit figures reader, from the app settings."""
    return CreditFiguresSource(
        erp_timeout=timedelta(seconds=settings.credit_erp_timeout_seconds),
        stale_bound=policy_for(settings.sync_policy).credit.max_cached,
    )


_settings_cache: dict[int, tuple[Settings, OrderSettings]] = {}


def _order_settings(settings: Settings) -> OrderSettings:
    # Parsing the channels JSON on every invocation would be waste: settings never change.
    cached = _settings_cache.get(id(settings))
    if cached is None or cached[0] is not settings:
        cached = (settings, OrderSettings.from_settings(settings))
        _settings_cache[id(settings)] = cached
    return cached[1]


def order_context(services: Services) -> OrderContext:
    """The context over the process-wide services (clients and caches built once)."""
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
