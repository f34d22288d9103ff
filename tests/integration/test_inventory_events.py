"""The inventory event service on Azurite: exactly once, any order, racing handlers, alerts."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.servicebus.testing import StandinHandle
from shared.adapters.bus import BusSendFailed
from shared.adapters.stores import stock as stock_store
from shared.adapters.tables import TableStore
from shared.config.settings import load_settings
from shared.domain.stock import ErpStockFigures, InvalidEventReason, StockThresholds
from shared.services.inventory.alerts import ALERTS_TOPIC
from shared.services.inventory.events import InboundMessage, apply_inventory_messages, sweep
from shared.services.inventory.messages import INVENTORY_QUEUE, stock_snapshot
from shared.services.inventory.policy import StockPolicy, allocation_of
from tests.integration.broker_bus import BrokerBus
from tests.support.inventory_events import T0, event, inbound

POLICY = StockPolicy(
    hold_timeout=timedelta(minutes=5),
    thresholds=StockThresholds(low_stock_level=Decimal(5)),
    channels={
        name: allocation_of(name, channel) for name, channel in load_settings().channels.items()
    },
)


def _sku() -> str:
    # Awkward characters on purpose: keys are encoded by the table layer.
    return f"AB/12#{uuid.uuid4().hex[:6]}"


async def _position(
    tables: TableStore, sku: str, location: str = "MAIN"
) -> stock_store.StockPosition:
    return (await stock_store.load_position(tables, sku, location)).position


async def test_in_order_events_build_the_position(
    table_store: TableStore, broker_bus: BrokerBus
) -> None:
    sku, bus = _sku(), broker_bus
    outcome = await apply_inventory_messages(
        table_store,
        bus,
        inbound(
            event(sku, 1, "counted", 20),
            event(sku, 2, "adjusted", -3),
            event(sku, 3, "reserved", 4),
            event(sku, 4, "released", 1),
        ),
        POLICY,
    )
    position = await _position(table_store, sku)
    assert (position.on_hand, position.erp_reserved, position.last_sequence) == (17, 3, 4)
    assert position.last_event_at == T0 + timedelta(seconds=4)
    assert outcome.tally["applied"] == 4 and not outcome.rejected
    # One partition read and one transaction for the whole batch (plus one delete per alert
    # published: an unknown key coming into stock is a crossing too).
    assert outcome.alerts_published == 3
    assert outcome.table_requests == 2 + outcome.alerts_published


async def test_duplicates_change_nothing_and_write_nothing(
    table_store: TableStore, broker_bus: BrokerBus
) -> None:
    sku, bus = _sku(), broker_bus
    first = [event(sku, 1, "counted", 10), event(sku, 2, "adjusted", 5)]
    await apply_inventory_messages(table_store, bus, inbound(*first), POLICY)
    before = await stock_store.load_position(table_store, sku, "MAIN")

    again = await apply_inventory_messages(
        table_store,
        bus,
        inbound(
            *first,  # redelivery
            event(sku, 2, "adjusted", 5, event_id="other-id-same-sequence"),
            event(sku, 1, "counted", 99, event_id=f"{sku}|MAIN|2"),  # known id, new sequence
        ),
        POLICY,
    )
    after = await stock_store.load_position(table_store, sku, "MAIN")
    assert after.etag == before.etag and after.position.on_hand == 15
    assert again.tally["duplicates"] == 4 and again.tally["applied"] == 0
    assert again.table_requests == 1  # the read; no write


async def test_reordered_events_end_as_in_order(
    table_store: TableStore, broker_bus: BrokerBus
) -> None:
    sku, bus = _sku(), broker_bus
    stream = [
        event(sku, 1, "counted", 10),
        event(sku, 2, "adjusted", 4),
        event(sku, 3, "reserved", 2),
        event(sku, 4, "adjusted", -1),
    ]
    await apply_inventory_messages(table_store, bus, inbound(stream[3], stream[1]), POLICY)
    waiting = await _position(table_store, sku)
    assert waiting.last_sequence == 0 and len(waiting.held) == 2 and waiting.on_hand == 0

    await apply_inventory_messages(table_store, bus, inbound(stream[2]), POLICY)
    outcome = await apply_inventory_messages(table_store, bus, inbound(stream[0]), POLICY)
    final = await _position(table_store, sku)
    assert (final.on_hand, final.erp_reserved, final.last_sequence) == (13, 2, 4)
    assert final.held == () and outcome.tally["applied"] == 4


async def test_a_count_supersedes_older_deltas(
    table_store: TableStore, broker_bus: BrokerBus
) -> None:
    sku, bus = _sku(), broker_bus
    await apply_inventory_messages(table_store, bus, inbound(event(sku, 1, "counted", 10)), POLICY)
    # 2 is missing; 3 is held; the count at 4 includes both on-hand changes already.
    await apply_inventory_messages(table_store, bus, inbound(event(sku, 3, "adjusted", 5)), POLICY)
    await apply_inventory_messages(table_store, bus, inbound(event(sku, 4, "counted", 30)), POLICY)
    late = await apply_inventory_messages(
        table_store, bus, inbound(event(sku, 2, "adjusted", 7)), POLICY
    )
    final = await _position(table_store, sku)
    assert final.on_hand == 30 and final.last_sequence == 4 and final.missing == ()
    assert late.tally["superseded"] == 1


async def test_racing_handlers_on_one_key_lose_no_update(
    azurite_connection: str, table_prefix: str, broker_bus: BrokerBus
) -> None:
    sku = _sku()
    stores = [
        TableStore.from_connection_string(azurite_connection, prefix=table_prefix) for _ in range(2)
    ]
    bus = broker_bus
    try:
        await apply_inventory_messages(
            stores[0], bus, inbound(event(sku, 1, "counted", 100)), POLICY
        )
        # Two handlers (think: two instances) each get half of the stream at the same time.
        batches = [
            [event(sku, n, "adjusted", 1) for n in range(2, 42) if n % 2 == parity]
            for parity in (0, 1)
        ]
        outcomes = await asyncio.gather(
            *(
                apply_inventory_messages(store, bus, inbound(*batch), POLICY)
                for store, batch in zip(stores, batches, strict=True)
            )
        )
        final = await _position(stores[0], sku)
        assert final.on_hand == 140 and final.last_sequence == 41 and final.held == ()
        assert sum(o.tally["applied"] for o in outcomes) == 40
    finally:
        for store in stores:
            await store.close()


class _ReadTogether:
    """The real table store, except that the first partition read of each handler waits
    until every handler has read: all of them then write on the same ETag, so they race for
    certain instead of only when the scheduler happens to interleave them."""

    def __init__(self, tables: TableStore, handlers: int) -> None:
        self._tables = tables
        self._barrier = asyncio.Barrier(handlers)
        self._first_reads = handlers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tables, name)

    async def partition(self, table: str, partition_key: str) -> AsyncIterator[Any]:
        rows = [row async for row in self._tables.partition(table, partition_key)]
        if self._first_reads > 0:  # the handlers' first reads; retries pass straight through
            self._first_reads -= 1
            await self._barrier.wait()
        for row in rows:
            yield row


async def test_many_racing_single_event_handlers(
    table_store: TableStore, broker_bus: BrokerBus
) -> None:
    sku, bus = _sku(), broker_bus
    await apply_inventory_messages(table_store, bus, inbound(event(sku, 1, "counted", 0)), POLICY)
    racing = _ReadTogether(table_store, handlers=12)
    outcomes = await asyncio.gather(
        *(
            apply_inventory_messages(
                racing,  # type: ignore[arg-type]
                bus,
                inbound(event(sku, n, "adjusted", n)),
                POLICY,
            )
            for n in range(2, 14)
        )
    )
    final = await _position(table_store, sku)
    assert final.on_hand == sum(range(2, 14)) and final.last_sequence == 13
    # All twelve read the same row before any wrote: eleven lost their first write at least.
    assert sum(o.conflicts for o in outcomes) >= 11


async def test_handlers_racing_to_create_a_new_key_lose_nothing(
    table_store: TableStore,
    broker_bus: BrokerBus,
) -> None:
    sku, bus = _sku(), broker_bus
    outcomes = await asyncio.gather(
        *(
            apply_inventory_messages(
                table_store, bus, inbound(event(sku, n, "adjusted", 10**n)), POLICY
            )
            for n in (1, 2, 3)
        )
    )
    final = await _position(table_store, sku)
    assert final.on_hand == 1110 and final.last_sequence == 3 and final.held == ()
    assert sum(o.tally["applied"] for o in outcomes) == 3


async def test_poison_messages_are_rejected_with_reasons_and_the_rest_applied(
    table_store: TableStore,
    broker_bus: BrokerBus,
) -> None:
    sku, bus = _sku(), broker_bus
    bad_kind = event(sku, 2, "stolen", 1, event_id="bad-kind")
    negative = event(sku, 3, "counted", -4, event_id="negative")
    outcome = await apply_inventory_messages(
        table_store,
        bus,
        inbound(
            event(sku, 1, "counted", 8),
            b"{not json",
            bad_kind,
            negative,
            b"[" * 100_000,
            b'{"eventId": "dup", "eventId": "dup2"}',
        ),
        POLICY,
    )
    reasons = {r.message_id: r.reason for r in outcome.rejected}
    assert reasons == {
        "raw-1": InvalidEventReason.UNPARSEABLE,
        "bad-kind": InvalidEventReason.UNKNOWN_KIND,
        "negative": InvalidEventReason.NEGATIVE_COUNT,
        "raw-4": InvalidEventReason.UNPARSEABLE,
        "raw-5": InvalidEventReason.UNPARSEABLE,
    }
    described = {r.message_id: r.description for r in outcome.rejected}
    assert "too-deep" in described["raw-4"] and "duplicate-key" in described["raw-5"]
    assert (await _position(table_store, sku)).on_hand == 8


async def test_several_locations_of_one_item_share_one_transaction(
    table_store: TableStore,
    broker_bus: BrokerBus,
) -> None:
    sku, bus = _sku(), broker_bus
    outcome = await apply_inventory_messages(
        table_store,
        bus,
        inbound(*(event(sku, 1, "counted", 10 + n, location=loc) for n, loc in enumerate("ABCDE"))),
        POLICY,
    )
    assert outcome.table_requests == 2 + outcome.alerts_published
    assert [p.position.on_hand for p in await stock_store.positions_of(table_store, sku)] == [
        10,
        11,
        12,
        13,
        14,
    ]


async def test_crossing_a_threshold_publishes_one_alert(
    table_store: TableStore, broker_bus: BrokerBus
) -> None:
    sku, bus = _sku(), broker_bus
    await apply_inventory_messages(table_store, bus, inbound(event(sku, 1, "counted", 20)), POLICY)
    await bus.purge(ALERTS_TOPIC)  # what the count itself announced
    sell_out = inbound(event(sku, 2, "adjusted", -20))
    await apply_inventory_messages(table_store, bus, sell_out, POLICY)
    alerts = await bus.to(ALERTS_TOPIC)
    by_scope = {(a.body["scope"], a.body[a.body["scope"]]): a for a in alerts}
    assert set(by_scope) == {("location", "MAIN"), ("channel", "web"), ("channel", "b2b-eu")}
    location_alert = by_scope[("location", "MAIN")].body
    assert location_alert["level"] == "out-of-stock"
    assert location_alert["previousLevel"] == "in-stock"
    assert location_alert["crossed"] == ["zero", "low-stock"]
    assert by_scope[("location", "MAIN")].message_id == location_alert["alertId"]

    await apply_inventory_messages(table_store, bus, sell_out, POLICY)  # redelivered
    assert len(await bus.to(ALERTS_TOPIC)) == 3
    rows = [row async for row in table_store.partition(stock_store.POSITIONS_TABLE, sku)]
    assert [row.entity["kind"] for row in rows] == ["position"]  # the outbox is empty


async def test_an_unpublished_alert_waits_in_the_outbox(
    table_store: TableStore, broker_bus: BrokerBus
) -> None:
    sku, bus = _sku(), broker_bus
    await apply_inventory_messages(table_store, bus, inbound(event(sku, 1, "counted", 3)), POLICY)
    bus.fail = True
    batch = inbound(event(sku, 2, "adjusted", -3))
    with pytest.raises(Exception, match="failed"):
        await apply_inventory_messages(table_store, bus, batch, POLICY)
    assert (await _position(table_store, sku)).on_hand == 0  # the change committed
    kinds = [row.entity["kind"] async for row in table_store.partition("StockPositions", sku)]
    assert kinds.count("alert") == 3  # location MAIN, channels web and b2b-eu

    bus.fail = False
    retry = await apply_inventory_messages(table_store, bus, batch, POLICY)
    assert retry.tally["duplicates"] == 1 and retry.alerts_published == len(kinds) - 1
    kinds = [row.entity["kind"] async for row in table_store.partition("StockPositions", sku)]
    assert kinds == ["position"]


async def test_the_sweep_publishes_alerts_no_handler_came_back_for(
    table_store: TableStore,
    broker_bus: BrokerBus,
) -> None:
    sku, bus = _sku(), broker_bus
    bus.fail = True
    with pytest.raises(Exception, match="failed"):
        await apply_inventory_messages(
            table_store, bus, inbound(event(sku, 1, "counted", 50)), POLICY
        )
    bus.fail = False
    outcome = await sweep(table_store, bus, POLICY)
    published = {a.body["alertId"] for a in (await bus.to(ALERTS_TOPIC)) if a.body["sku"] == sku}
    assert len(published) == 3 and outcome.alerts_published >= 3
    kinds = [row.entity["kind"] async for row in table_store.partition("StockPositions", sku)]
    assert kinds == ["position"]


async def test_erp_snapshots_correct_without_undoing_newer_events(
    table_store: TableStore,
    broker_bus: BrokerBus,
) -> None:
    sku, bus = _sku(), broker_bus
    await apply_inventory_messages(table_store, bus, inbound(event(sku, 1, "counted", 10)), POLICY)
    read_at = T0 + timedelta(seconds=30)
    figures = ErpStockFigures(Decimal(25), Decimal(2), Decimal(4), Decimal(30))
    correction = stock_snapshot(sku, "MAIN", figures, read_at, "reconciliation")
    outcome = await apply_inventory_messages(
        table_store, bus, inbound(correction.to_message()), POLICY
    )
    position = await _position(table_store, sku)
    assert (position.on_hand, position.erp_reserved, position.demand, position.expected) == (
        25,
        2,
        4,
        30,
    )
    assert outcome.tally["corrected"] == 1

    # An event that happened before the read is already in the ERP's figures.
    covered = await apply_inventory_messages(
        table_store, bus, inbound(event(sku, 2, "adjusted", 5, at=read_at)), POLICY
    )
    assert covered.tally["covered"] == 1 and (await _position(table_store, sku)).on_hand == 25

    # A newer event wins over an older snapshot that arrives after it.
    await apply_inventory_messages(
        table_store,
        bus,
        inbound(event(sku, 3, "adjusted", -5, at=read_at + timedelta(seconds=5))),
        POLICY,
    )
    old = stock_snapshot(
        sku,
        "MAIN",
        ErpStockFigures(Decimal(99), Decimal(0), Decimal(0)),
        read_at + timedelta(seconds=1),
        "notification",
    )
    deferred = await apply_inventory_messages(table_store, bus, inbound(old.to_message()), POLICY)
    assert deferred.tally["snapshotsDeferred"] == 1
    assert (await _position(table_store, sku)).on_hand == 20

    # The same snapshot twice: the second is in sync, nothing written.
    again = await apply_inventory_messages(
        table_store, bus, inbound(correction.to_message()), POLICY
    )
    assert again.tally["snapshotsSuperseded"] + again.tally["snapshotsDeferred"] == 1


async def test_the_sweep_releases_events_held_for_a_gap_that_never_fills(
    table_store: TableStore,
    broker_bus: BrokerBus,
) -> None:
    sku, bus = _sku(), broker_bus
    await apply_inventory_messages(
        table_store,
        bus,
        inbound(event(sku, 1, "counted", 10), event(sku, 3, "adjusted", 2)),
        POLICY,
    )
    assert len((await _position(table_store, sku)).held) == 1
    early = await sweep(table_store, bus, POLICY)
    assert early.tally["gapsSkipped"] == 0
    later = datetime.now(UTC) + POLICY.hold_timeout + timedelta(seconds=1)
    outcome = await sweep(table_store, bus, POLICY, now=later)
    position = await _position(table_store, sku)
    assert outcome.tally["gapsSkipped"] == 1 and position.on_hand == 12 and position.held == ()
    # The straggler still counts when it finally arrives.
    await apply_inventory_messages(table_store, bus, inbound(event(sku, 2, "adjusted", 1)), POLICY)
    assert (await _position(table_store, sku)).on_hand == 13


async def _receive(receiver: ServiceBusReceiver, count: int) -> list[ServiceBusReceivedMessage]:
    found: list[ServiceBusReceivedMessage] = []
    while len(found) < count:
        batch = await receiver.receive_messages(count - len(found), max_wait_time=5)
        assert batch, f"the broker delivered {len(found)} of {count} messages"
        found.extend(batch)
    return found


def _inbound(messages: list[ServiceBusReceivedMessage]) -> list[InboundMessage]:
    return [InboundMessage(str(m.message_id), b"".join(m.body)) for m in messages]


async def test_the_broker_redelivers_a_failed_batch_and_nothing_counts_twice(
    table_store: TableStore, broker: StandinHandle, broker_bus: BrokerBus
) -> None:
    """Through the real broker: the handler fails after its write (publishing the alert did
    not work), the batch is abandoned as the host does on an exception, comes back with a
    higher delivery count, and is applied again without counting anything twice."""
    sku = _sku()
    bodies = [
        event(sku, 1, "counted", 6),
        event(sku, 2, "adjusted", -6),
        event(sku, 3, "adjusted", 4),
    ]
    client = ServiceBusClient.from_connection_string(broker.connection_string, retry_total=0)
    async with client, client.get_queue_receiver(INVENTORY_QUEUE) as receiver:
        async with client.get_queue_sender(INVENTORY_QUEUE) as sender:
            await sender.send_messages(
                [ServiceBusMessage(json.dumps(b), message_id=b["eventId"]) for b in bodies]
            )
        first = await _receive(receiver, 3)
        broker_bus.fail = True
        with pytest.raises(BusSendFailed):
            await apply_inventory_messages(table_store, broker_bus, _inbound(first), POLICY)
        for message in first:
            await receiver.abandon_message(message)

        broker_bus.fail = False
        again = await _receive(receiver, 3)
        assert sorted(m.message_id for m in again) == sorted(b["eventId"] for b in bodies)
        assert {m.delivery_count for m in again} == {1}  # 0 on the first delivery
        retry = await apply_inventory_messages(table_store, broker_bus, _inbound(again), POLICY)
        for message in again:
            await receiver.complete_message(message)
        assert retry.tally["duplicates"] == 3 and retry.tally["applied"] == 0
        assert not await receiver.receive_messages(10, max_wait_time=1)
    position = await _position(table_store, sku)
    assert (position.on_hand, position.last_sequence) == (4, 3)
    # The alerts the failed attempt left in the outbox went out on the retry, once each.
    alerts = [a for a in await broker_bus.to(ALERTS_TOPIC) if a.body["sku"] == sku]
    assert len({a.body["alertId"] for a in alerts}) == len(alerts) > 0


async def test_sequences_past_int32_are_applied_and_stored(
    table_store: TableStore, broker_bus: BrokerBus
) -> None:
    """Sources often number events by time: 2,796,279,052 is a valid sequence by contract."""
    sku, first = _sku(), 2_796_279_052
    outcome = await apply_inventory_messages(
        table_store,
        broker_bus,
        inbound(
            event(sku, first, "counted", 9, at=T0),
            event(sku, first + 1, "adjusted", -2, at=T0 + timedelta(seconds=1)),
        ),
        POLICY,
    )
    assert outcome.tally["applied"] == 2 and not outcome.rejected
    position = await _position(table_store, sku)
    assert (position.on_hand, position.last_sequence) == (7, first + 1)
    top = 2**63 - 1
    await apply_inventory_messages(
        table_store,
        broker_bus,
        inbound(event(sku, top, "counted", 3, at=T0 + timedelta(seconds=2))),
        POLICY,
    )
    assert (await _position(table_store, sku)).last_sequence == top


@st.composite
def _hostile_messages(draw: st.DrawFn) -> bytes:
    """Bodies a broken or hostile producer could put on the queue."""
    sku = "FUZZ/" + draw(st.sampled_from(["A", "B"]))
    good = event(sku, 1, "counted", 5)
    field = draw(st.sampled_from(sorted(good)))
    value = draw(
        st.one_of(
            st.text(
                alphabet=st.sampled_from(["\u200f", "\u0301", "\x00", "\ufeff", "a", "]"]),
                max_size=20,
            ),
            st.integers(min_value=-(2**70), max_value=2**70),
            st.sampled_from(["1e999999", "NaN", None, [], {}, "-0", "0.000000000000000000001"]),
        )
    )
    body = json.dumps({**good, field: value})
    depth = draw(st.sampled_from([0, 40, 3_000]))
    wrapped = "[" * depth + body + "]" * depth
    if draw(st.booleans()):
        wrapped = wrapped.replace('"eventId"', '"eventId": "dup", "eventId"', 1)
    return wrapped.encode()


def test_hostile_messages_are_rejected_with_a_reason_and_change_nothing(
    azurite_connection: str, table_prefix: str, broker: StandinHandle
) -> None:
    """Property: whatever a producer sends, a message is either a valid event (applied) or
    rejected with a reason and a description (dead-lettered at once); an invalid one never
    raises (which would mean ten redeliveries) and never writes a position."""
    loop = asyncio.new_event_loop()
    store = TableStore.from_connection_string(azurite_connection, prefix=table_prefix)

    async def open_bus() -> BrokerBus:
        return BrokerBus(broker.connection_string)

    bus = loop.run_until_complete(open_bus())

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=_hostile_messages())
    def rejected_or_applied(body: bytes) -> None:
        async def check() -> None:
            before = await _state(store)
            outcome = await apply_inventory_messages(
                store, bus, [InboundMessage("fuzz", body)], POLICY
            )
            if outcome.rejected:
                [rejection] = outcome.rejected
                assert rejection.reason and rejection.description
                assert outcome.tally["applied"] == 0
                assert await _state(store) == before, "a rejected message changed state"
            else:
                assert outcome.tally["applied"] + outcome.tally["duplicates"] == 1

        loop.run_until_complete(check())

    try:
        rejected_or_applied()
    finally:
        loop.run_until_complete(store.close())
        loop.run_until_complete(bus.close())
        loop.close()


async def _state(store: TableStore) -> dict[tuple[str, str], str]:
    """Every stock row of the fuzzed items, by key, with its ETag."""
    return {
        (row.partition_key, row.row_key): row.etag
        for sku in ("FUZZ/A", "FUZZ/B")
        async for row in store.partition(stock_store.POSITIONS_TABLE, sku)
    }
