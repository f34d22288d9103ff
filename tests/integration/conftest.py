"""Fixtures of the integration tests: a private Service Bus stand-in per module, and the
product's real message bus against it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from devtools.servicebus.testing import StandinHandle, running_standin
from tests.integration.broker_bus import BrokerBus

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
