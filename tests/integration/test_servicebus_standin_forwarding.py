"""Auto-forwarding (ForwardTo, ForwardDeadLetteredMessagesTo) with the real azure-servicebus client.

What is reproduced, from Microsoft's "Chaining Service Bus entities with autoforwarding"
(https://learn.microsoft.com/azure/service-bus-messaging/service-bus-auto-forwarding): a queue or
subscription chained to a queue or topic of the same namespace; "Service Bus automatically
removes messages that are placed in the first queue or subscription (source) and puts them in
the second queue or topic (destination)"; "It's still possible to send a message to the
destination entity directly"; "The destination entity must exist". For dead-lettered messages
(QueueProperties.ForwardDeadLetteredMessagesTo,
https://learn.microsoft.com/dotnet/api/azure.messaging.servicebus.administration.queueproperties.forwarddeadletteredmessagesto):
"If set, user cannot manually receive dead-lettered messages from this queue", and the forwarded
message names where it was dead-lettered (DeadLetterSource, set only on such messages).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import ServiceBusError

from devtools.servicebus.testing import StandinHandle, running_standin
from devtools.servicebus.topology import TopologyError, parse_topology


def _queue(name: str, **properties: Any) -> dict[str, Any]:
    return {"Name": name, "Properties": {"LockDuration": "PT1M", **properties}}


def _document(queues: list[dict[str, Any]], topics: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "UserConfig": {"Namespaces": [{"Name": "sbemulatorns", "Queues": queues, "Topics": topics}]}
    }


TOPOLOGY = _document(
    [
        _queue("work"),
        _queue("inbox", ForwardTo="work"),
        _queue("strict", ForwardDeadLetteredMessagesTo="graveyard"),
        _queue("graveyard"),
    ],
    [
        {
            "Name": "events",
            "Subscriptions": [
                {"Name": "to-work", "Properties": {"ForwardTo": "work"}},
                {"Name": "kept", "Properties": {}},
            ],
        }
    ],
)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    with running_standin(TOPOLOGY) as handle:
        yield handle


@pytest.fixture
def client(standin: StandinHandle) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(standin.connection_string, retry_total=0) as sb:
        yield sb


def _receive_all(client: ServiceBusClient, queue: str, **kwargs: Any) -> list[Any]:
    with client.get_queue_receiver(queue, max_wait_time=3, **kwargs) as receiver:
        received = receiver.receive_messages(max_message_count=20, max_wait_time=3)
        for message in received:
            receiver.complete_message(message)
    return received


def test_a_queue_and_a_subscription_forward_to_their_destination(
    client: ServiceBusClient,
) -> None:
    with client.get_queue_sender("inbox") as sender:
        sender.send_messages(
            ServiceBusMessage("via inbox", message_id="q1", application_properties={"k": "v"})
        )
    with client.get_topic_sender("events") as sender:
        sender.send_messages(ServiceBusMessage("via topic", message_id="t1"))
    with client.get_queue_sender("work") as sender:
        sender.send_messages(ServiceBusMessage("direct", message_id="d1"))

    received = _receive_all(client, "work")
    assert sorted(str(m.message_id) for m in received) == ["d1", "q1", "t1"]
    via_inbox = next(m for m in received if m.message_id == "q1")
    assert str(via_inbox) == "via inbox"
    assert via_inbox.application_properties == {b"k": b"v"}
    assert via_inbox.dead_letter_source is None
    # The subscription without forwarding keeps its copy.
    with client.get_subscription_receiver("events", "kept", max_wait_time=3) as receiver:
        assert [str(m) for m in receiver.receive_messages(max_wait_time=3)] == ["via topic"]


def test_a_forwarding_source_cannot_be_received_from(client: ServiceBusClient) -> None:
    with (
        pytest.raises(ServiceBusError, match="auto-forwards"),
        client.get_queue_receiver("inbox", max_wait_time=1) as receiver,
    ):
        receiver.receive_messages(max_wait_time=1)


def test_dead_lettered_messages_are_forwarded_with_their_source(client: ServiceBusClient) -> None:
    with client.get_queue_sender("strict") as sender:
        sender.send_messages(ServiceBusMessage("bad", message_id="p1"))
    with client.get_queue_receiver("strict", max_wait_time=3) as receiver:
        (message,) = receiver.receive_messages(max_wait_time=3)
        receiver.dead_letter_message(message, reason="invalid", error_description="no sku")

    (forwarded,) = _receive_all(client, "graveyard")
    assert forwarded.message_id == "p1"
    assert forwarded.dead_letter_source == "strict"
    assert forwarded.dead_letter_reason == "invalid"
    assert forwarded.dead_letter_error_description == "no sku"
    with (
        pytest.raises(ServiceBusError, match="auto-forwards"),
        client.get_queue_receiver(
            "strict", sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=1
        ) as receiver,
    ):
        receiver.receive_messages(max_wait_time=1)


@pytest.mark.parametrize(
    ("queues", "problem"),
    [
        ([_queue("a", ForwardTo="nowhere")], "not a queue or topic"),
        ([_queue("a", ForwardDeadLetteredMessagesTo="nowhere")], "not a queue or topic"),
        ([_queue("a", ForwardTo="b"), _queue("b", ForwardTo="A")], "loop: a -> b -> a"),
    ],
)
def test_forwarding_to_nothing_or_in_a_loop_is_refused_at_load(
    queues: list[dict[str, Any]], problem: str
) -> None:
    with pytest.raises(TopologyError, match=problem):
        parse_topology(_document(queues, []))
