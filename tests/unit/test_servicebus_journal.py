"""The stand-in's durable store (SQLite journal) without a network: write, "crash", read back.

A crash is simulated by opening a second namespace on the same data directory without closing
the first: whatever was committed must be there, and nothing else. Time is a fake clock.
Lock loss on restart follows Service Bus's rule for an expired lock: "When the lock expires, the
DeliveryCount is incremented and the message is again available for retrieval"
(https://learn.microsoft.com/dotnet/api/azure.messaging.servicebus.servicebusreceivedmessage.lockeduntil).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from proton import Message, timestamp

from devtools.servicebus.journal import DATABASE_NAME, Journal
from devtools.servicebus.sections import encode_parts, split_message
from devtools.servicebus.store import MessageState, Namespace
from devtools.servicebus.topology import parse_topology


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _config() -> Any:
    return parse_topology(
        {
            "UserConfig": {
                "Namespaces": [
                    {
                        "Name": "sbemulatorns",
                        "Queues": [
                            {
                                "Name": "work",
                                "Properties": {
                                    "LockDuration": "PT30S",
                                    "MaxDeliveryCount": 2,
                                    "RequiresDuplicateDetection": True,
                                    "DuplicateDetectionHistoryTimeWindow": "PT1M",
                                },
                            },
                            {"Name": "orders", "Properties": {"RequiresSession": True}},
                        ],
                        "Topics": [
                            {
                                "Name": "events",
                                "Subscriptions": [
                                    {
                                        "Name": "red",
                                        "Rules": [
                                            {
                                                "Name": "tag",
                                                "Properties": {
                                                    "FilterType": "Sql",
                                                    "SqlFilter": {"SqlExpression": "1=1"},
                                                    "Action": {"SqlExpression": "SET seen = 'y'"},
                                                },
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    }
                ]
            }
        }
    )


def _open(data_dir: Path, clock: FakeClock) -> Namespace:
    return Namespace(_config(), clock, journal=Journal(data_dir))


def _send(namespace: Namespace, entity: str, message_id: str, **fields: Any) -> int | None:
    raw = bytes(Message(id=message_id, body=message_id.encode(), **fields).encode())
    (sequence_number,), _ = namespace.send_target(entity).accept_encoded(raw)
    namespace.commit()
    return sequence_number


def test_committed_messages_and_their_state_survive(tmp_path: Path) -> None:
    clock = FakeClock()
    first = _open(tmp_path, clock)
    for n in range(4):
        _send(first, "work", f"m{n}", properties={"n": n})
    work = first.receivable("work")
    completed = work.receive(lock=True)
    locked = work.receive(lock=True)
    deferred = work.receive(lock=True)
    assert completed and locked and deferred
    work.complete(completed.lock_token)  # type: ignore[arg-type]
    work.defer(deferred.lock_token)  # type: ignore[arg-type]
    first.commit()

    second = _open(tmp_path, clock)  # the first one was never closed: a crash
    work = second.receivable("work")
    assert work.counts().as_dict() == {
        "active": 2,
        "locked": 0,
        "scheduled": 0,
        "deferred": 1,
        "deadLettered": 0,
    }
    back = [work.receive(lock=False) for _ in range(2)]
    assert [(m.sequence_number, m.delivery_count) for m in back if m] == [(2, 1), (4, 0)]
    assert back[0] and back[0].parts.application_properties == {"n": 1}
    (again,) = work.receive_deferred([3], lock=False)
    assert again.parts.message_id == "m2"


def test_a_lost_lock_counts_a_delivery_and_can_dead_letter(tmp_path: Path) -> None:
    clock = FakeClock()
    first = _open(tmp_path, clock)
    _send(first, "work", "m0")
    work = first.receivable("work")
    message = work.receive(lock=True)
    assert message is not None
    work.abandon(message.lock_token)  # type: ignore[arg-type]  # delivery count 1
    assert work.receive(lock=True) is not None
    first.commit()

    second = _open(tmp_path, clock)  # MaxDeliveryCount 2: the lost lock is the second failure
    work = second.receivable("work")
    assert work.receive(lock=False) is None
    assert work.dead_letter_queue is not None
    dead = work.dead_letter_queue.receive(lock=False)
    assert dead is not None and dead.delivery_count == 2
    assert dead.dead_letter_properties["DeadLetterReason"] == "MaxDeliveryCountExceeded"


def test_dead_letters_schedules_sessions_and_sequence_numbers_survive(tmp_path: Path) -> None:
    clock = FakeClock()
    first = _open(tmp_path, clock)
    _send(first, "work", "poison")
    work = first.receivable("work")
    poison = work.receive(lock=True)
    assert poison is not None
    work.dead_letter(poison.lock_token, "bad", "why")  # type: ignore[arg-type]
    later = timestamp(int((clock.now + 3600) * 1000))
    raw = bytes(
        Message(id="later", body=b"x", annotations={"x-opt-scheduled-enqueue-time": later}).encode()
    )
    first.send_target("work").accept_encoded(raw)
    _send(first, "orders", "o1", group_id="order-1")
    orders = first.receivable("orders")
    session_owner = uuid.uuid4()
    assert orders.accept_session("order-1", session_owner) is not None
    orders.set_session_state("order-1", b"step-2")
    _send(first, "events", "e1")
    first.commit()

    second = _open(tmp_path, clock)
    work = second.receivable("work")
    assert work.dead_letter_queue is not None
    dead = work.dead_letter_queue.receive(lock=False)
    assert dead is not None and dead.parts.message_id == "poison"
    assert dead.dead_letter_properties == {
        "DeadLetterReason": "bad",
        "DeadLetterErrorDescription": "why",
    }
    (scheduled,) = work.peek(0, 10)
    assert scheduled.parts.message_id == "later"
    assert scheduled.state(clock.now) is MessageState.SCHEDULED
    red = second.receivable("events/Subscriptions/red").receive(lock=False)
    assert red is not None and red.parts.application_properties == {"seen": "y"}
    assert work.receive(lock=False) is None
    clock.now += 3601
    assert work.receive(lock=False) is not None
    orders = second.receivable("orders")
    assert orders.accept_session("order-1", session_owner) is not None  # the lock did not survive
    assert orders.session_state("order-1") == b"step-2"
    assert _send(second, "work", "next") == 3  # poison 1, later 2: never reused


def test_duplicate_detection_history_survives_within_its_window(tmp_path: Path) -> None:
    clock = FakeClock()
    first = _open(tmp_path, clock)
    assert _send(first, "work", "once") == 1
    second = _open(tmp_path, clock)
    assert _send(second, "work", "once") is None
    clock.now += 61
    third = _open(tmp_path, clock)
    assert _send(third, "work", "once") == 2


def test_a_message_is_stored_as_its_sections(tmp_path: Path) -> None:
    raw = bytes(
        Message(
            id="m", body={"k": [1, 2]}, ttl=5, annotations={"x-opt-partition-key": "p"}
        ).encode()
    )
    parts = split_message(raw)
    again = split_message(encode_parts(parts))
    assert again == parts


def test_uncommitted_changes_are_not_stored_and_memory_is_the_default(tmp_path: Path) -> None:
    clock = FakeClock()
    durable = _open(tmp_path, clock)
    durable.send_target("work").accept_encoded(bytes(Message(id="x", body=b"x").encode()))
    assert _open(tmp_path, clock).receivable("work").counts().active == 0

    in_memory = Namespace(_config(), clock)
    assert not in_memory.durable
    _send(in_memory, "work", "y")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in tmp_path.iterdir() if p.name.startswith(DATABASE_NAME)
    )


def test_messages_of_an_entity_that_now_forwards_move_once_on_restart(tmp_path: Path) -> None:
    def config(forward: bool) -> Any:
        inbox: dict[str, Any] = {"Name": "inbox", "Properties": {}}
        if forward:
            inbox["Properties"]["ForwardTo"] = "work"
        return parse_topology(
            {
                "UserConfig": {
                    "Namespaces": [{"Name": "sbemulatorns", "Queues": [{"Name": "work"}, inbox]}]
                }
            }
        )

    clock = FakeClock()
    before = Namespace(config(False), clock, journal=Journal(tmp_path))
    for n in range(2):
        _send(before, "work", f"w{n}")
        _send(before, "inbox", f"i{n}")
    for _ in range(2):  # the second start must not forward them again
        after = Namespace(config(True), clock, journal=Journal(tmp_path))
        work = after.receivable("work")
        assert [m.parts.message_id for m in work.peek(0, 10)] == ["w0", "w1", "i0", "i1"]
        assert [m.sequence_number for m in work.peek(0, 10)] == [1, 2, 3, 4]
