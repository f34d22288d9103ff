"""The Service Bus stand-in killed (SIGKILL) with messages in flight, and started again.

With a data directory the stand-in keeps its messages in SQLite and writes every change before
it answers; these tests kill the process without warning, start it again on the same port and
data directory, and read everything back with the real azure-servicebus client.

What Azure promises, and so what is checked:
- A send completes once Service Bus has accepted the message ("Settling send operations",
  https://learn.microsoft.com/azure/service-bus-messaging/message-transfers-locks-settlement):
  an acknowledged send is never lost.
- A lock that is lost makes the message available again with a higher delivery count: "When the
  lock expires, the DeliveryCount is incremented and the message is again available for
  retrieval" (ServiceBusReceivedMessage.LockedUntil,
  https://learn.microsoft.com/dotnet/api/azure.messaging.servicebus.servicebusreceivedmessage.lockeduntil);
  "The count is incremented when a message lock expires, or the message is explicitly abandoned"
  (ServiceBusReceivedMessage.DeliveryCount,
  https://learn.microsoft.com/dotnet/api/azure.messaging.servicebus.servicebusreceivedmessage.deliverycount).
  A restart loses every lock, so messages locked at the crash come back once more: at-least-once.
- Completed messages stay completed; sequence numbers are never reused; dead-lettered and
  scheduled messages, session state and the duplicate-detection history are entity state.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import ServiceBusError

from devtools.servicebus.testing import StandinProcess

QUEUE = "work"
SESSION_QUEUE = "by-order"
TOPIC = "events"
SUBSCRIPTION = "audit"

TOPOLOGY: dict[str, Any] = {
    "UserConfig": {
        "Namespaces": [
            {
                "Name": "sbemulatorns",
                "Queues": [
                    {
                        "Name": QUEUE,
                        "Properties": {
                            "LockDuration": "PT5M",
                            "MaxDeliveryCount": 10,
                            "RequiresDuplicateDetection": True,
                            "DuplicateDetectionHistoryTimeWindow": "PT5M",
                        },
                    },
                    {
                        "Name": SESSION_QUEUE,
                        "Properties": {"LockDuration": "PT5M", "RequiresSession": True},
                    },
                ],
                "Topics": [
                    {
                        "Name": TOPIC,
                        "Subscriptions": [
                            {"Name": SUBSCRIPTION, "Properties": {"LockDuration": "PT5M"}}
                        ],
                    }
                ],
            }
        ]
    }
}


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandinProcess]:
    config = tmp_path / "topology.json"
    config.write_text(json.dumps(TOPOLOGY), encoding="utf-8")
    process = StandinProcess(config, data_dir=tmp_path / "data", log_file=tmp_path / "standin.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _client(standin: StandinProcess) -> ServiceBusClient:
    return ServiceBusClient.from_connection_string(standin.connection_string, retry_total=0)


def _drain(
    client: ServiceBusClient, entity: str, *, sub_queue: ServiceBusSubQueue | None = None
) -> list[ServiceBusReceivedMessage]:
    """Receive and complete everything receivable now."""
    received: list[ServiceBusReceivedMessage] = []
    with client.get_queue_receiver(entity, sub_queue=sub_queue, max_wait_time=2) as receiver:
        while batch := receiver.receive_messages(max_message_count=50, max_wait_time=2):
            for message in batch:
                receiver.complete_message(message)
            received.extend(batch)
    return received


def _ids(messages: list[ServiceBusReceivedMessage]) -> list[str]:
    return [str(message.message_id) for message in messages]


@pytest.mark.slow  # starts the stand-in twice
def test_messages_in_flight_survive_a_killed_standin(standin: StandinProcess) -> None:
    total = 30
    later = datetime.now(UTC) + timedelta(hours=1)
    with _client(standin) as client:
        with client.get_queue_sender(QUEUE) as sender:
            sender.send_messages(ServiceBusMessage("poison", message_id="poison"))
        with client.get_queue_receiver(QUEUE, max_wait_time=5) as receiver:
            (poison,) = receiver.receive_messages(max_message_count=1)
            receiver.dead_letter_message(poison, reason="bad-input", error_description="why")
        with client.get_queue_sender(QUEUE) as sender:
            sender.send_messages(
                [ServiceBusMessage(f"body {n}", message_id=f"m{n}") for n in range(total)]
            )
            scheduled = sender.schedule_messages(
                [ServiceBusMessage("later", message_id=f"later{n}") for n in range(2)], later
            )
        with client.get_topic_sender(TOPIC) as sender:
            sender.send_messages(ServiceBusMessage("audit me", message_id="a1"))
        with client.get_queue_sender(SESSION_QUEUE) as sender:
            sender.send_messages(ServiceBusMessage("step", session_id="order-1"))
        with client.get_queue_receiver(SESSION_QUEUE, session_id="order-1") as receiver:
            for message in receiver.receive_messages(max_message_count=1, max_wait_time=5):
                receiver.complete_message(message)
            receiver.session.set_state(b"step-2")

        # Peek-lock 15, complete 5 of them; 10 stay locked, unsettled, when the process dies.
        receiver = client.get_queue_receiver(QUEUE, max_wait_time=5, prefetch_count=0)
        receiver.__enter__()
        held: list[ServiceBusReceivedMessage] = []
        while len(held) < 15:
            held += receiver.receive_messages(max_message_count=15 - len(held), max_wait_time=5)
        for message in held[:5]:
            receiver.complete_message(message)
        completed = set(_ids(held[:5]))
        locked = set(_ids(held[5:]))
        assert all(message.delivery_count == 0 for message in held)

        standin.kill()
        with pytest.raises(ServiceBusError):
            receiver.complete_message(held[5])  # the stand-in is gone, and so is the lock
        receiver.close()

    standin.start()
    with _client(standin) as client:
        with client.get_queue_sender(QUEUE) as sender:
            # Within the duplicate-detection window, before and after the restart alike.
            sender.send_messages(ServiceBusMessage("again", message_id="m0"))
            sender.send_messages(ServiceBusMessage("again", message_id="m29"))
            sender.send_messages(ServiceBusMessage("new", message_id="after-restart"))
        received = _drain(client, QUEUE)
        ids = _ids(received)
        expected = {f"m{n}" for n in range(total)} - completed | {"after-restart"}
        assert sorted(ids) == sorted(expected), "a message was lost or duplicated"
        counts = {str(m.message_id): m.delivery_count for m in received}
        assert {i for i, count in counts.items() if count == 1} == locked
        assert {i for i, count in counts.items() if count == 0} == expected - locked
        numbers = {str(m.message_id): m.sequence_number for m in received}
        assert numbers["after-restart"] > max(v for k, v in numbers.items() if k != "after-restart")
        assert numbers["after-restart"] > max(scheduled)

        dead = _drain(client, QUEUE, sub_queue=ServiceBusSubQueue.DEAD_LETTER)
        assert _ids(dead) == ["poison"]
        assert dead[0].dead_letter_reason == "bad-input"
        assert dead[0].dead_letter_error_description == "why"

        with client.get_queue_receiver(QUEUE) as receiver:
            pending = receiver.peek_messages(max_message_count=10)
        assert [m.sequence_number for m in pending] == scheduled
        assert _ids(pending) == ["later0", "later1"]
        assert all(m.scheduled_enqueue_time_utc is not None for m in pending)
        assert all(m.state.name == "SCHEDULED" for m in pending)

        with client.get_subscription_receiver(TOPIC, SUBSCRIPTION, max_wait_time=5) as receiver:
            assert _ids(receiver.receive_messages(max_message_count=5, max_wait_time=5)) == ["a1"]

        with client.get_queue_receiver(SESSION_QUEUE, session_id="order-1") as receiver:
            assert receiver.session.get_state() == b"step-2"


@pytest.mark.slow  # starts the stand-in twice
def test_every_acknowledged_send_survives_a_kill_during_sends(standin: StandinProcess) -> None:
    acknowledged: list[str] = []
    attempted: list[str] = []
    stop = threading.Event()

    def send_until_killed() -> None:
        with _client(standin) as client, client.get_queue_sender(QUEUE) as sender:
            n = 0
            while not stop.is_set():
                message_id = f"s{n}"
                attempted.append(message_id)
                try:
                    sender.send_messages(ServiceBusMessage(f"body {n}", message_id=message_id))
                except ServiceBusError:
                    return
                acknowledged.append(message_id)
                n += 1

    sending = threading.Thread(target=send_until_killed)
    sending.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    standin.kill()
    stop.set()
    sending.join(timeout=60)
    assert not sending.is_alive()
    assert len(acknowledged) >= 50

    standin.start()
    with _client(standin) as client:
        ids = _ids(_drain(client, QUEUE))
    assert len(ids) == len(set(ids)), "a message arrived twice"
    assert set(acknowledged) <= set(ids), "an acknowledged send was lost"
    # At most the send in flight at the kill may have been stored without its acknowledgement.
    assert set(ids) - set(acknowledged) <= set(attempted[len(acknowledged) :])
