"""Fixtures of the integration tests: a private Service Bus stand-in per module, the product's
real message bus against it, and the order and credit harness (tests/support/orders_harness.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from devtools.erp_sim.testing import running_simulator
from devtools.servicebus.testing import StandinHandle, running_standin
from shared.adapters.erp.client import ErpClient
from shared.adapters.tables import TableStore
from shared.services.pricing import publisher as price_publisher
from tests.integration.broker_bus import BrokerBus
from tests.support.orders_harness import (
    SEED,
    Harness,
    build_context,
    erp_config,
    set_faults,
    short_lock_topology,
)

# Entities a test may leave messages on; each test starts with them empty.
_ENTITIES = ("inventory-events", "erp-notifications", "stock-alerts", "order-status")


@pytest.fixture(scope="module")
def broker() -> Iterator[StandinHandle]:
    """A stand-in with the product's topology, for this module alone."""
    with running_standin() as handle:
        yield handle


@pytest.fixture
async def broker_bus(broker: StandinHandle) -> AsyncIterator[BrokerBus]:
    """The real bus, with the entities this test reads emptied first."""
    bus = BrokerBus(broker.connection_string)
    try:
        await bus.purge(*_ENTITIES)
        yield bus
    finally:
        await bus.close()


# The order and credit harness: a private ERP simulator and stand-in per module.


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with running_simulator(seed=SEED, items=60, customers=12) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    with running_standin(short_lock_topology()) as handle:
        yield handle


@pytest.fixture(scope="module")
def price_prefix(azurite_connection: str, sim: str) -> str:
    """Prices published once per module into their own tables (the tests only read them)."""
    prefix = "p" + uuid.uuid4().hex[:10]

    async def publish() -> None:
        tables = TableStore.from_connection_string(azurite_connection, prefix=prefix)
        async with ErpClient(erp_config(sim)) as erp:
            await price_publisher.publish(erp, tables, "full")
        await tables.close()

    asyncio.run(publish())
    return prefix


@pytest.fixture
async def harness(
    table_store: TableStore,
    azurite_connection: str,
    price_prefix: str,
    sim: str,
    standin: StandinHandle,
) -> AsyncIterator[Harness]:
    set_faults(sim)  # whatever a failed test left on
    price_tables = TableStore.from_connection_string(azurite_connection, prefix=price_prefix)
    erp = ErpClient(erp_config(sim))
    ctx = build_context(table_store, price_tables, erp, standin.connection_string)
    await ctx.price_book.ensure_current()
    try:
        yield Harness(ctx, sim, standin)
    finally:
        set_faults(sim)
        await erp.aclose()
        await ctx.bus.close()
        await price_tables.close()
