"""Message sessions on the stand-in with the real azure-servicebus client, sync and async."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.servicebus import (
    NEXT_AVAILABLE_SESSION,
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusReceiver,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient
from azure.servicebus.exceptions import (
    OperationTimeoutError,
    ServiceBusError,
    SessionCannotBeLockedError,
    SessionLockLostError,
)

from devtools.servicebus.testing import StandinHandle, running_standin

SHORT_LOCK = "PT2S"


def _session_queue(name: str, **properties: Any) -> dict[str, Any]:
    props = {"LockDuration": "PT30S", "MaxDeliveryCount": 10, "RequiresSession": True}
    props.update(properties)
    return {"Name": name, "Properties": props}


TOPOLOGY = {
    "UserConfig": {
        "Namespaces": [
            {
                "Name": "sbemulatorns",
                "Queues": [
                    _session_queue("fifo"),
                    _session_queue("refusals"),
                    _session_queue("next-available"),
                    _session_queue("exclusive"),
                    _session_queue("lock-expiry", LockDuration=SHORT_LOCK),
                    _session_queue("state"),
                    _session_queue("listing"),
                    _session_queue("settle"),
                    _session_queue("async-sessions"),
                    {"Name": "plain", "Properties": {"LockDuration": "PT30S"}},
                ],
                "Topics": [
                    {
                        "Name": "per-order",
                        "Subscriptions": [
                            {
                                "Name": "ordered",
                                "Properties": {"RequiresSession": True, "MaxDeliveryCount": 10},
                            },
                            {"Name": "unordered", "Properties": {"MaxDeliveryCount": 10}},
                        ],
                    }
                ],
            }
        ]
    }
}


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    with running_standin(TOPOLOGY) as handle:
        yield handle


@pytest.fixture
def client(standin: StandinHandle) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(
        standin.connection_string, retry_total=0
    ) as sb_client:
        yield sb_client


def _send(client: ServiceBusClient, entity: str, *messages: ServiceBusMessage) -> None:
    with client.get_queue_sender(entity) as sender:
        sender.send_messages(list(messages))


def _text(message: ServiceBusReceivedMessage) -> str:
    return b"".join(message.body).decode()


def _receive_all(receiver: ServiceBusReceiver, count: int) -> list[ServiceBusReceivedMessage]:
    got: list[ServiceBusReceivedMessage] = []
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        got += receiver.receive_messages(max_message_count=count - len(got), max_wait_time=1)
    return got


def test_a_session_receiver_gets_its_session_in_order(client: ServiceBusClient) -> None:
    _send(
        client,
        "fifo",
        *[
            ServiceBusMessage(f"{session}-{n}", session_id=session)
            for n in range(5)
            for session in ("A", "B")
        ],
    )
    with client.get_queue_receiver("fifo", session_id="B") as receiver:
        assert receiver.session.session_id == "B"
        messages = _receive_all(receiver, 5)
        assert [_text(m) for m in messages] == [f"B-{n}" for n in range(5)]
        assert all(m.session_id == "B" for m in messages)
        # Abandoning the first puts it back in front: FIFO holds within the session.
        receiver.abandon_message(messages[0])
        for message in messages[1:]:
            receiver.complete_message(message)
        (again,) = _receive_all(receiver, 1)
        assert (_text(again), again.delivery_count) == ("B-0", 1)
        receiver.complete_message(again)
    with client.get_queue_receiver("fifo", session_id="A") as receiver:
        messages = _receive_all(receiver, 5)
        assert [_text(m) for m in messages] == [f"A-{n}" for n in range(5)]
        for message in messages:
            receiver.complete_message(message)


def test_a_session_entity_refuses_messages_and_receivers_without_session(
    client: ServiceBusClient,
) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceBusError, match="SessionId was not set"):
        _send(client, "refusals", ServiceBusMessage("no session"))
    with pytest.raises(ServiceBusError, match="SessionId was not set"):
        # A batch is taken whole or not at all.
        _send(
            client,
            "refusals",
            ServiceBusMessage("ok", session_id="s"),
            ServiceBusMessage("no session"),
        )
    assert time.monotonic() - started < 10  # refused with an error, not left hanging
    with (
        pytest.raises(ServiceBusError, match="non-sessionful"),
        client.get_queue_receiver("refusals") as receiver,
    ):
        receiver.receive_messages(max_wait_time=1)
    with (
        pytest.raises(ServiceBusError, match="does not require sessions"),
        client.get_queue_receiver("plain", session_id="s") as receiver,
    ):
        receiver.receive_messages(max_wait_time=1)
    with client.get_queue_receiver("refusals", session_id="s") as receiver:
        assert receiver.peek_messages(max_message_count=5) == []  # the batch left nothing


def test_a_topic_refuses_a_message_without_session_for_a_session_subscription(
    client: ServiceBusClient,
) -> None:
    with client.get_topic_sender("per-order") as sender:
        with pytest.raises(ServiceBusError, match="SessionId was not set"):
            sender.send_messages(ServiceBusMessage("no session"))
        sender.send_messages(ServiceBusMessage("event", session_id="order-1"))
    with client.get_subscription_receiver("per-order", "ordered", session_id="order-1") as rcv:
        (message,) = _receive_all(rcv, 1)
        assert _text(message) == "event"
        rcv.complete_message(message)
    with client.get_subscription_receiver("per-order", "unordered") as receiver:
        assert [_text(m) for m in _receive_all(receiver, 1)] == ["event"]


def test_next_available_takes_a_free_session_and_times_out_when_none_is(
    client: ServiceBusClient,
) -> None:
    _send(client, "next-available", *[ServiceBusMessage(s, session_id=s) for s in ("x", "y")])
    seen = []
    with client.get_queue_receiver(
        "next-available", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=2
    ) as first:
        seen.append(first.session.session_id)
        assert first.session.locked_until_utc is not None
        with client.get_queue_receiver(
            "next-available", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=2
        ) as second:
            seen.append(second.session.session_id)  # not the locked one
            for receiver in (first, second):
                for message in _receive_all(receiver, 1):
                    receiver.complete_message(message)
    assert sorted(seen) == ["x", "y"]
    started = time.monotonic()
    with (
        pytest.raises(OperationTimeoutError),
        client.get_queue_receiver(
            "next-available", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=2
        ) as receiver,
    ):
        receiver.receive_messages(max_wait_time=1)
    assert 1 < time.monotonic() - started < 10


def test_a_session_is_locked_by_one_receiver_at_a_time(client: ServiceBusClient) -> None:
    _send(client, "exclusive", ServiceBusMessage("m", session_id="only"))
    with client.get_queue_receiver("exclusive", session_id="only") as owner:
        with (
            pytest.raises(SessionCannotBeLockedError),
            client.get_queue_receiver("exclusive", session_id="only") as other,
        ):
            other.receive_messages(max_wait_time=1)
        (message,) = _receive_all(owner, 1)
        owner.complete_message(message)
    # Closing the receiver releases the session for the next one.
    with client.get_queue_receiver("exclusive", session_id="only") as receiver:
        assert receiver.receive_messages(max_wait_time=1) == []


def test_the_session_lock_expires_unless_renewed(client: ServiceBusClient) -> None:
    _send(client, "lock-expiry", *[ServiceBusMessage(f"m{n}", session_id="s") for n in range(2)])
    with client.get_queue_receiver("lock-expiry", session_id="s") as receiver:
        first, second = _receive_all(receiver, 2)
        locked_until = receiver.session.locked_until_utc
        assert locked_until is not None
        time.sleep(1.2)
        renewed_until = receiver.session.renew_lock()
        time.sleep(1.2)  # past the original 2 s lock, within the renewed one
        receiver.complete_message(first)
        assert renewed_until > locked_until
        time.sleep(2.5)
        with pytest.raises(SessionLockLostError):
            receiver.complete_message(second)
    with client.get_queue_receiver("lock-expiry", session_id="s") as receiver:
        (again,) = _receive_all(receiver, 1)
        assert (_text(again), again.delivery_count) == ("m1", 1)
        receiver.complete_message(again)


def test_session_state_is_kept_and_listed(client: ServiceBusClient) -> None:
    _send(client, "state", ServiceBusMessage("m", session_id="with-state"))
    with client.get_queue_receiver("state", session_id="with-state") as receiver:
        assert receiver.session.get_state() is None
        receiver.session.set_state("step-1")
        assert receiver.session.get_state() == b"step-1"
        for message in _receive_all(receiver, 1):
            receiver.complete_message(message)
    with client.get_queue_receiver("state", session_id="with-state") as receiver:
        assert receiver.session.get_state() == b"step-1"  # survives the receiver
        receiver.session.set_state(None)
        assert receiver.session.get_state() is None


def test_list_sessions_names_sessions_with_messages_or_state(client: ServiceBusClient) -> None:
    _send(client, "listing", *[ServiceBusMessage("m", session_id=s) for s in ("b", "a", "b")])
    with client.get_queue_receiver("listing", session_id="empty-with-state") as receiver:
        receiver.session.set_state("kept")
    assert sorted(client.list_queue_sessions("listing")) == ["a", "b", "empty-with-state"]
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert list(client.list_queue_sessions("listing", state_updated_after=since)) == [
        "empty-with-state"
    ]
    with pytest.raises(ServiceBusError):
        list(client.list_queue_sessions("plain"))


def test_defer_peek_and_dead_letter_inside_a_session(client: ServiceBusClient) -> None:
    _send(
        client,
        "settle",
        *[ServiceBusMessage(f"s1-{n}", session_id="s1") for n in range(3)],
        ServiceBusMessage("s2-0", session_id="s2"),
    )
    with client.get_queue_receiver("settle", session_id="s1") as receiver:
        assert [_text(m) for m in receiver.peek_messages(max_message_count=10)] == [
            "s1-0",
            "s1-1",
            "s1-2",
        ]
        deferred, dead, done = _receive_all(receiver, 3)
        receiver.defer_message(deferred)
        receiver.dead_letter_message(dead, reason="Bad", error_description="bad data")
        receiver.complete_message(done)
        (back,) = receiver.receive_deferred_messages([deferred.sequence_number])
        assert _text(back) == "s1-0"
        receiver.complete_message(back)
    # The dead-letter queue of a session queue is read without a session.
    with client.get_queue_receiver("settle", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        (message,) = _receive_all(dlq, 1)
        assert (_text(message), message.dead_letter_reason) == ("s1-1", "Bad")
        assert message.dead_letter_source is None
        dlq.complete_message(message)


async def test_async_session_receivers_read_each_session_in_order(
    standin: StandinHandle,
) -> None:
    sessions = [f"order-{n}" for n in range(3)]
    async with AsyncServiceBusClient.from_connection_string(
        standin.connection_string, retry_total=0
    ) as client:
        async with client.get_queue_sender("async-sessions") as sender:
            for step in range(4):
                await sender.send_messages(
                    [ServiceBusMessage(f"{s}:{step}", session_id=s) for s in sessions]
                )
        received: dict[str, list[str]] = {}
        for _ in sessions:
            async with client.get_queue_receiver(
                "async-sessions", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=2
            ) as receiver:
                session_id = receiver.session.session_id
                await receiver.session.set_state(b"open")
                while len(received.setdefault(session_id, [])) < 4:
                    for message in await receiver.receive_messages(
                        max_message_count=4, max_wait_time=1
                    ):
                        received[session_id].append(str(message))
                        await receiver.complete_message(message)
                assert await receiver.session.get_state() == b"open"
    assert received == {s: [f"{s}:{step}" for step in range(4)] for s in sessions}
