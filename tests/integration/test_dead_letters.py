"""Dead-letter counts, listing and replay with the real client against the Service Bus stand-in.

A private stand-in (no function app listening), so every message stays where the test puts it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver

from devtools.servicebus.testing import StandinHandle, running_standin
from shared.adapters.dead_letter_queues import DeadLetterQueues
from shared.adapters.tables import TableStore
from shared.services.operations import dead_letters, selftest
from tests.support.orders_harness import drain


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    with running_standin() as handle:
        yield handle


@pytest.fixture
async def client(standin: StandinHandle) -> AsyncIterator[ServiceBusClient]:
    async with ServiceBusClient.from_connection_string(
        standin.connection_string, retry_total=0
    ) as sb:
        yield sb


@pytest.fixture
async def queues(
    client: ServiceBusClient, standin: StandinHandle
) -> AsyncIterator[DeadLetterQueues]:
    yield DeadLetterQueues(client, receive_wait_seconds=0.5)
    # Leave every queue and dead-letter queue empty for the next test (each receiver costs
    # about a second against the stand-in, so only the non-empty ones are drained).
    for path, figures in standin.stats().items():
        topic, marker, subscription = path.lower().partition("/subscriptions/")
        entity = f"{topic}:{subscription}" if marker else topic
        if figures.get("deadLettered"):
            await _drain(client, entity, dead_letter=True)
        if figures.get("active") or figures.get("locked"):
            # drain() reads session entities (order-status/storefront) session by session.
            await drain(standin.connection_string, topic, subscription or None)


def _receiver(client: ServiceBusClient, entity: str, dead_letter: bool) -> ServiceBusReceiver:
    sub_queue = ServiceBusSubQueue.DEAD_LETTER if dead_letter else None
    topic, _, subscription = entity.partition(":")
    if subscription:
        return client.get_subscription_receiver(
            topic, subscription, sub_queue=sub_queue, max_wait_time=0.5
        )
    return client.get_queue_receiver(topic, sub_queue=sub_queue, max_wait_time=0.5)


async def _drain(client: ServiceBusClient, entity: str, dead_letter: bool) -> None:
    async with _receiver(client, entity, dead_letter) as receiver:
        while batch := await receiver.receive_messages(max_message_count=50, max_wait_time=0.5):
            for message in batch:
                await receiver.complete_message(message)


async def _dead_letter(
    client: ServiceBusClient, queue: str, messages: list[ServiceBusMessage], reason: str
) -> None:
    """Send messages and dead-letter them at once, as a handler that rejects them would."""
    async with client.get_queue_sender(queue) as sender:
        for message in messages:
            await sender.send_messages(message)
    wanted = [m.message_id for m in messages]
    async with client.get_queue_receiver(queue, max_wait_time=2) as receiver:
        received: list[ServiceBusReceivedMessage] = []
        while len(received) < len(messages):
            batch = await receiver.receive_messages(max_message_count=50, max_wait_time=2)
            assert batch, f"only {len(received)} of {len(messages)} arrived"
            received.extend(batch)
        assert [m.message_id for m in received] == wanted
        for message in received:
            await receiver.dead_letter_message(
                message, reason=reason, error_description=f"{reason} for {message.message_id}"
            )


def _message(body: bytes, message_id: str, **extra: Any) -> ServiceBusMessage:
    return ServiceBusMessage(body, message_id=message_id, **extra)


def _probe_body(probe_id: str) -> bytes:
    return json.dumps(
        {"probeId": probe_id, "failDeliveries": 0, "sentAt": datetime.now(UTC).isoformat()}
    ).encode()


async def test_counts_are_per_queue_and_listing_names_each_message(
    client: ServiceBusClient, queues: DeadLetterQueues
) -> None:
    orders = [_message(b'{"orderId": "o-1"}', "o-1"), _message(b'{"orderId": "o-2"}', "o-2")]
    await _dead_letter(client, "orders", orders, "UnknownOrder")
    await _dead_letter(client, "selftest", [_message(b"not json", "bad-1")], "InvalidJson")

    counts = await dead_letters.count_all(queues, peek=5)

    by_entity = {item.entity: item for item in counts.entities}
    assert set(by_entity) == set(dead_letters.DEAD_LETTER_SOURCES)
    assert (by_entity["orders"].count, by_entity["orders"].display) == (2, "2")
    assert by_entity["selftest"].count == 1
    assert by_entity["inventory-events"].count == 0
    assert by_entity["order-status:storefront"].kind == "subscription"
    assert counts.total == 3
    listed = by_entity["orders"].messages
    assert [m.message_id for m in listed] == ["o-1", "o-2"]
    assert listed[0].reason == "UnknownOrder"
    assert listed[0].description == "UnknownOrder for o-1"
    assert listed[0].enqueued_at is not None and listed[0].enqueued_at.tzinfo is not None
    assert listed[0].delivery_count >= 0


async def test_counting_stops_at_the_cap_and_says_so(
    client: ServiceBusClient, queues: DeadLetterQueues
) -> None:
    notes = [_message(b"{}", f"n-{number}") for number in range(5)]
    await _dead_letter(client, "erp-notifications", notes, "Test")

    counts = await dead_letters.count_all(queues, entities=["erp-notifications"], cap=3)

    (item,) = counts.entities
    assert (item.count, item.capped, item.display) == (3, True, "3+")


async def test_replay_moves_a_message_back_where_it_is_processed(
    client: ServiceBusClient, queues: DeadLetterQueues, table_store: TableStore
) -> None:
    probe_id = f"p-{uuid.uuid4().hex[:10]}"
    probe = _message(
        _probe_body(probe_id),
        probe_id,
        correlation_id="corr-7",
        subject="probe",
        application_properties={"tenant": "t1"},
    )
    await _dead_letter(client, "selftest", [probe], "ErpDown")

    result = await dead_letters.replay(queues, "selftest", limit=10)

    assert (result.moved, result.failed) == (1, 0)
    (moved,) = result.messages
    assert moved.message_id == probe_id
    assert moved.new_message_id is not None and moved.new_message_id.startswith(probe_id)
    assert moved.new_message_id != probe_id
    # Processed by the product's own handler, as the selftest trigger would.
    async with client.get_queue_receiver("selftest", max_wait_time=2) as receiver:
        (copy,) = await receiver.receive_messages(max_message_count=1, max_wait_time=2)
        body = selftest.ProbeMessage.model_validate_json(b"".join(copy.body))
        assert await selftest.record_probe(table_store, body, 1, copy.correlation_id)
        await receiver.complete_message(copy)
    assert copy.message_id == moved.new_message_id
    assert (copy.correlation_id, copy.subject) == ("corr-7", "probe")
    properties = {
        (k.decode() if isinstance(k, bytes) else k): v
        for k, v in (copy.application_properties or {}).items()
    }
    assert properties["tenant"] in ("t1", b"t1")
    assert properties["replayOf"] in (probe_id, probe_id.encode())
    assert "DeadLetterReason" not in properties
    stored = await selftest.probe_result(table_store, probe_id)
    assert stored is not None and stored["correlationId"] == "corr-7"
    after = await dead_letters.count_all(queues, entities=["selftest"])
    assert after.entities[0].count == 0


async def test_replay_survives_duplicate_detection_on_orders(
    client: ServiceBusClient, queues: DeadLetterQueues
) -> None:
    # The original MessageId is inside the queue's duplicate-detection window: a copy under
    # the same id would be dropped silently.
    order_id = f"ord-{uuid.uuid4().hex[:8]}"
    await _dead_letter(client, "orders", [_message(b'{"orderId": "x"}', order_id)], "Rejected")

    result = await dead_letters.replay(queues, "orders", limit=5)

    assert result.moved == 1
    async with client.get_queue_receiver("orders", max_wait_time=2) as receiver:
        received = await receiver.receive_messages(max_message_count=5, max_wait_time=2)
        for message in received:
            await receiver.complete_message(message)
    assert [m.message_id for m in received] == [result.messages[0].new_message_id]


async def test_replay_takes_at_most_the_limit(
    client: ServiceBusClient, queues: DeadLetterQueues
) -> None:
    events = [_message(b"{}", f"e-{number}") for number in range(3)]
    await _dead_letter(client, "inventory-events", events, "Test")

    result = await dead_letters.replay(queues, "inventory-events", limit=2)

    assert (result.moved, result.failed) == (2, 0)
    assert [m.message_id for m in result.messages] == ["e-0", "e-1"]
    left = await dead_letters.count_all(queues, entities=["inventory-events"])
    assert left.entities[0].count == 1


async def test_replay_of_an_empty_dead_letter_queue_is_a_no_op(
    queues: DeadLetterQueues,
) -> None:
    result = await dead_letters.replay(queues, "orders", limit=10)

    assert (result.moved, result.failed, result.messages) == (0, 0, [])


async def test_subscription_messages_are_replayed_to_their_topic(
    client: ServiceBusClient, queues: DeadLetterQueues
) -> None:
    async with client.get_topic_sender("order-status") as sender:
        await sender.send_messages(
            ServiceBusMessage(b'{"status": "booked"}', message_id="s-1", session_id="o-1")
        )
    async with client.get_subscription_receiver(
        "order-status", "storefront", session_id="o-1", max_wait_time=2
    ) as receiver:
        (message,) = await receiver.receive_messages(max_message_count=1, max_wait_time=2)
        await receiver.dead_letter_message(message, reason="Test", error_description="test")

    result = await dead_letters.replay(queues, "order-status:storefront", limit=5)

    assert result.moved == 1
    # The copy keeps its SessionId: the storefront subscription requires sessions.
    async with client.get_subscription_receiver(
        "order-status", "storefront", session_id="o-1", max_wait_time=2
    ) as receiver:
        received = await receiver.receive_messages(max_message_count=5, max_wait_time=2)
        for copy in received:
            await receiver.complete_message(copy)
    assert [b"".join(m.body) for m in received] == [b'{"status": "booked"}']


async def test_an_unknown_entity_is_refused(queues: DeadLetterQueues) -> None:
    with pytest.raises(dead_letters.UnknownEntity):
        await dead_letters.replay(queues, "no-such-queue", limit=1)
