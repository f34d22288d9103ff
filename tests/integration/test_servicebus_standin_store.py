"""The stand-in's building blocks without a network: topology, addresses, sections and the store.

Time is a fake clock, so lock expiry, scheduling, duplicate windows and TTL are checked exactly
and without sleeping. The last tests start the broker in-process and as a bad-config CLI run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from proton import Message, symbol, timestamp

from devtools.servicebus.addresses import NodeKind, parse_node_address
from devtools.servicebus.durations import InvalidDuration, format_iso_duration, parse_iso_duration
from devtools.servicebus.sections import (
    MalformedMessage,
    build_message,
    split_message,
    unpack_batch,
)
from devtools.servicebus.store import (
    LockLost,
    MessageNotFound,
    MessageState,
    Namespace,
    ReceivableEntity,
)
from devtools.servicebus.testing import DEFAULT_TOPOLOGY, REPO_ROOT, running_standin
from devtools.servicebus.topology import (
    TopologyError,
    emulator_limit_warnings,
    load_topology,
    parse_topology,
)


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _config(queues: list[dict[str, Any]], topics: list[dict[str, Any]] | None = None) -> Any:
    return parse_topology(
        {
            "UserConfig": {
                "Namespaces": [{"Name": "sbemulatorns", "Queues": queues, "Topics": topics or []}],
                "Logging": {"Type": "Console"},
            }
        }
    )


def _encoded(message_id: str = "m1", body: bytes = b"payload", **fields: Any) -> bytes:
    return bytes(Message(id=message_id, body=body, **fields).encode())


def _namespace(clock: FakeClock, **properties: Any) -> Namespace:
    props = {"LockDuration": "PT30S", "MaxDeliveryCount": 3}
    props.update(properties)
    return Namespace(_config([{"Name": "work", "Properties": props}]), clock)


def _send(namespace: Namespace, raw: bytes, entity: str = "work") -> list[int | None]:
    sequence_numbers, _ = namespace.send_target(entity).accept_encoded(raw)
    return sequence_numbers


def _locked(entity: ReceivableEntity) -> Any:
    message = entity.receive(lock=True)
    assert message is not None and message.lock_token is not None
    return message


# -- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1M", timedelta(minutes=1)),
        ("PT10M", timedelta(minutes=10)),
        ("PT30S", timedelta(seconds=30)),
        ("P14D", timedelta(days=14)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("PT1.5S", timedelta(seconds=1.5)),
        ("P1W", timedelta(days=7)),
        ("pt20s", timedelta(seconds=20)),
    ],
)
def test_iso_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_iso_duration(text) == expected
    assert parse_iso_duration(format_iso_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "1M", "PT-1S", "10 minutes", "00:01:00", "P1H"])
def test_invalid_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidDuration):
        parse_iso_duration(text)


# -- topology -------------------------------------------------------------------------------


def test_product_topology_file_has_the_required_entities() -> None:
    config = load_topology(DEFAULT_TOPOLOGY)
    ns = config.namespace
    queues = {q.name: q.properties for q in ns.queues}
    assert set(queues) == {"inventory-events", "orders", "erp-notifications", "selftest"}
    for name in ("inventory-events", "orders"):
        assert queues[name].max_delivery_count == 10
        assert queues[name].lock_duration == timedelta(minutes=1)
        assert queues[name].requires_duplicate_detection
        assert queues[name].duplicate_detection_history_time_window == timedelta(
            minutes=5
        )  # the emulator schema caps it at PT5M
    assert queues["erp-notifications"].lock_duration == timedelta(minutes=1)
    selftest = queues["selftest"]
    assert (selftest.max_delivery_count, selftest.lock_duration) == (3, timedelta(seconds=30))
    assert selftest.requires_duplicate_detection
    assert selftest.duplicate_detection_history_time_window == timedelta(minutes=1)
    topics = {t.name: [s.name for s in t.subscriptions] for t in ns.topics}
    assert topics == {"order-status": ["storefront"], "stock-alerts": ["storefront"]}
    # The file is also the emulator's: it names the emulator's only namespace.
    assert ns.name == "sbemulatorns"
    assert json.loads(DEFAULT_TOPOLOGY.read_text())["UserConfig"]["Logging"] == {"Type": "Console"}


def test_missing_properties_take_the_emulator_defaults() -> None:
    config = _config([{"Name": "plain"}])
    props = config.namespace.queues[0].properties
    assert props.max_delivery_count == 3
    assert props.lock_duration == timedelta(minutes=1)
    assert props.default_message_time_to_live == timedelta(hours=1)
    assert not props.requires_duplicate_detection


@pytest.mark.parametrize(
    "queues",
    [
        [{"Name": "q", "Properties": {"MaxDeliveryCont": 3}}],  # typo must not fall back silently
        [{"Name": "q", "Properties": {"LockDuration": "1 minute"}}],
        [{"Name": "q", "Properties": {"LockDuration": 60}}],
        [{"Name": "q", "Properties": {"MaxDeliveryCount": 0}}],
        [{"Name": "q"}, {"Name": "Q"}],
        [{"Name": ""}],
    ],
)
def test_invalid_topologies_are_refused(queues: list[dict[str, Any]]) -> None:
    with pytest.raises(TopologyError):
        _config(queues)


def test_emulator_limits_are_reported() -> None:
    compliant = _config([{"Name": "q", "Properties": {"LockDuration": "PT30S"}}])
    assert emulator_limit_warnings(compliant) == []
    too_long = _config(
        [{"Name": "q", "Properties": {"DuplicateDetectionHistoryTimeWindow": "PT10M"}}]
    )
    (warning,) = emulator_limit_warnings(too_long)
    assert "DuplicateDetectionHistoryTimeWindow" in warning


# -- addresses ------------------------------------------------------------------------------


def test_link_addresses_are_classified_case_insensitively() -> None:
    assert parse_node_address("amqps://127.0.0.1:5672/Orders").entity_path == "orders"
    dlq = parse_node_address("amqp://h:1/orders/$DeadLetterQueue")
    assert (dlq.kind, dlq.entity_path, dlq.dead_letter) == (NodeKind.ENTITY, "orders", True)
    mgmt = parse_node_address("order-status/Subscriptions/storefront/$deadletterqueue/$management")
    assert mgmt.kind is NodeKind.MANAGEMENT
    assert mgmt.entity_path == "order-status/subscriptions/storefront"
    assert mgmt.dead_letter
    assert parse_node_address("$cbs").kind is NodeKind.CBS


# -- sections -------------------------------------------------------------------------------


def test_rebuilt_message_keeps_properties_and_body_and_stamps_the_header() -> None:
    raw = _encoded("m-7", b'{"a": 1}', correlation_id="c-1", properties={"kind": "counted"})
    parts = split_message(raw)
    assert parts.message_id == "m-7"
    assert parts.application_properties == {"kind": "counted"}
    rebuilt = build_message(
        parts,
        header=[None, None, None, False, 4],
        annotations={symbol("x-opt-sequence-number"): 12},
        extra_application_properties={"DeadLetterReason": "why"},
    )
    decoded = Message()
    decoded.decode(rebuilt)
    assert bytes(decoded.body) == b'{"a": 1}'
    assert decoded.id == "m-7"
    assert decoded.correlation_id == "c-1"
    assert decoded.delivery_count == 4
    assert decoded.annotations == {"x-opt-sequence-number": 12}
    assert decoded.properties == {"kind": "counted", "DeadLetterReason": "why"}


def test_batch_envelope_is_unpacked_but_a_plain_data_body_is_not() -> None:
    inner = [_encoded(f"b{i}", f"item {i}".encode()) for i in range(3)]
    envelope = Message(id="b0")
    envelope_raw = bytes(envelope.encode())
    batch_raw = envelope_raw + b"".join(
        b"\x00\x53\x75\xb0" + len(m).to_bytes(4, "big") + m for m in inner
    )
    assert unpack_batch(split_message(batch_raw)) == inner
    assert unpack_batch(split_message(_encoded("j", b'{"json": true}'))) is None
    assert unpack_batch(split_message(_encoded("z", b"\x00\x53\x70garbage"))) is None


def test_garbage_is_not_a_message() -> None:
    with pytest.raises(MalformedMessage):
        split_message(b"\x01\x02\x03")
    with pytest.raises(MalformedMessage):
        split_message(_encoded()[:-3])


# -- store semantics ------------------------------------------------------------------------


def test_lock_expiry_redelivers_and_max_delivery_count_dead_letters() -> None:
    clock = FakeClock()
    namespace = _namespace(clock)
    _send(namespace, _encoded("m1"))
    entity = namespace.receivable("work")
    counts = []
    for _ in range(3):
        message = _locked(entity)
        counts.append(message.delivery_count)
        assert entity.receive(lock=True) is None  # locked: invisible to others
        clock.advance(29.9)
        assert entity.is_locked(message.lock_token)
        clock.advance(0.2)
        with pytest.raises(LockLost):
            entity.complete(message.lock_token)
    assert counts == [0, 1, 2]
    assert entity.receive(lock=True) is None
    dlq = namespace.receivable("work", dead_letter=True)
    dead = _locked(dlq)
    assert dead.dead_letter_properties["DeadLetterReason"] == "MaxDeliveryCountExceeded"
    assert dead.delivery_count == 3
    assert dead.dead_letter_source is None  # set only when forwarded out of a DLQ


def test_renew_extends_the_lock_and_fails_once_it_expired() -> None:
    clock = FakeClock()
    namespace = _namespace(clock)
    _send(namespace, _encoded())
    entity = namespace.receivable("work")
    message = _locked(entity)
    clock.advance(20)
    assert entity.renew(message.lock_token) == clock.now + 30
    clock.advance(20)  # past the original expiry, within the renewed one
    assert entity.receive(lock=True) is None
    entity.complete(message.lock_token)
    _send(namespace, _encoded("m2"))
    second = _locked(entity)
    clock.advance(31)
    with pytest.raises(LockLost):
        entity.renew(second.lock_token)


def test_release_does_not_count_a_delivery_but_abandon_does() -> None:
    clock = FakeClock()
    namespace = _namespace(clock)
    _send(namespace, _encoded())
    entity = namespace.receivable("work")
    entity.abandon(_locked(entity).lock_token, failed=False)
    released = _locked(entity)
    assert released.delivery_count == 0
    entity.abandon(released.lock_token)
    assert _locked(entity).delivery_count == 1


def test_duplicate_window_boundary() -> None:
    clock = FakeClock()
    namespace = _namespace(
        clock, RequiresDuplicateDetection=True, DuplicateDetectionHistoryTimeWindow="PT10M"
    )
    assert _send(namespace, _encoded("order-1")) == [1]
    clock.advance(599)
    assert _send(namespace, _encoded("order-1")) == [None]
    assert _send(namespace, _encoded("order-2")) == [2]
    clock.advance(1.5)
    assert _send(namespace, _encoded("order-1")) == [3]
    entity = namespace.receivable("work")
    assert [m.sequence_number for m in entity.peek(0, 10)] == [1, 2, 3]


def test_without_duplicate_detection_every_send_is_kept() -> None:
    namespace = _namespace(FakeClock())
    assert _send(namespace, _encoded("same")) == [1]
    assert _send(namespace, _encoded("same")) == [2]


def test_scheduled_message_becomes_visible_at_its_time() -> None:
    clock = FakeClock()
    namespace = _namespace(clock)
    when = clock.now + 60
    raw = bytes(
        Message(
            id="later",
            body=b"x",
            annotations={symbol("x-opt-scheduled-enqueue-time"): timestamp(int(when * 1000))},
        ).encode()
    )
    _send(namespace, raw)
    entity = namespace.receivable("work")
    (peeked,) = entity.peek(0, 5)
    assert peeked.state(clock.now) is MessageState.SCHEDULED
    clock.advance(59.9)
    assert entity.receive(lock=True) is None
    clock.advance(0.1)
    message = _locked(entity)
    assert message.enqueued_at == when


def test_expired_message_is_dead_lettered_when_configured() -> None:
    clock = FakeClock()
    namespace = _namespace(
        clock,
        DefaultMessageTimeToLive="PT5M",
        DeadLetteringOnMessageExpiration=True,
        LockDuration="PT5M",
    )
    _send(namespace, _encoded("old"))
    _send(namespace, bytes(Message(id="short", body=b"x", ttl=10).encode()))  # 10 s TTL
    clock.advance(11)
    entity = namespace.receivable("work")
    assert _locked(entity).parts.message_id == "old"  # locked until t=311
    dlq = namespace.receivable("work", dead_letter=True)
    reasons = {
        m.parts.message_id: m.dead_letter_properties["DeadLetterReason"] for m in dlq.peek(0, 10)
    }
    assert reasons == {"short": "TTLExpiredException"}
    clock.advance(294)  # t=305: "old" is past its TTL but still locked by its receiver
    assert (entity.counts().active, entity.counts().dead_lettered) == (1, 1)
    clock.advance(7)  # t=312: the lock ended, so now it expires
    assert (entity.counts().active, entity.counts().dead_lettered) == (0, 2)


def test_expired_message_is_dropped_without_dead_lettering() -> None:
    clock = FakeClock()
    namespace = _namespace(clock, DefaultMessageTimeToLive="PT5M")
    _send(namespace, _encoded())
    clock.advance(301)
    assert namespace.receivable("work").receive(lock=True) is None
    assert namespace.receivable("work", dead_letter=True).peek(0, 10) == []


def test_topic_copies_are_independent_per_subscription() -> None:
    clock = FakeClock()
    namespace = Namespace(
        _config(
            [],
            [
                {
                    "Name": "status",
                    "Subscriptions": [
                        {"Name": "a", "Properties": {"MaxDeliveryCount": 1}},
                        {"Name": "b"},
                    ],
                }
            ],
        ),
        clock,
    )
    _send(namespace, _encoded("s1"), entity="status")
    first = namespace.receivable("status/subscriptions/a")
    second = namespace.receivable("Status/Subscriptions/B")
    first.abandon(_locked(first).lock_token)  # MaxDeliveryCount 1: straight to its DLQ
    assert namespace.receivable("status/subscriptions/a", dead_letter=True).counts().active == 1
    copy = _locked(second)
    assert (copy.parts.message_id, copy.delivery_count) == ("s1", 0)
    second.complete(copy.lock_token)
    assert namespace.counts()["status/Subscriptions/a"]["deadLettered"] == 1


def test_deferred_message_only_comes_back_by_sequence_number() -> None:
    clock = FakeClock()
    namespace = _namespace(clock)
    (sequence_number,) = _send(namespace, _encoded("d"))
    assert sequence_number is not None
    entity = namespace.receivable("work")
    entity.defer(_locked(entity).lock_token)
    assert entity.receive(lock=True) is None
    assert entity.counts().deferred == 1
    with pytest.raises(MessageNotFound):
        entity.receive_deferred([sequence_number + 1], lock=True)
    (again,) = entity.receive_deferred([sequence_number], lock=True)
    entity.complete(again.lock_token)
    assert entity.peek(0, 10) == []


# -- the running broker ---------------------------------------------------------------------


def test_in_process_standin_serves_the_product_topology() -> None:
    with (
        running_standin(in_process=True) as standin,
        ServiceBusClient.from_connection_string(standin.connection_string) as client,
    ):
        with client.get_queue_sender("orders") as sender:
            sender.send_messages(ServiceBusMessage('{"orderId": "o-1"}', message_id="o-1"))
            sender.send_messages(ServiceBusMessage('{"orderId": "o-1"}', message_id="o-1"))
        deadline = time.monotonic() + 10
        while standin.stats().get("orders", {}).get("active") != 1:
            assert time.monotonic() < deadline, standin.stats()
            time.sleep(0.05)
        with client.get_queue_receiver("orders") as receiver:
            (message,) = receiver.receive_messages(max_message_count=5, max_wait_time=5)
            assert message.message_id == "o-1"
            receiver.complete_message(message)


def test_cli_refuses_an_invalid_topology(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"UserConfig": {"Namespaces": []}}')
    result = subprocess.run(
        [sys.executable, "-m", "devtools.servicebus", "--port", "0", "--config", str(bad)],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert b"READY" not in result.stdout
    assert b"invalid Service Bus topology" in result.stderr
