"""The platform end to end: runner, real Service Bus client and stand-in, Azurite.

The self-test probe goes HTTP -> Service Bus -> Service Bus trigger -> table, so each trigger
kind and each settlement path the host promises is exercised through real components.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.stack import ROOT, free_port
from shared.adapters.tables import TableStore
from tests.waiting import eventually

SECRET_MARKERS = ("AccountKey", "SharedAccessKey", "local-admin-key", "local-function-key")


@pytest.fixture(scope="module")
def client(runner_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=runner_url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def bus(servicebus_connection: str) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(servicebus_connection, retry_total=0) as sb:
        yield sb


def _probe(client: httpx.Client, admin: str, fail_deliveries: int = 0) -> str:
    probe_id = f"p-{uuid.uuid4().hex[:12]}"
    response = client.post(
        "/api/ops/selftest",
        json={"probeId": probe_id, "failDeliveries": fail_deliveries},
        headers={"x-functions-key": admin},
    )
    assert response.status_code == 202, response.text
    return probe_id


def _result(client: httpx.Client, admin: str, probe_id: str) -> dict[str, Any] | None:
    response = client.get(f"/api/ops/selftest/{probe_id}", headers={"x-functions-key": admin})
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return dict(response.json())


def _dead_letters(bus: ServiceBusClient, message_id: str) -> list[Any]:
    found = []
    with bus.get_queue_receiver(
        "selftest", sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=1
    ) as receiver:
        for message in receiver.receive_messages(max_message_count=50, max_wait_time=1):
            if message.message_id == message_id:
                found.append(message)
            receiver.complete_message(message)
    return found


def test_health_is_anonymous_and_reports_dependencies_without_secrets(
    client: httpx.Client,
) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["dependencies"]["tables"]["status"] == "ok"
    assert body["dependencies"]["serviceBus"]["status"] == "ok"
    assert not any(marker in response.text for marker in SECRET_MARKERS)
    assert response.headers["x-correlation-id"]


def test_keys_and_routes_are_enforced(client: httpx.Client, app_keys: dict[str, str]) -> None:
    assert client.get("/api/no-such-route").status_code == 404
    assert client.post("/api/ops/selftest", json={"probeId": "x"}).status_code == 401
    wrong = {"x-functions-key": "wrong"}
    assert client.post("/api/ops/selftest", json={"probeId": "x"}, headers=wrong).status_code == 401
    function_key = {"x-functions-key": app_keys["function"]}
    admin_only = client.post("/api/ops/selftest", json={"probeId": "x"}, headers=function_key)
    assert admin_only.status_code == 401


def test_bad_probe_requests_are_problem_documents(
    client: httpx.Client, app_keys: dict[str, str]
) -> None:
    headers = {"x-functions-key": app_keys["admin"]}
    bad_field = client.post("/api/ops/selftest", json={"probeId": "has space"}, headers=headers)
    assert bad_field.status_code == 422
    assert bad_field.headers["content-type"].startswith("application/problem+json")
    assert bad_field.json()["violations"][0]["field"] == "probeId"
    not_json = client.post(
        "/api/ops/selftest",
        content=b"{",
        headers={**headers, "content-type": "application/json"},
    )
    assert not_json.status_code == 400
    wrong_type = client.post(
        "/api/ops/selftest", content=b"probeId=x", headers={**headers, "content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415


HOSTILE_BODIES = {
    "deep-array": (b"[" * 100_000, 400, "JSON nested too deeply"),
    "deep-object": (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, 400, "JSON nested too deeply"),
    "duplicate-key": (b'{"customerId": "C00001", "customerId": "C00002"}', 400, "Duplicate"),
    "not-utf8": (b'{"customerId": "\xff"}', 400, "not UTF-8"),
    "lone-surrogate": (b'{"customerId": "\\ud800"}', 400, "Invalid Unicode"),
    "long-number": (b'{"amount": 1' + b"0" * 60 + b"}", 400, "Number too long"),
}


@pytest.mark.parametrize(
    "route", ["/api/prices/quote", "/api/credit/check", "/api/orders", "/api/erp/notifications"]
)
@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
def test_hostile_json_bodies_get_a_4xx_naming_the_limit_never_a_500(
    client: httpx.Client, app_keys: dict[str, str], route: str, case: str
) -> None:
    body, status, title = HOSTILE_BODIES[case]
    headers = {
        "x-functions-key": app_keys["function"],
        "content-type": "application/json",
        "Idempotency-Key": f"hostile-{uuid.uuid4().hex}",
    }
    answer = client.post(route, content=body, headers=headers)
    assert answer.status_code == status, (route, case, answer.text[:300])
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert title.lower() in (problem["title"] + " " + problem["detail"]).lower(), problem


def _json_routes(client: httpx.Client) -> list[tuple[str, str]]:
    """Every operation of the served OpenAPI document that takes a JSON body."""
    document = client.get("/api/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content and "{" not in path:
                found.append((method.upper(), "/api" + path))
    return sorted(found)


_odd_text = st.text(
    alphabet=st.sampled_from(["\u200f", "\u0301", "\u0000", "\ufeff", "\U0001f600", "a", "'"]),
    max_size=12,
)


@st.composite
def hostile_documents(draw: st.DrawFn) -> bytes:
    """JSON-ish bytes built to hurt: deep nesting, long and tiny numbers, odd Unicode, lone
    surrogates, duplicate keys, truncation."""
    depth = draw(st.sampled_from([1, 5, 31, 33, 200, 5_000]))
    leaf = draw(
        st.sampled_from(
            [
                "1" + "0" * draw(st.integers(0, 80)),
                "-0." + "0" * draw(st.integers(0, 60)) + "1",
                "1e999999",
                json.dumps(draw(_odd_text)),
                '"\\ud83d"',
                '{"customerId": "C00001", "customerId": "C00002"}',
                "NaN",
            ]
        )
    )
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    text = opener * depth + leaf + closer * depth
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8", "surrogatepass")


def test_generated_hostile_bodies_never_get_a_5xx_on_any_json_route(
    client: httpx.Client, app_keys: dict[str, str]
) -> None:
    """Property over every JSON route the app serves: a 4xx problem document, never a 5xx."""
    routes = _json_routes(client)
    assert ("POST", "/api/orders") in routes and len(routes) >= 5

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(route=st.sampled_from(routes), body=hostile_documents())
    def never_a_server_error(route: tuple[str, str], body: bytes) -> None:
        method, path = route
        answer = client.request(
            method,
            path,
            content=body,
            headers={
                "x-functions-key": app_keys["admin"],
                "content-type": "application/json",
                "Idempotency-Key": f"fuzz-{uuid.uuid4().hex}",
            },
        )
        assert answer.status_code < 500, (route, body[:120], answer.text[:300])
        if answer.status_code >= 400:
            assert answer.headers["content-type"].startswith("application/problem+json")

    never_a_server_error()


def test_probe_flows_from_http_through_the_bus_into_a_table(
    client: httpx.Client, app_keys: dict[str, str]
) -> None:
    correlation_id = f"corr-{uuid.uuid4().hex[:8]}"
    probe_id = f"p-{uuid.uuid4().hex[:12]}"
    response = client.post(
        "/api/ops/selftest",
        json={"probeId": probe_id},
        headers={"x-functions-key": app_keys["admin"], "x-correlation-id": correlation_id},
    )
    assert response.status_code == 202
    assert response.headers["x-correlation-id"] == correlation_id
    result = eventually(lambda: _result(client, app_keys["admin"], probe_id))
    assert result["deliveryCount"] == 1
    assert result["correlationId"] == correlation_id


def test_a_failed_first_delivery_is_redelivered_with_count_two(
    client: httpx.Client, app_keys: dict[str, str]
) -> None:
    probe_id = _probe(client, app_keys["admin"], fail_deliveries=1)
    result = eventually(lambda: _result(client, app_keys["admin"], probe_id))
    assert result["deliveryCount"] == 2


def test_a_duplicate_message_leaves_exactly_one_entity(
    client: httpx.Client,
    app_keys: dict[str, str],
    bus: ServiceBusClient,
    azurite_connection: str,
) -> None:
    probe_id = _probe(client, app_keys["admin"])
    eventually(lambda: _result(client, app_keys["admin"], probe_id))
    # The same probe again under another MessageId: duplicate detection cannot catch it, so
    # only the handler's idempotency stands between it and a second entity.
    body = {"probeId": probe_id, "failDeliveries": 0, "sentAt": "2026-01-01T00:00:00Z"}
    with bus.get_queue_sender("selftest") as sender:
        sender.send_messages(ServiceBusMessage(json.dumps(body), message_id=str(uuid.uuid4())))
    eventually(lambda: not _active_messages(bus))

    async def rows(store: TableStore) -> int:
        return len([r async for r in store.partition("SelfTestProbes", probe_id)])

    assert _with_store(azurite_connection, rows) == 1
    assert _result(client, app_keys["admin"], probe_id)["deliveryCount"] == 1  # type: ignore[index]


def _with_store(connection: str, read: Callable[[TableStore], Any]) -> Any:
    """Run an async read against the runner's tables (prefix ``e2e``) from a sync test."""

    async def run() -> Any:
        store = TableStore.from_connection_string(connection, prefix="e2e")
        try:
            return await read(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _active_messages(bus: ServiceBusClient) -> int:
    with bus.get_queue_receiver("selftest") as receiver:
        return len(receiver.peek_messages(max_message_count=10))


def test_a_message_that_always_fails_ends_in_the_dead_letter_queue(
    client: httpx.Client, app_keys: dict[str, str], bus: ServiceBusClient
) -> None:
    probe_id = _probe(client, app_keys["admin"], fail_deliveries=100)
    dead = eventually(lambda: _dead_letters(bus, probe_id), timeout=30)
    assert dead[0].dead_letter_reason == "MaxDeliveryCountExceeded"
    assert _result(client, app_keys["admin"], probe_id) is None


def test_a_malformed_message_is_dead_lettered_at_once_with_its_reason(
    bus: ServiceBusClient, runner_url: str
) -> None:
    message_id = str(uuid.uuid4())
    with bus.get_queue_sender("selftest") as sender:
        sender.send_messages(ServiceBusMessage(b'{"probeId": 42}', message_id=message_id))
    dead = eventually(lambda: _dead_letters(bus, message_id), timeout=20)
    assert dead[0].dead_letter_reason == "InvalidMessage"
    assert "probeId" in (dead[0].dead_letter_error_description or "")
    assert dead[0].delivery_count <= 1


def test_a_timer_runs_on_demand_through_the_admin_route(
    client: httpx.Client, app_keys: dict[str, str], azurite_connection: str
) -> None:
    async def last_run(store: TableStore) -> Any:
        row = await store.get("Heartbeats", "timer", "heartbeat")
        return None if row is None else row.entity["lastRunAt"]

    before = _with_store(azurite_connection, last_run)
    response = client.post(
        "/admin/functions/heartbeat",
        json={"input": ""},
        headers={"x-functions-key": app_keys["admin"]},
    )
    assert response.status_code == 202
    eventually(lambda: _with_store(azurite_connection, last_run) not in (None, before))
    listing = client.get("/admin/functions", headers={"x-functions-key": app_keys["admin"]})
    assert listing.status_code == 200
    assert "heartbeat" in listing.text and "selftest_consume" in listing.text


def test_a_malformed_setting_stops_start_up_naming_it() -> None:
    env = {**os.environ, "ERP_BASE_URL": "not-a-url"}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.runner",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert "ERP_BASE_URL" in completed.stdout + completed.stderr


def test_make_run_warm_up_starts_the_demo_data_timers(
    local_stack: Any, runner_url: str, app_keys: dict[str, str]
) -> None:
    since = datetime.now(UTC).isoformat()
    started = local_stack.warm_up()
    assert started == [
        "price_publish_full",
        "stock_reconcile",
        "content_sync_full",
        "erp_subscriptions",
    ]

    # They run in the background: wait for each to end, so no later test of the shared stack
    # counts ERP requests while a warm-up run is still reading.
    def ended() -> bool:
        overview = httpx.get(
            f"{runner_url}/api/ops/overview",
            headers={"x-functions-key": app_keys["admin"]},
            timeout=10,
        ).json()
        runs = {timer["name"]: timer.get("lastRun") for timer in overview["timers"]}
        return all(
            (run := runs.get(name) or {}).get("endedAt")
            and datetime.fromisoformat(run["startedAt"]) >= datetime.fromisoformat(since)
            for name in started
        )

    eventually(ended, 120)


# Messages no handler can ever act on, beside the generated hostile documents: valid JSON of
# the wrong shape, an order that does not exist, a notification for a resource nobody watches.
WRONG_SHAPES = {
    "orders": [
        b"[]",
        b'"ORD"',
        b'{"orderId": 42}',
        b'{"orderId": "ORD-01J0000000000000000000000"}',
    ],
    "erp-notifications": [
        b"{}",
        b'{"subscriptionId": "s", "resource": "x", "changeType": "exploded",'
        b' "lastModifiedDateTime": "2026-01-01T00:00:00Z"}',
        b'{"subscriptionId": "", "resource": "", "changeType": "updated"}',
    ],
}
# What these handlers may write: none of it may change for a message that is refused.
# (Stock positions are left out: the shared stack's timers and warm-up runs write them.)
HANDLER_TABLES = ["Orders", "OrderOutbox", "OrderIdempotency", "CreditHolds"]


def _dead_lettered(bus: ServiceBusClient, queue: str, wanted: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with bus.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver:
        for message in receiver.receive_messages(max_message_count=100, max_wait_time=1):
            if message.message_id in wanted:
                found[str(message.message_id)] = message
            receiver.complete_message(message)
    return found


def _wait_until_dead_lettered(
    bus: ServiceBusClient, queue: str, wanted: set[str]
) -> dict[str, Any]:
    dead: dict[str, Any] = {}

    def every_one() -> bool:
        dead.update(_dead_lettered(bus, queue, wanted - set(dead)))
        return len(dead) == len(wanted)

    eventually(every_one, timeout=60)
    return dead


def _rows_per_table(connection: str) -> dict[str, int]:
    async def count(store: TableStore) -> dict[str, int]:
        return {table: len([r async for r in store.all_rows(table)]) for table in HANDLER_TABLES}

    return dict(_with_store(connection, count))


def test_hostile_messages_on_orders_and_erp_notifications_are_dead_lettered_at_once(
    bus: ServiceBusClient, runner_url: str, azurite_connection: str
) -> None:
    """Through the worker runtime: each refused at its first delivery with a reason and a
    description, never retried into MaxDeliveryCountExceeded, and no table changed."""
    before = _rows_per_table(azurite_connection)

    @settings(max_examples=2, deadline=None, derandomize=True)
    @given(bodies=st.lists(hostile_documents(), min_size=6, max_size=6))
    def refused_at_once(bodies: list[bytes]) -> None:
        for queue, shapes in WRONG_SHAPES.items():
            sent = {f"hostile-{uuid.uuid4().hex}": body for body in [*bodies, *shapes]}
            with bus.get_queue_sender(queue) as sender:
                sender.send_messages(
                    [ServiceBusMessage(body, message_id=mid) for mid, body in sent.items()]
                )
            dead = _wait_until_dead_lettered(bus, queue, set(sent))
            for mid, message in dead.items():
                what = (queue, sent[mid][:80])
                assert message.delivery_count <= 1, what
                assert message.dead_letter_reason not in (None, "", "MaxDeliveryCountExceeded"), (
                    what
                )
                assert message.dead_letter_error_description, what

    refused_at_once()
    assert _rows_per_table(azurite_connection) == before
