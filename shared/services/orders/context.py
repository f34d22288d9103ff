"""Everything order intake, booking and the credit check need, handed in as one object.

Built by the composition root (``shared.bootstrap.order_context``) for the triggers, or by
tests and benchmarks with their own clients, clock and settings.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from shared.adapters.bus import MessageBus
from shared.adapters.erp.client import ErpClient
from shared.adapters.ports import TableStorage
from shared.config.channels import Channels
from shared.domain.credit import CreditPolicy
from shared.domain.orders import (
    ApprovalAction,
    BackorderPolicy,
    BookingRetryPolicy,
    QuantityLimits,
    new_order_id,
)
from shared.domain.pricing import CampaignPolicy, CurrencyTable
from shared.services.credit.figures import CreditFiguresSource
from shared.services.orders.erp import LocationDirectory
from shared.services.pricing.book import PriceBook

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
    # How old a live credit reading intake may reuse (the policy's credit.intakeCache).
    credit_intake_cache: timedelta = timedelta(0)
    idempotency_retention: timedelta = timedelta(hours=24)
    intake_timeout: timedelta = timedelta(seconds=90)
    duplicate_wait: timedelta = timedelta(seconds=20)
    retry: BookingRetryPolicy = field(default_factory=BookingRetryPolicy)
    claim_duration: timedelta = timedelta(minutes=3)
    max_deliveries: int = ORDERS_MAX_DELIVERY_COUNT
    # Channels that sell receipts expected from purchase orders (sync policy).
    expected_receipt_channels: frozenset[str] = frozenset()
    # Per broken rule: reject (the default) or hold for a person's approval, for how long.
    approval_actions: Mapping[str, ApprovalAction] = field(
        default_factory=lambda: MappingProxyType({})
    )
    approval_hold_for: timedelta = timedelta(hours=24)
    # insufficient-stock at backorder: the items whose short lines are backordered (None: off;
    # approval_actions then holds the action for the other items' short lines).
    backorders: BackorderPolicy | None = None
    # Maximum line quantities per customer / item (rule quantity-over-threshold; none: no limit).
    quantity_limits: QuantityLimits = field(default_factory=QuantityLimits)

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


@dataclass
class OrderContext:
    """Clients, per-process caches, settings and the clock of the order and credit flows."""

    tables: TableStorage
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
