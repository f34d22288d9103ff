"""Shared set-up of the order and credit integration tests (their fixtures are in
tests/integration/conftest.py).

Real components only: a private ERP simulator (its faults and data are ours to change), a
private Service Bus stand-in with the product's topology (the ``orders`` lock shortened so a
crashed delivery comes back within seconds), Azurite with a fresh table prefix per test. A
small host loop settles ``orders`` messages the way the Functions host does: complete on
success, abandon on an exception, dead-letter on the product's dead-letter errors.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from azure.servicebus import NEXT_AVAILABLE_SESSION
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver
from azure.servicebus.exceptions import OperationTimeoutError

from devtools.erp_sim.testing import custom_api, standard_api
from devtools.servicebus.testing import DEFAULT_TOPOLOGY, StandinHandle
from devtools.servicebus.topology import load_topology
from functions.orders import render_intake
from shared.adapters.bus import MessageBus
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.adapters.stores import stock as stock_store
from shared.adapters.tables import TableStore
from shared.config.channels import DEMO_CHANNELS, parse_channels
from shared.domain.credit import CreditPolicy
from shared.domain.orders import BookingRetryPolicy
from shared.domain.pricing import CampaignPolicy, default_currency_table
from shared.domain.stock import StockPosition
from shared.services.credit.figures import CreditFiguresSource
from shared.services.orders.api import OrderRequest
from shared.services.orders.booking import BookingFailed, BookingReport, UnknownOrder
from shared.services.orders.booking import handle_booking_message as handle
from shared.services.orders.context import OrderContext, OrderSettings, utc_now
from shared.services.orders.erp import LocationDirectory
from shared.services.orders.intake import IntakeOutcome, IntakeReplayed, submit_order
from shared.services.orders.messages import OrderMessage
from shared.services.pricing.book import PriceBook

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")
TOPOLOGY_FILE = Path(__file__).resolve().parents[2] / "infra" / "servicebus-topology.json"
SEED = 7


def short_lock_topology() -> dict[str, Any]:
    """The product's topology with a 3 s lock on ``orders`` (a crash is noticed quickly)."""
    document = json.loads(TOPOLOGY_FILE.read_text())
    for queue in document["UserConfig"]["Namespaces"][0]["Queues"]:
        if queue["Name"] == "orders":
            queue["Properties"]["LockDuration"] = "PT3S"
    return dict(document)


def erp_config(base_url: str) -> ErpConfig:
    """A client config that gives up quickly, so outage tests take seconds, not minutes."""
    return ErpConfig(
        base_url=base_url,
        tenant="local",
        environment="sandbox",
        company_id=COMPANY,
        retry_max_attempts=2,
        retry_base_backoff_seconds=0.05,
        retry_max_backoff_seconds=0.2,
        breaker_failure_threshold=50,
        request_timeout_seconds=5,
        read_timeout_seconds=5,
        ambiguous_lookup_attempts=3,
        ambiguous_lookup_delay_seconds=0.1,
        # The simulator's own bound (it queues at most this long, see the queue test):
        # keeps claims and waits after an ambiguous create at seconds, not BC's 10 minutes.
        answer_limit_seconds=1.5,
        default_retry_after_seconds=0.2,
        max_retry_after_seconds=1,
    )


