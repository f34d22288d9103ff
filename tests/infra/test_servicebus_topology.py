"""One messaging topology for Azure and the local stack: infra/servicebus-topology.json.

The Bicep loads that file with ``loadJsonContent`` (no copy to drift), the local stand-in and
Microsoft's emulator read it as their config, and these tests check that the Bicep maps every
property the file sets, that the functions' triggers name entities it declares, and that the
lock settings agree with host.json.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.servicebus.durations import parse_iso_duration
from devtools.servicebus.topology import emulator_limit_warnings, load_topology
from shared.services.orders.context import ORDERS_MAX_DELIVERY_COUNT
from tests.infra.app_index import all_bindings
from tests.infra.bicep import INFRA, Template, accessor_path, body, loop_source

TOPOLOGY_FILE = INFRA / "servicebus-topology.json"
ENTITY_FILES = ("modules/servicebus.bicep", "modules/servicebus-topic.bicep")
# Service Bus limits (Azure): lock 5 s .. 5 min.
MAX_LOCK = timedelta(minutes=5)
MIN_LOCK = timedelta(seconds=5)


def _namespace(topology: dict[str, Any]) -> dict[str, Any]:
    namespaces = topology["UserConfig"]["Namespaces"]
    assert len(namespaces) == 1, "the Bicep maps Namespaces[0] only"
    namespace: dict[str, Any] = namespaces[0]
    return namespace


def _timespan(text: str) -> timedelta:
    """host.json durations are .NET TimeSpans: [d.]hh:mm:ss."""
    match = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})", text)
    assert match, f"not a TimeSpan: {text!r}"
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _receivers(topology: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    ns = _namespace(topology)
    queues = [(q["Name"], q["Properties"]) for q in ns["Queues"]]
    subscriptions = [
        (f"{t['Name']}/{s['Name']}", s["Properties"])
        for t in ns["Topics"]
        for s in t["Subscriptions"]
    ]
    return queues + subscriptions


@pytest.mark.parametrize("path", ["modules/servicebus.bicep", "modules/access.bicep"])
def test_bicep_loads_the_topology_file_itself(templates: dict[str, Template], path: str) -> None:
    loader = templates[path].variables["topology"]["value"]["function"]
    assert loader["type"] == "load_json_content"
    target = (INFRA / Path(path).parent / loader["parameters"]["file_path"]).resolve()
    assert target == TOPOLOGY_FILE.resolve()
    assert loader["parameters"]["json_path"] == "$.UserConfig.Namespaces[0]"


def test_every_entity_of_the_file_becomes_a_resource(templates: dict[str, Template]) -> None:
    servicebus = templates["modules/servicebus.bicep"]
    queues = servicebus.resources["queues"]["config"]
    assert accessor_path(loop_source(queues)) == ["topology", "Queues"]
    topics = servicebus.modules["topics"]["config"]
    assert accessor_path(loop_source(topics)) == ["topology", "Topics"]
    topic = templates["modules/servicebus-topic.bicep"]
    subscriptions = topic.resources["subscriptions"]["config"]
    assert accessor_path(loop_source(subscriptions)) == ["topic", "Subscriptions"]


def _mapped_properties() -> dict[str, set[str]]:
    """Which emulator properties the Bicep reads, per kind of entity."""
    mapped: dict[str, set[str]] = {"queue": set(), "topic": set(), "subscription": set()}
    for path in ENTITY_FILES:
        text = (INFRA / path).read_text()
        for kind, key in re.findall(r"\b(queue|topic|subscription)\.Properties\.(\w+)", text):
            mapped[kind].add(key)
    return mapped


def test_the_bicep_maps_every_property_the_file_sets(topology: dict[str, Any]) -> None:
    ns = _namespace(topology)
    mapped = _mapped_properties()
    dropped = []
    for queue in ns["Queues"]:
        dropped += [(queue["Name"], k) for k in queue["Properties"] if k not in mapped["queue"]]
    for topic in ns["Topics"]:
        dropped += [(topic["Name"], k) for k in topic["Properties"] if k not in mapped["topic"]]
        for sub in topic["Subscriptions"]:
            where = f"{topic['Name']}/{sub['Name']}"
            dropped += [(where, k) for k in sub["Properties"] if k not in mapped["subscription"]]
            # Filters would need rule resources in servicebus-topic.bicep first.
            assert not sub.get("Rules"), f"{where}: subscription rules are not deployed by Bicep"
    assert dropped == [], "properties the Bicep would silently ignore in Azure"


def test_every_property_the_bicep_reads_is_in_the_file(topology: dict[str, Any]) -> None:
    # The Bicep reads properties without defaults: a missing one fails the deployment.
    ns = _namespace(topology)
    mapped = _mapped_properties()
    for queue in ns["Queues"]:
        assert mapped["queue"] <= set(queue["Properties"]), queue["Name"]
    for topic in ns["Topics"]:
        assert mapped["topic"] <= set(topic["Properties"]), topic["Name"]
        for sub in topic["Subscriptions"]:
            assert mapped["subscription"] <= set(sub["Properties"]), sub["Name"]


def test_the_local_stand_in_and_the_emulator_accept_the_same_file() -> None:
    config = load_topology(TOPOLOGY_FILE)
    assert emulator_limit_warnings(config) == []
    assert {q.name for q in config.namespace.queues} >= {"orders", "inventory-events"}


def test_reliability_properties_of_the_contract(topology: dict[str, Any]) -> None:
    ns = _namespace(topology)
    orders = next(q for q in ns["Queues"] if q["Name"] == "orders")
    # Intake may send the same order twice (client retry); the broker drops the copy.
    assert orders["Properties"]["RequiresDuplicateDetection"] is True
    assert parse_iso_duration(orders["Properties"]["DuplicateDetectionHistoryTimeWindow"]) > (
        timedelta(0)
    )
    for name, props in _receivers(topology):
        assert props["DeadLetteringOnMessageExpiration"] is True, name
        assert 1 <= props["MaxDeliveryCount"] <= 100, name


def test_lock_duration_agrees_with_host_lock_renewal(
    topology: dict[str, Any], host_json: dict[str, Any]
) -> None:
    service_bus = host_json["extensions"]["serviceBus"]
    renewal = _timespan(service_bus["maxAutoLockRenewalDuration"])
    for name, props in _receivers(topology):
        lock = parse_iso_duration(props["LockDuration"])
        assert MIN_LOCK <= lock <= MAX_LOCK, f"{name}: LockDuration outside what Azure allows"
        # The host renews the lock before it expires, up to `renewal`; a renewal window no
        # longer than one lock would never renew, and a handler could lose its message mid-run.
        assert lock < renewal, f"{name}: LockDuration {lock} is not below the renewal {renewal}"


def test_triggers_and_outputs_name_declared_entities(topology: dict[str, Any]) -> None:
    ns = _namespace(topology)
    queues = {q["Name"] for q in ns["Queues"]}
    subscriptions = {(t["Name"], s["Name"]) for t in ns["Topics"] for s in t["Subscriptions"]}
    topics = {t["Name"] for t in ns["Topics"]}
    seen = 0
    for name, binding in all_bindings():
        if binding["type"] not in ("serviceBusTrigger", "serviceBus"):
            continue
        seen += 1
        if "queueName" in binding:
            assert binding["queueName"] in queues, f"{name}: unknown queue {binding['queueName']}"
        elif binding["direction"] == "IN":
            key = (binding["topicName"], binding["subscriptionName"])
            assert key in subscriptions, f"{name}: unknown subscription {key}"
        else:
            assert binding["topicName"] in topics, f"{name}: unknown topic"
    assert seen >= 3


def test_topic_subscription_entities_carry_their_lock_settings(
    templates: dict[str, Template],
) -> None:
    subscription = body(
        templates["modules/servicebus-topic.bicep"].resources["subscriptions"]["config"]
    )
    assert accessor_path(subscription["properties"]["lockDuration"]) == [
        "subscription",
        "Properties",
        "LockDuration",
    ]


def test_azure_gets_a_production_message_time_to_live(templates: dict[str, Template]) -> None:
    # The file holds the emulator's one-hour cap; Azure must not expire waiting orders that fast.
    main = templates["main.bicep"]
    default = main.parameter_default("serviceBusMessageTimeToLive")
    assert parse_iso_duration(default) >= timedelta(days=7)
    for path in ENTITY_FILES:
        text = (INFRA / path).read_text()
        uses = re.findall(r"defaultMessageTimeToLive: (.+)", text)
        assert uses, path
        for use in uses:
            assert use.startswith("empty(messageTimeToLive) ?"), f"{path}: {use}"


def test_booking_gives_up_on_the_delivery_the_orders_queue_dead_letters(
    topology: dict[str, Any],
) -> None:
    """Booking marks an order failed on its last delivery; that is only true if its delivery
    limit is the queue's MaxDeliveryCount (change one, and this fails until both agree)."""
    queues = {q["Name"]: q["Properties"] for q in topology["UserConfig"]["Namespaces"][0]["Queues"]}
    assert queues["orders"]["MaxDeliveryCount"] == ORDERS_MAX_DELIVERY_COUNT
