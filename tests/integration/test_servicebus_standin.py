"""The Service Bus stand-in driven by the real azure-servicebus client, sync and async.

One broker subprocess per module on a free port; every test uses its own queue or topic so the
tests do not see each other's messages.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.servicebus import (
    AutoLockRenewer,
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusMessageState,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusReceiver,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient
from azure.servicebus.exceptions import MessageLockLostError, MessagingEntityNotFoundError

from devtools.servicebus.testing import StandinHandle, running_standin

LONG_LOCK = "PT1M"
SHORT_LOCK = "PT2S"
DUPLICATE_WINDOW = timedelta(seconds=4)


def _queue(name: str, **properties: Any) -> dict[str, Any]:
    props = {"LockDuration": LONG_LOCK, "MaxDeliveryCount": 10}
    props.update(properties)
    return {"Name": name, "Properties": props}


TOPOLOGY = {
    "UserConfig": {
        "Namespaces": [
            {
                "Name": "sbemulatorns",
                "Queues": [
                    _queue("basic"),
                    _queue("complete"),
                    _queue("abandon"),
                    _queue("deadletter"),
                    _queue("poison", MaxDeliveryCount=3),
                    _queue("lock-expiry", LockDuration=SHORT_LOCK, MaxDeliveryCount=5),
                    _queue("renew", LockDuration="PT4S"),
                    # The renewer renews once 10 s or less are left: from 2 s on, every 2 s.
                    _queue("auto-renew", LockDuration="PT12S"),
                    _queue("peek"),
                    _queue("batch"),
                    _queue(
                        "dedup",
                        RequiresDuplicateDetection=True,
                        DuplicateDetectionHistoryTimeWindow="PT4S",
                    ),
                    _queue("receive-delete"),
                    _queue("scheduled"),
                    _queue("defer"),
                    _queue("stats"),
                    _queue("robust"),
                    _queue("async-basic"),
                    _queue("async-renew-many"),
                    _queue("big-batches"),
                    _queue("async-poison", MaxDeliveryCount=2),
                ],
                "Topics": [
                    {
                        "Name": "fanout",
                        "Subscriptions": [
                            {"Name": "first", "Properties": {"LockDuration": LONG_LOCK}},
                            {"Name": "second", "Properties": {"LockDuration": LONG_LOCK}},
                            {
                                "Name": "only-shipped",
                                "Properties": {"LockDuration": LONG_LOCK},
                                "Rules": [
                                    {
                                        "Name": "shipped",
                                        "Properties": {
                                            "FilterType": "Correlation",
                                            "CorrelationFilter": {"Label": "shipped"},
                                        },
                                    }
                                ],
                            },
                        ],
                    }
                ],
            }
        ],
        "Logging": {"Type": "Console"},
    }
}


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    with running_standin(TOPOLOGY) as handle:
        yield handle


@pytest.fixture
def client(standin: StandinHandle) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(standin.connection_string) as sb_client:
        yield sb_client


def _send(client: ServiceBusClient, entity: str, *messages: ServiceBusMessage) -> None:
    with client.get_queue_sender(entity) as sender:
        sender.send_messages(list(messages))


def _receive(
    receiver: ServiceBusReceiver, count: int, timeout: float = 15.0
) -> list[ServiceBusReceivedMessage]:
    """Receive exactly ``count`` messages, or fail after ``timeout`` seconds."""
    received: list[ServiceBusReceivedMessage] = []
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        received += receiver.receive_messages(
            max_message_count=count - len(received), max_wait_time=1
        )
    assert len(received) == count, f"expected {count} messages, got {len(received)}"
    return received


def _nothing_left(receiver: ServiceBusReceiver) -> bool:
    return receiver.peek_messages(max_message_count=10) == []


def _text(message: ServiceBusReceivedMessage) -> str:
    return b"".join(message.body).decode()


def test_full_batches_sent_over_several_frames_arrive(client: ServiceBusClient) -> None:
    # A full batch (256 KiB) travels as one delivery split over several transfer frames.
    sent = 0
    with client.get_queue_sender("big-batches") as sender:
        batch = sender.create_message_batch()
        for i in range(3000):
            message = ServiceBusMessage("x" * 80 + str(i), message_id=f"big-{i}")
            try:
                batch.add_message(message)
            except ValueError:
                sender.send_messages(batch)
                batch = sender.create_message_batch()
                batch.add_message(message)
            sent += 1
        sender.send_messages(batch)
    with client.get_queue_receiver("big-batches", prefetch_count=500) as receiver:
        received = _receive(receiver, sent, timeout=60)
        for message in received:
            receiver.complete_message(message)
    assert len({m.message_id for m in received}) == sent


def test_send_and_receive_preserve_message_fields(client: ServiceBusClient) -> None:
    sent_at = datetime.now(UTC)
    _send(
        client,
        "basic",
        ServiceBusMessage(
            '{"sku": "A-1"}',
            message_id="evt-1",
            correlation_id="corr-1",
            subject="adjusted",
            content_type="application/json",
            application_properties={"source": "erp", "attempt": 2},
        ),
    )
    with client.get_queue_receiver("basic") as receiver:
        (message,) = _receive(receiver, 1)
        assert _text(message) == '{"sku": "A-1"}'
        assert message.message_id == "evt-1"
        assert message.correlation_id == "corr-1"
        assert message.subject == "adjusted"
        assert message.content_type == "application/json"
        assert message.application_properties == {b"source": b"erp", b"attempt": 2}
        assert message.delivery_count == 0
        assert message.sequence_number is not None and message.sequence_number >= 1
        assert message.enqueued_time_utc is not None
        assert message.enqueued_time_utc >= sent_at - timedelta(seconds=1)
        assert message.locked_until_utc is not None
        assert message.locked_until_utc > datetime.now(UTC) + timedelta(seconds=30)
        receiver.complete_message(message)


def test_complete_removes_the_message(client: ServiceBusClient) -> None:
    _send(client, "complete", ServiceBusMessage("done"))
    with client.get_queue_receiver("complete") as receiver:
        (message,) = _receive(receiver, 1)
        receiver.complete_message(message)
        assert _nothing_left(receiver)
        assert receiver.receive_messages(max_message_count=1, max_wait_time=1) == []


def test_abandon_redelivers_with_incremented_delivery_count(client: ServiceBusClient) -> None:
    _send(client, "abandon", ServiceBusMessage("retry me", message_id="ab-1"))
    with client.get_queue_receiver("abandon") as receiver:
        (first,) = _receive(receiver, 1)
        receiver.abandon_message(first)
        (second,) = _receive(receiver, 1)
        assert second.message_id == "ab-1"
        assert second.sequence_number == first.sequence_number
        assert (first.delivery_count, second.delivery_count) == (0, 1)
        assert second.lock_token != first.lock_token
        receiver.complete_message(second)


def test_dead_letter_keeps_reason_and_description(client: ServiceBusClient) -> None:
    _send(client, "deadletter", ServiceBusMessage("bad", message_id="dl-1"))
    with client.get_queue_receiver("deadletter") as receiver:
        (message,) = _receive(receiver, 1)
        receiver.dead_letter_message(
            message, reason="UnknownSku", error_description="sku X-9 is not in the catalog"
        )
        assert _nothing_left(receiver)
    with client.get_queue_receiver("deadletter", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        (dead,) = _receive(dlq, 1)
        assert dead.message_id == "dl-1"
        assert _text(dead) == "bad"
        assert dead.dead_letter_reason == "UnknownSku"
        assert dead.dead_letter_error_description == "sku X-9 is not in the catalog"
        assert dead.application_properties is not None
        assert dead.application_properties[b"DeadLetterReason"] == b"UnknownSku"
        assert dead.dead_letter_source is None  # set only when forwarded out of a DLQ
        dlq.complete_message(dead)
        assert _nothing_left(dlq)


def test_max_delivery_count_moves_the_message_to_the_dead_letter_queue(
    client: ServiceBusClient,
) -> None:
    _send(client, "poison", ServiceBusMessage("poison", message_id="p-1"))
    counts = []
    with client.get_queue_receiver("poison") as receiver:
        for _ in range(3):
            (message,) = _receive(receiver, 1)
            counts.append(message.delivery_count)
            receiver.abandon_message(message)
        assert receiver.receive_messages(max_message_count=1, max_wait_time=1) == []
    assert counts == [0, 1, 2]
    with client.get_queue_receiver("poison", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        (dead,) = _receive(dlq, 1)
        assert dead.message_id == "p-1"
        assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
        assert dead.delivery_count == 3
        dlq.complete_message(dead)


@pytest.mark.slow  # waits for a lock or a window to run out
def test_expired_lock_makes_the_message_visible_to_another_receiver(
    client: ServiceBusClient,
) -> None:
    _send(client, "lock-expiry", ServiceBusMessage("slow", message_id="le-1"))
    with (
        client.get_queue_receiver("lock-expiry") as first_receiver,
        client.get_queue_receiver("lock-expiry") as second_receiver,
    ):
        (held,) = _receive(first_receiver, 1)
        assert held.locked_until_utc is not None
        # The second receiver gets nothing while the lock holds, then the same message.
        (again,) = _receive(second_receiver, 1, timeout=20)
        assert datetime.now(UTC) >= held.locked_until_utc - timedelta(milliseconds=100)
        assert again.message_id == "le-1"
        assert again.delivery_count == 1
        with pytest.raises(MessageLockLostError):
            first_receiver.complete_message(held)
        # The client refused on its own clock above; make it ask the broker, which must
        # answer the settlement of a lost lock with com.microsoft:message-lock-lost.
        held._expiry = datetime.now(UTC) + timedelta(minutes=5)
        with pytest.raises(MessageLockLostError):
            first_receiver.complete_message(held)
        second_receiver.complete_message(again)


@pytest.mark.slow  # waits for a lock or a window to run out
def test_renew_message_lock_extends_the_lock(client: ServiceBusClient) -> None:
    _send(client, "renew", ServiceBusMessage("long job", message_id="rn-1"))
    with (
        client.get_queue_receiver("renew") as receiver,
        client.get_queue_receiver("renew") as competitor,
    ):
        (message,) = _receive(receiver, 1)
        original_expiry = message.locked_until_utc
        assert original_expiry is not None
        # Keep the lock past its original expiry by renewing it; nobody else may get it.
        renewed = original_expiry
        while datetime.now(UTC) < original_expiry + timedelta(seconds=1):
            renewed = receiver.renew_message_lock(message)
            assert competitor.receive_messages(max_message_count=1, max_wait_time=0.5) == []
        assert renewed > original_expiry
        assert message.locked_until_utc == renewed
        receiver.complete_message(message)
        assert _nothing_left(receiver)


def test_peek_does_not_consume_or_lock(client: ServiceBusClient) -> None:
    _send(client, "peek", *(ServiceBusMessage(f"p{i}", message_id=f"pk-{i}") for i in range(3)))
    with client.get_queue_receiver("peek") as receiver:
        peeked = receiver.peek_messages(max_message_count=10)
        assert [m.message_id for m in peeked] == ["pk-0", "pk-1", "pk-2"]
        assert all(m.lock_token is None for m in peeked)
        sequence = [m.sequence_number for m in peeked]
        assert sequence == sorted(sequence)
        # Without a start the client continues after the last peeked message; start over.
        again = receiver.peek_messages(max_message_count=10, sequence_number=sequence[0])
        assert [m.message_id for m in again] == ["pk-0", "pk-1", "pk-2"]
        assert receiver.peek_messages(max_message_count=10) == []
        received = _receive(receiver, 3)
        assert sorted(m.message_id for m in received) == ["pk-0", "pk-1", "pk-2"]
        assert all(m.delivery_count == 0 for m in received)
        for message in received:
            receiver.complete_message(message)


def test_a_batch_of_many_messages_arrives_complete(client: ServiceBusClient) -> None:
    count = 150
    with client.get_queue_sender("batch") as sender:
        batch = sender.create_message_batch()
        for i in range(count):
            batch.add_message(
                ServiceBusMessage(
                    f"item-{i}", message_id=f"b-{i}", application_properties={"index": i}
                )
            )
        sender.send_messages(batch)
    with client.get_queue_receiver("batch", prefetch_count=50) as receiver:
        received = _receive(receiver, count, timeout=30)
        for message in received:
            receiver.complete_message(message)
    assert sorted(_text(m) for m in received) == sorted(f"item-{i}" for i in range(count))
    assert {m.message_id: m.application_properties for m in received}["b-7"] == {b"index": 7}
    assert len({m.sequence_number for m in received}) == count


@pytest.mark.slow  # waits for a lock or a window to run out
def test_duplicate_detection_drops_a_resend_only_within_the_window(
    client: ServiceBusClient,
) -> None:
    with (
        client.get_queue_sender("dedup") as sender,
        client.get_queue_receiver("dedup") as receiver,
    ):
        sender.send_messages(ServiceBusMessage("first", message_id="order-1"))
        accepted_by = time.monotonic()
        sender.send_messages(ServiceBusMessage("resend", message_id="order-1"))
        sender.send_messages(ServiceBusMessage("other", message_id="order-2"))
        received = _receive(receiver, 2)
        assert sorted(_text(m) for m in received) == ["first", "other"]
        for message in received:
            receiver.complete_message(message)
        assert receiver.receive_messages(max_message_count=1, max_wait_time=1) == []
        # Once the window has passed the same MessageId is a new message again. Waiting is the
        # precondition here, not the thing measured.
        elapsed = time.monotonic() - accepted_by
        time.sleep(max(0.0, DUPLICATE_WINDOW.total_seconds() - elapsed) + 0.5)
        sender.send_messages(ServiceBusMessage("after window", message_id="order-1"))
        (late,) = _receive(receiver, 1)
        assert _text(late) == "after window"
        receiver.complete_message(late)


def test_receive_and_delete_removes_on_delivery(client: ServiceBusClient) -> None:
    _send(client, "receive-delete", ServiceBusMessage("once", message_id="rd-1"))
    with client.get_queue_receiver(
        "receive-delete", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
    ) as receiver:
        (message,) = _receive(receiver, 1)
        assert message.message_id == "rd-1"
        assert message.lock_token is None
        assert _nothing_left(receiver)


def test_scheduled_message_arrives_no_earlier_than_its_time(client: ServiceBusClient) -> None:
    scheduled_for = datetime.now(UTC) + timedelta(seconds=2)
    _send(
        client,
        "scheduled",
        ServiceBusMessage("later", message_id="sc-1", scheduled_enqueue_time_utc=scheduled_for),
    )
    with client.get_queue_receiver("scheduled") as receiver:
        (waiting,) = receiver.peek_messages(max_message_count=5)
        assert waiting.state == ServiceBusMessageState.SCHEDULED
        (message,) = _receive(receiver, 1, timeout=20)
        assert datetime.now(UTC) >= scheduled_for
        assert message.message_id == "sc-1"
        assert message.scheduled_enqueue_time_utc is not None
        assert message.enqueued_time_utc is not None
        assert message.enqueued_time_utc >= scheduled_for - timedelta(milliseconds=5)
        receiver.complete_message(message)


def test_schedule_messages_api_and_cancel(client: ServiceBusClient) -> None:
    far = datetime.now(UTC) + timedelta(hours=1)
    with client.get_queue_sender("scheduled") as sender:
        (kept,) = sender.schedule_messages(ServiceBusMessage("kept", message_id="k"), far)
        (cancelled,) = sender.schedule_messages(ServiceBusMessage("gone", message_id="g"), far)
        sender.cancel_scheduled_messages(cancelled)
    with client.get_queue_receiver("scheduled") as receiver:
        peeked = receiver.peek_messages(max_message_count=10, sequence_number=kept)
        assert [m.message_id for m in peeked] == ["k"]
        assert peeked[0].sequence_number == kept


def test_deferred_message_is_received_by_sequence_number(client: ServiceBusClient) -> None:
    _send(client, "defer", ServiceBusMessage("later please", message_id="df-1"))
    with client.get_queue_receiver("defer") as receiver:
        (message,) = _receive(receiver, 1)
        sequence_number = message.sequence_number
        assert sequence_number is not None
        receiver.defer_message(message)
        assert receiver.receive_messages(max_message_count=1, max_wait_time=1) == []
        (deferred,) = receiver.receive_deferred_messages([sequence_number])
        assert deferred.message_id == "df-1"
        # Deferred messages are settled through $management (update-disposition).
        receiver.complete_message(deferred)
        assert _nothing_left(receiver)


def test_topic_copies_each_message_to_every_matching_subscription(
    client: ServiceBusClient,
) -> None:
    with client.get_topic_sender("fanout") as sender:
        sender.send_messages(
            [
                ServiceBusMessage("s1", message_id="st-1", subject="shipped"),
                ServiceBusMessage("s2", message_id="st-2", subject="invoiced"),
            ]
        )
    seen: dict[str, list[str]] = {}
    for name, expected in (("first", 2), ("second", 2), ("only-shipped", 1)):
        with client.get_subscription_receiver("fanout", name) as receiver:
            messages = _receive(receiver, expected)
            seen[name] = sorted(str(m.message_id) for m in messages)
            for message in messages:
                receiver.complete_message(message)
            assert _nothing_left(receiver)
    assert seen == {"first": ["st-1", "st-2"], "second": ["st-1", "st-2"], "only-shipped": ["st-1"]}


def test_subscription_has_its_own_dead_letter_queue(client: ServiceBusClient) -> None:
    with client.get_topic_sender("fanout") as sender:
        sender.send_messages(ServiceBusMessage("bad", message_id="sd-1", subject="shipped"))
    with client.get_subscription_receiver("fanout", "only-shipped") as receiver:
        (message,) = _receive(receiver, 1)
        receiver.dead_letter_message(message, reason="Unroutable", error_description="no store")
    for name in ("first", "second"):  # the other copies are untouched
        with client.get_subscription_receiver("fanout", name) as receiver:
            (copy,) = _receive(receiver, 1)
            assert (copy.message_id, copy.delivery_count) == ("sd-1", 0)
            receiver.complete_message(copy)
    with client.get_subscription_receiver(
        "fanout", "only-shipped", sub_queue=ServiceBusSubQueue.DEAD_LETTER
    ) as dlq:
        (dead,) = _receive(dlq, 1)
        assert (dead.message_id, dead.dead_letter_reason) == ("sd-1", "Unroutable")
        assert dead.dead_letter_source is None
        dlq.complete_message(dead)


def test_unknown_entity_raises_not_found_without_retrying(standin: StandinHandle) -> None:
    with ServiceBusClient.from_connection_string(standin.connection_string, retry_total=0) as sb:
        started = time.monotonic()
        with pytest.raises(MessagingEntityNotFoundError), sb.get_queue_sender("no-such-queue") as s:
            s.send_messages(ServiceBusMessage("lost"))
        with (
            pytest.raises(MessagingEntityNotFoundError),
            sb.get_queue_receiver("no-such-queue") as receiver,
        ):
            receiver.receive_messages(max_message_count=1, max_wait_time=1)
        # Generous bound: only a retry loop (many seconds) would exceed it.
        assert time.monotonic() - started < 10


def test_stats_count_active_and_dead_lettered_messages(
    client: ServiceBusClient, standin: StandinHandle
) -> None:
    _send(client, "stats", ServiceBusMessage("keep"), ServiceBusMessage("reject"))
    with client.get_queue_receiver("stats") as receiver:
        messages = _receive(receiver, 2)
        receiver.dead_letter_message(messages[1], reason="test")
        receiver.abandon_message(messages[0])
    deadline = time.monotonic() + 10
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = standin.stats()["stats"]
        if counts["deadLettered"] == 1 and counts["locked"] == 0:
            break
        time.sleep(0.1)
    assert counts["active"] == 1
    assert counts["deadLettered"] == 1
    assert counts["locked"] == 0


def test_a_misbehaving_client_does_not_take_the_broker_down(
    client: ServiceBusClient, standin: StandinHandle
) -> None:
    with socket.create_connection((standin.host, standin.port), timeout=5) as raw:
        raw.sendall(b"AMQP\x00\x01\x00\x00" + uuid.uuid4().bytes * 8)
    with socket.create_connection((standin.host, standin.port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\n\r\n")
    _send(client, "robust", ServiceBusMessage("still here"))
    with client.get_queue_receiver("robust") as receiver:
        (message,) = _receive(receiver, 1)
        assert _text(message) == "still here"
        receiver.complete_message(message)


async def test_async_client_sends_receives_and_settles(standin: StandinHandle) -> None:
    async with AsyncServiceBusClient.from_connection_string(standin.connection_string) as sb:
        async with sb.get_queue_sender("async-basic") as sender:
            batch = await sender.create_message_batch()
            for i in range(3):
                batch.add_message(ServiceBusMessage(f"a{i}", message_id=f"as-{i}"))
            await sender.send_messages(batch)
        async with sb.get_queue_receiver("async-basic") as receiver:
            peeked = await receiver.peek_messages(max_message_count=5)
            assert [m.message_id for m in peeked] == ["as-0", "as-1", "as-2"]
            received: list[ServiceBusReceivedMessage] = []
            deadline = time.monotonic() + 15
            while len(received) < 3 and time.monotonic() < deadline:
                received += await receiver.receive_messages(max_message_count=3, max_wait_time=1)
            by_id = {m.message_id: m for m in received}
            assert set(by_id) == {"as-0", "as-1", "as-2"}
            await receiver.complete_message(by_id["as-0"])
            await receiver.dead_letter_message(by_id["as-1"], reason="async", error_description="d")
            before = by_id["as-2"].locked_until_utc
            renewed = await receiver.renew_message_lock(by_id["as-2"])
            assert before is not None and renewed >= before
            await receiver.abandon_message(by_id["as-2"])
            (again,) = await receiver.receive_messages(max_message_count=1, max_wait_time=5)
            assert (again.message_id, again.delivery_count) == ("as-2", 1)
            await receiver.complete_message(again)
        async with sb.get_queue_receiver(
            "async-basic", sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dlq:
            (dead,) = await dlq.receive_messages(max_message_count=1, max_wait_time=5)
            assert (dead.message_id, dead.dead_letter_reason) == ("as-1", "async")
            assert dead.dead_letter_error_description == "d"
            await dlq.complete_message(dead)


async def test_many_concurrent_lock_renewals_keep_the_connection(
    standin: StandinHandle,
) -> None:
    # The 7.15 client sends concurrent $management requests with clashing delivery ids;
    # Azure tolerates that, and so must the stand-in (it used to close the connection). Sources:
    # Service Bus's AMQP stack takes each transfer's delivery-id as given (Azure/azure-amqp,
    # src/AmqpSession.cs, SessionChannel.OnReceiveDelivery), and Microsoft's auto_lock_renew
    # samples renew this way; the relay renumbers such requests (devtools/servicebus/frames.py).
    count = 60
    async with AsyncServiceBusClient.from_connection_string(
        standin.connection_string, retry_total=0
    ) as sb:
        async with sb.get_queue_sender("async-renew-many") as sender:
            await sender.send_messages([ServiceBusMessage(f"r{i}") for i in range(count)])
        async with sb.get_queue_receiver("async-renew-many") as receiver:
            received: list[ServiceBusReceivedMessage] = []
            deadline = time.monotonic() + 15
            while len(received) < count and time.monotonic() < deadline:
                received += await receiver.receive_messages(count, max_wait_time=1)
            assert len(received) == count
            for _ in range(3):
                renewed = await asyncio.wait_for(
                    asyncio.gather(*(receiver.renew_message_lock(m) for m in received)), 30
                )
                assert len(renewed) == count
            await asyncio.wait_for(
                asyncio.gather(*(receiver.complete_message(m) for m in received)), 30
            )
    assert standin.stats()["async-renew-many"]["active"] == 0


@pytest.mark.slow  # holds locks for twice their duration
def test_auto_lock_renewer_threads_keep_every_lock(client: ServiceBusClient) -> None:
    # AutoLockRenewer renews each message from its own worker thread over the receiver's one
    # $management link: the renewals' transfers leave with clashing and out-of-order
    # delivery-ids (seen with PN_TRACE_FRM=1). As on Azure (Microsoft's auto_lock_renew
    # sample), every lock must hold and every message complete.
    with client.get_queue_sender("auto-renew") as sender:
        sender.send_messages([ServiceBusMessage(f"held {n}") for n in range(10)])
    with (
        AutoLockRenewer(max_workers=10) as renewer,
        client.get_queue_receiver("auto-renew", prefetch_count=10) as receiver,
    ):
        held: list[ServiceBusReceivedMessage] = []
        failures: list[object] = []
        while len(held) < 10:
            # Registered as soon as received, as Microsoft's sample does: a message's lock
            # runs from its (pre)fetch, and on a loaded machine collecting all ten can take
            # longer than the lock.
            for message in receiver.receive_messages(
                max_message_count=10 - len(held), max_wait_time=5
            ):
                renewer.register(
                    receiver,
                    message,
                    max_lock_renewal_duration=45,
                    on_lock_renew_failure=lambda renewable, error: failures.append(error),
                )
                held.append(message)
        time.sleep(26)  # more than twice the LockDuration
        for message in held:
            receiver.complete_message(message)
    assert failures == []


async def test_async_abandon_until_max_delivery_count(standin: StandinHandle) -> None:
    async with AsyncServiceBusClient.from_connection_string(standin.connection_string) as sb:
        async with sb.get_queue_sender("async-poison") as sender:
            await sender.send_messages(ServiceBusMessage("boom", message_id="ap-1"))
        async with sb.get_queue_receiver("async-poison") as receiver:
            for expected_count in (0, 1):
                (message,) = await receiver.receive_messages(max_message_count=1, max_wait_time=5)
                assert message.delivery_count == expected_count
                await receiver.abandon_message(message)
            assert await receiver.peek_messages(max_message_count=5) == []
        async with sb.get_queue_receiver(
            "async-poison", sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dlq:
            (dead,) = await dlq.receive_messages(max_message_count=1, max_wait_time=5)
            assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
            await dlq.complete_message(dead)


async def test_async_unknown_entity_raises_not_found(standin: StandinHandle) -> None:
    async with AsyncServiceBusClient.from_connection_string(
        standin.connection_string, retry_total=0
    ) as sb:
        with pytest.raises(MessagingEntityNotFoundError):
            async with sb.get_queue_sender("missing") as sender:
                await sender.send_messages(ServiceBusMessage("x"))
