"""Property: through the service and Azurite, any delivery ends as the in-order fold.

Random streams for two locations of one item and one location of another, delivered with
duplicates (redeliveries), in any order, split into random batches that mix the keys. After
every batch was applied by the real service against Azurite (alerts published through the
real bus to a stand-in), each stored position equals the independent reference model
(tests/stock_model.py) of its deduplicated stream in sequence order. Example counts stay
modest: each example is a few dozen real table requests.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.servicebus.testing import StandinHandle
from shared.adapters.stores import stock as stock_store
from shared.adapters.tables import TableStore
from shared.domain.stock import InventoryEvent, InventoryEventKind
from shared.services.inventory.events import InboundMessage, apply_inventory_messages
from shared.services.inventory.policy import StockPolicy
from tests.integration.broker_bus import BrokerBus
from tests.stock_model import fold_in_order

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
POLICY = StockPolicy(hold_timeout=timedelta(days=365), safety_stock=Decimal(2))
KEYS = (("ITEM/1", "MAIN"), ("ITEM/1", "EAST"), ("ITEM#2", "MAIN"))

quantities = st.decimals(min_value=Decimal("0.5"), max_value=Decimal(300), places=1)
signed = st.decimals(min_value=Decimal(-300), max_value=Decimal(300), places=1)


@st.composite
def stream_for(draw: st.DrawFn, key: tuple[str, str]) -> list[InventoryEvent]:
    sku, location = key
    events = []
    for sequence in range(1, draw(st.integers(min_value=1, max_value=12)) + 1):
        kind = draw(st.sampled_from(list(InventoryEventKind)))
        quantity = draw(signed if kind is InventoryEventKind.ADJUSTED else quantities)
        events.append(
            InventoryEvent(
                event_id=f"{sku}@{location}#{sequence}",
                sku=sku,
                location=location,
                kind=kind,
                quantity=quantity,
                sequence=sequence,
                occurred_at=T0 + timedelta(seconds=sequence),
                source="wms",
            )
        )
    return events


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[list[InventoryEvent]], list[list[InventoryEvent]]]:
    streams = [draw(stream_for(key)) for key in KEYS]
    everything = [event for stream in streams for event in stream]
    copies = draw(st.lists(st.sampled_from(everything), max_size=len(everything) // 2))
    arrival = draw(st.permutations(everything + copies))
    cuts = sorted(draw(st.sets(st.integers(1, len(arrival)), max_size=6)))
    batches = [
        arrival[start:end]
        for start, end in zip([0, *cuts], [*cuts, len(arrival)], strict=True)
        if arrival[start:end]
    ]
    return streams, batches


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # Hypothesis drives a plain function; every example runs on this one loop.
    running = asyncio.new_event_loop()
    try:
        yield running
    finally:
        running.close()


def _messages(batch: list[InventoryEvent], prefix: str) -> list[InboundMessage]:
    bodies: list[dict[str, Any]] = []
    for event in batch:
        body = event.to_message()
        body["sku"] = prefix + event.sku  # a fresh item per example
        bodies.append(body)
    return [InboundMessage(str(body["eventId"]), json.dumps(body)) for body in bodies]


def test_any_delivery_through_the_store_equals_the_in_order_fold(
    azurite_connection: str,
    table_prefix: str,
    loop: asyncio.AbstractEventLoop,
    broker: StandinHandle,
) -> None:
    store = TableStore.from_connection_string(azurite_connection, prefix=table_prefix)

    async def open_bus() -> BrokerBus:
        return BrokerBus(broker.connection_string)

    bus = loop.run_until_complete(open_bus())

    async def check(
        streams: list[list[InventoryEvent]], batches: list[list[InventoryEvent]]
    ) -> None:
        prefix = uuid.uuid4().hex[:8] + "-"
        for minute, batch in enumerate(batches):
            now = T0 + timedelta(minutes=minute)
            await apply_inventory_messages(store, bus, _messages(batch, prefix), POLICY, now=now)
        for (sku, location), stream in zip(KEYS, streams, strict=True):
            stored = (await stock_store.load_position(store, prefix + sku, location)).position
            expected = fold_in_order(stream)
            assert stored.held == () and stored.missing == ()
            assert (stored.on_hand, stored.erp_reserved, stored.last_sequence) == (
                expected.on_hand,
                expected.erp_reserved,
                expected.last_sequence,
            )
            assert stored.last_event_at == expected.last_event_at
            assert stored.safety_stock == POLICY.safety_stock

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(deliveries())
    def property_holds(
        delivery: tuple[list[list[InventoryEvent]], list[list[InventoryEvent]]],
    ) -> None:
        loop.run_until_complete(check(*delivery))

    try:
        property_holds()
    finally:
        loop.run_until_complete(store.close())
        loop.run_until_complete(bus.close())