def sim_post(sim: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{sim}{path}", json=body, timeout=30)
    response.raise_for_status()
    return dict(response.json()) if response.content else {}


def set_faults(sim: str, **faults: Any) -> None:
    sim_post(sim, "/_sim/faults", faults)


def erp_orders(sim: str, order_id: str) -> list[dict[str, Any]]:
    """The ERP's sales orders carrying our order id (the exactly-once count)."""
    response = httpx.get(
        f"{standard_api(sim)}/salesOrders",
        params={"$filter": f"externalDocumentNumber eq '{order_id}'"},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json()["value"])


def sim_price(sim: str, customer: str, sku: str, quantity: int, **extra: str) -> Decimal:
    response = httpx.get(
        f"{sim}/_sim/price",
        params={"customerNumber": customer, "itemNumber": sku, "quantity": quantity, **extra},
        timeout=10,
    )
    response.raise_for_status()
    return Decimal(response.json()["unitPrice"])


def credit_summary(sim: str, customer: str) -> dict[str, Any]:
    response = httpx.get(
        f"{custom_api(sim)}/customerCreditSummaries",
        params={"$filter": f"customerNumber eq '{customer}'"},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json()["value"][0])


@dataclass(frozen=True)
class SubmitAnswer:
    """An intake outcome as the trigger renders it: what the storefront would receive."""

    status: int
    content_type: str
    body: str
    replayed: bool

    @classmethod
    def of(cls, outcome: IntakeOutcome) -> SubmitAnswer:
        response = render_intake(outcome)
        return cls(
            response.status_code,
            response.mimetype,
            response.get_body().decode(),
            isinstance(outcome, IntakeReplayed),
        )


@dataclass
class Harness:
    """One test's world: the context plus helpers to seed stock, submit and deliver."""

    ctx: OrderContext
    sim: str
    standin: StandinHandle
    keys: list[str] = field(default_factory=list)

    @property
    def bus_connection(self) -> str:
        return self.standin.connection_string

    def queue(self, entity: str = "orders") -> dict[str, int]:
        """Counts on an entity (active, locked, scheduled, deadLettered), refreshed often."""
        return dict(self.standin.stats().get(entity, {}))

    async def stock(self, sku: str, **locations: int) -> None:
        """Set on-hand per location (what inventory events would have folded in)."""
        for location, quantity in locations.items():
            stored = await stock_store.load_position(self.ctx.tables, sku, location)
            position = replace(StockPosition.new(sku, location), on_hand=Decimal(quantity))
            await stock_store.save_position(self.ctx.tables, stored, position)

    async def reservations(self, sku: str) -> dict[str, dict[str, Decimal]]:
        positions = await stock_store.positions_of(self.ctx.tables, sku)
        return {p.position.location: dict(p.position.reservations) for p in positions}

    async def submit(
        self, body: dict[str, Any], key: str | None = None, correlation_id: str = "corr-test"
    ) -> SubmitAnswer:
        key = key or f"key-{uuid.uuid4().hex}"
        self.keys.append(key)
        request = OrderRequest.model_validate(body)
        return SubmitAnswer.of(await submit_order(self.ctx, key, body, request, correlation_id))

    async def deliver(
        self,
        *,
        until: Callable[[], Awaitable[bool]],
        timeout: float = 30.0,
        on_message: Callable[[OrderMessage, int], Awaitable[None]] | None = None,
    ) -> list[BookingReport | str]:
        """Receive ``orders`` messages and settle them like the Functions host would."""
        outcomes: list[BookingReport | str] = []
        deadline = time.monotonic() + timeout
        async with ServiceBusClient.from_connection_string(self.bus_connection) as client:
            receiver = client.get_queue_receiver("orders")
            async with receiver:
                while not await until():
                    if time.monotonic() > deadline:
                        raise AssertionError(f"condition not reached; outcomes: {outcomes}")
                    batch = await receiver.receive_messages(max_message_count=10, max_wait_time=0.5)
                    for received in batch:
                        message = OrderMessage.model_validate_json(str(received))
                        delivery = (received.delivery_count or 0) + 1
                        try:
                            if on_message is not None:
                                await on_message(message, delivery)
                            outcomes.append(await handle(self.ctx, message, delivery))
                        except (BookingFailed, UnknownOrder) as dead:
                            await receiver.dead_letter_message(
                                received, reason=type(dead).__name__, error_description=str(dead)
                            )
                            outcomes.append(f"dead-lettered: {dead}")
                            continue
                        except Exception as error:  # the host abandons: the message comes back
                            await receiver.abandon_message(received)
                            outcomes.append(f"abandoned: {error!r}")
                            continue
                        await receiver.complete_message(received)
        return outcomes


def order_settings(**overrides: Any) -> OrderSettings:
    base = OrderSettings(
        sold_currencies=frozenset({"USD", "EUR"}),
        channels=parse_channels(DEMO_CHANNELS),
        credit_policy=CreditPolicy(overdue_tolerance=Decimal(1_000_000)),
        credit_stale_bound=timedelta(minutes=5),
        intake_timeout=timedelta(seconds=30),
        duplicate_wait=timedelta(seconds=10),
        retry=BookingRetryPolicy(3, timedelta(milliseconds=200), timedelta(seconds=1)),
        claim_duration=timedelta(seconds=4),
    )
    return replace(base, **overrides)


def build_context(
    tables: TableStore, price_tables: TableStore, erp: ErpClient, bus_connection: str
) -> OrderContext:
    """The order context the tests (and the crash worker process) run with."""
    return OrderContext(
        tables=tables,
        bus=MessageBus.from_connection_string(bus_connection),
        erp=erp,
        price_book=PriceBook(price_tables, refresh_interval=timedelta(0)),
        currencies=default_currency_table("USD"),
        campaign_policy=CampaignPolicy.ACTIVE_FOR_CUSTOMER,
        settings=order_settings(),
        figures=CreditFiguresSource(
            erp_timeout=timedelta(seconds=3), stale_bound=timedelta(minutes=5)
        ),
        locations=LocationDirectory(),
        clock=utc_now,
    )


def _requires_session(entity: str, subscription: str | None) -> bool:
    namespace = load_topology(DEFAULT_TOPOLOGY).namespace
    if subscription is None:
        return any(q.name == entity and q.properties.requires_session for q in namespace.queues)
    return any(
        t.name == entity and s.name == subscription and s.properties.requires_session
        for t in namespace.topics
        for s in t.subscriptions
    )


async def _drain_receiver(receiver: ServiceBusReceiver, got: list[Any]) -> None:
    while True:
        batch = await receiver.receive_messages(max_message_count=50, max_wait_time=0.5)
        if not batch:
            return
        for message in batch:
            got.append(message)
            await receiver.complete_message(message)


async def drain(connection: str, entity: str, subscription: str | None = None) -> list[Any]:
    """Receive and complete everything currently on an entity (clean slate between tests).

    A session entity (``order-status/storefront``) is drained one session after the other.
    """
    got: list[Any] = []
    # No retries: "no session available" is the expected end here, and the client would
    # otherwise retry it with back-off for about 20 s.
    async with ServiceBusClient.from_connection_string(connection, retry_total=0) as client:
        sessions = _requires_session(entity, subscription)
        while True:
            session_id = NEXT_AVAILABLE_SESSION if sessions else None
            receiver = (
                client.get_subscription_receiver(
                    entity, subscription, session_id=session_id, max_wait_time=1
                )
                if subscription
                else client.get_queue_receiver(entity, session_id=session_id, max_wait_time=1)
            )
            try:
                async with receiver:
                    await _drain_receiver(receiver, got)
            except OperationTimeoutError:
                return got  # no session has messages left
            if not sessions:
                return got


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)
