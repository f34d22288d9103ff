"""Subscription rules on the stand-in with the real client: SQL filters, actions, correlation.

The first test is Microsoft's ``topic_subscription_with_rule_operations`` sample (which creates
its rules through the ATOM management API, Azure-only) replayed with the same four rules
defined in the topology, the same nine messages and the counts the sample says to expect.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusReceivedMessage

from devtools.servicebus import TopologyError, parse_topology
from devtools.servicebus.testing import REPO_ROOT, StandinHandle, running_standin


def _sql_rule(name: str, expression: str, action: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"FilterType": "Sql", "SqlFilter": {"SqlExpression": expression}}
    if action is not None:
        properties["Action"] = {"SqlExpression": action}
    return {"Name": name, "Properties": properties}


def _subscription(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"Name": name, "Properties": {"MaxDeliveryCount": 10}, "Rules": list(rules)}


def _topology(*topics: dict[str, Any]) -> dict[str, Any]:
    return {"UserConfig": {"Namespaces": [{"Name": "sbemulatorns", "Topics": list(topics)}]}}


TOPOLOGY = _topology(
    {
        "Name": "colors",
        "Subscriptions": [
            _subscription("sb-allmsgs-sub", _sql_rule("$Default", "1=1")),
            _subscription("sb-sqlfilteronly-sub", _sql_rule("RedSqlRule", "Color = 'Red'")),
            _subscription(
                "sb-sqlfilteraction-sub",
                _sql_rule("BlueSqlRule", "Color = 'Blue'", "SET Color = 'BlueProcessed'"),
            ),
            _subscription(
                "sb-corrfiltersub",
                {
                    "Name": "ImportantCorrelationRule",
                    "Properties": {
                        "FilterType": "Correlation",
                        "CorrelationFilter": {"CorrelationId": "important", "Label": "Red"},
                    },
                },
            ),
        ],
    },
    {
        "Name": "orders",
        "Subscriptions": [
            _subscription(
                "big-eu",
                _sql_rule(
                    "big",
                    "sys.Label LIKE 'order!_%' ESCAPE '!' AND user.total >= 1000 "
                    "AND region IN ('DE', 'FR') AND NOT EXISTS(test)",
                    "SET sys.Label = 'big-' + region; SET routed = TRUE; REMOVE internal",
                ),
            ),
            _subscription("no-region", _sql_rule("missing", "region IS NULL")),
            _subscription("everything-else", _sql_rule("rest", "NOT (region = 'DE')")),
        ],
    },
)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    with running_standin(TOPOLOGY) as handle:
        yield handle


@pytest.fixture
def client(standin: StandinHandle) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(standin.connection_string) as sb_client:
        yield sb_client


def _drain(
    client: ServiceBusClient, topic: str, subscription: str
) -> list[ServiceBusReceivedMessage]:
    got: list[ServiceBusReceivedMessage] = []
    with client.get_subscription_receiver(topic, subscription) as receiver:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            batch = receiver.receive_messages(max_message_count=20, max_wait_time=0.5)
            if not batch and got:
                break
            for message in batch:
                receiver.complete_message(message)
            got += batch
    return got


def _color(message: ServiceBusReceivedMessage) -> str:
    return message.application_properties[b"Color"].decode()


def test_the_rule_operations_sample_gets_the_counts_it_expects(client: ServiceBusClient) -> None:
    with client.get_topic_sender("colors") as sender:
        sender.send_messages(
            [
                ServiceBusMessage(
                    "Rule with filter sample",
                    application_properties={"Color": label},
                    subject=label,
                    correlation_id=correlation_id,
                )
                for label, correlation_id in [
                    ("Red", None),
                    ("Blue", None),
                    ("Red", "important"),
                    ("Blue", "important"),
                    ("Red", "notimportant"),
                    ("Blue", "notimportant"),
                    ("Green", None),
                    ("Green", "important"),
                    ("Green", "notimportant"),
                ]
            ]
        )

    everything = _drain(client, "colors", "sb-allmsgs-sub")
    red = _drain(client, "colors", "sb-sqlfilteronly-sub")
    blue = _drain(client, "colors", "sb-sqlfilteraction-sub")
    correlated = _drain(client, "colors", "sb-corrfiltersub")

    assert len(everything) == 9
    assert sorted(_color(m) for m in everything) == ["Blue"] * 3 + ["Green"] * 3 + ["Red"] * 3
    assert [_color(m) for m in red] == ["Red"] * 3
    assert [_color(m) for m in blue] == ["BlueProcessed"] * 3  # the action ran on this copy
    assert [(m.subject, m.correlation_id) for m in blue] == [
        ("Blue", None),
        ("Blue", "important"),
        ("Blue", "notimportant"),
    ]
    assert [(_color(m), m.correlation_id) for m in correlated] == [("Red", "important")]


def test_sql_filters_read_system_and_user_properties_and_actions_change_both(
    client: ServiceBusClient,
) -> None:
    def order(label: str, **properties: Any) -> ServiceBusMessage:
        return ServiceBusMessage("{}", subject=label, application_properties=properties)

    with client.get_topic_sender("orders") as sender:
        sender.send_messages(
            [
                order("order_1", total=1500, region="DE", internal="x"),  # big-eu, not rest
                order("order_2", total=999.5, region="FR"),  # too small: rest only
                order("orderX3", total=5000, region="FR"),  # label not order_: rest only
                order("order_4", total=5000, region="DE", test=True),  # test: none at all
                order("order_5", total=5000),  # no region: no-region only (rest is unknown)
            ]
        )

    big = _drain(client, "orders", "big-eu")
    no_region = _drain(client, "orders", "no-region")
    rest = _drain(client, "orders", "everything-else")

    assert [m.subject for m in big] == ["big-DE"]
    assert big[0].application_properties == {b"total": 1500, b"region": b"DE", b"routed": True}
    assert [m.subject for m in no_region] == ["order_5"]
    assert [m.subject for m in rest] == ["order_2", "orderX3"]
    assert rest[0].application_properties[b"total"] == 999.5  # other copies are untouched


def test_a_bad_sql_expression_is_reported_when_the_topology_loads() -> None:
    bad = _topology(
        {"Name": "t", "Subscriptions": [_subscription("s", _sql_rule("r", "Color = 'Red"))]}
    )
    with pytest.raises(TopologyError, match="unterminated"):
        parse_topology(bad)
    unsupported = _topology(
        {
            "Name": "t",
            "Subscriptions": [_subscription("s", _sql_rule("r", "1=1", "REMOVE sys.Label"))],
        }
    )
    with pytest.raises(TopologyError, match="cannot be removed"):
        parse_topology(unsupported)


def test_the_standin_refuses_to_start_on_a_bad_expression(tmp_path: Path) -> None:
    config = tmp_path / "topology.json"
    config.write_text(
        '{"UserConfig": {"Namespaces": [{"Name": "sbemulatorns", "Topics": [{"Name": "t", '
        '"Subscriptions": [{"Name": "s", "Rules": [{"Name": "r", "Properties": '
        '{"FilterType": "Sql", "SqlFilter": {"SqlExpression": "sys.Nope = 1"}}}]}]}]}]}}',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "devtools.servicebus", "--port", "0", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "sys.Nope" in result.stderr
    assert "READY" not in result.stdout
