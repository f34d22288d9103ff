"""Service Bus triggers and output bindings of the runner against the local stand-in.

The stand-in runs once for this module with its own topology (short max delivery count,
one queue per scenario); each test starts a runner in-process with only the functions it
exercises enabled, so a leftover message of one test never reaches another's function.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

standin_testing = pytest.importorskip(
    "devtools.servicebus.testing",
    reason="the Service Bus stand-in (devtools/servicebus) is missing",
)

from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue  # noqa: E402
from azure.servicebus.aio import ServiceBusClient  # noqa: E402

from devtools.runner import Runner, RunnerOptions  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "runner_apps"
ADMIN_KEY = "sb-test-admin-key"
MAX_DELIVERY_COUNT = 3
SB_FUNCTIONS = (
    "on_order",
    "relay",
    "batch",
    "parallel",
    "on_event",
    "slow",
    "enqueue",
    "settle",
    "sdk_batch",
)


def _queue(name: str, **properties: Any) -> dict[str, Any]:
    defaults = {"MaxDeliveryCount": MAX_DELIVERY_COUNT, "LockDuration": "PT30S"}
    return {"Name": name, "Properties": {**defaults, **properties}}


TOPOLOGY: dict[str, Any] = {
    "UserConfig": {
        "Namespaces": [
            {
                "Name": "sbemulatorns",
                "Queues": [
                    _queue("runner-orders"),
                    _queue("runner-relay-in"),
                    _queue("runner-relay-out"),
                    _queue("runner-http-out"),
                    _queue("runner-batch"),
                    _queue("runner-parallel"),
                    _queue("runner-slow", LockDuration="PT5S"),
                    _queue("runner-settle"),
                    _queue("runner-sdk-batch"),
                ],
                "Topics": [
                    {
                        "Name": "runner-events",
                        "Subscriptions": [
                            {"Name": "runner-sub", "Properties": {"MaxDeliveryCount": 3}}
                        ],
                    },
                    {"Name": "runner-notes", "Subscriptions": [{"Name": "all"}]},
                ],
            }
        ]
    }
}


@pytest.fixture(scope="module")
def bus() -> Iterator[Any]:
    with standin_testing.running_standin(TOPOLOGY) as handle:
        yield handle


@pytest.fixture
def sb_env(bus: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ServiceBusConnection", bus.connection_string)
    monkeypatch.setenv("RUNNER_T_ORDERS_QUEUE", "runner-orders")
    monkeypatch.setenv("LOCAL_FUNCTION_KEY", "sb-test-function-key")
    monkeypatch.setenv("LOCAL_ADMIN_KEY", ADMIN_KEY)
    return str(bus.connection_string)


@asynccontextmanager
async def serving(
    monkeypatch: pytest.MonkeyPatch, *enabled: str, host_json: Path | None = None
) -> AsyncIterator[Runner]:
    """A runner for runner_sb_app with only `enabled` functions switched on."""
    for name in SB_FUNCTIONS:
        if name not in enabled:
            monkeypatch.setenv(f"AzureWebJobs.{name}.Disabled", "true")
    options = RunnerOptions(
        app="runner_sb_app:app",
        port=0,
        app_dir=APPS,
        use_settings_file=False,
        host_json_path=host_json,
        shutdown_grace=5.0,
        servicebus_poll_seconds=0.5,
    )
    async with Runner(options) as runner:
        yield runner


@pytest.fixture
async def client(sb_env: str) -> AsyncIterator[ServiceBusClient]:
    async with ServiceBusClient.from_connection_string(sb_env, retry_total=0) as sb_client:
        yield sb_client


async def send(client: ServiceBusClient, queue: str, *messages: ServiceBusMessage) -> None:
    async with client.get_queue_sender(queue) as sender:
        await sender.send_messages(list(messages))


async def receive_bodies(
    client: ServiceBusClient,
    entity: str,
    until: Callable[[list[str]], bool],
    *,
    subscription: str | None = None,
    timeout: float = 10,
) -> list[str]:
    """Receive (and complete) from a queue or subscription until `until(bodies)` holds."""
    bodies: list[str] = []
    deadline = time.monotonic() + timeout
    receiver_of = (
        client.get_queue_receiver(entity)
        if subscription is None
        else client.get_subscription_receiver(entity, subscription)
    )
    async with receiver_of as receiver:
        while not until(bodies) and time.monotonic() < deadline:
            for message in await receiver.receive_messages(10, max_wait_time=1):
                bodies.append(b"".join(message.body).decode())
                await receiver.complete_message(message)
    return bodies


async def dead_letters(client: ServiceBusClient, queue: str, message_id: str) -> list[Any]:
    """The dead-lettered copies of one message (completed, so later tests see a clean DLQ)."""
    found: list[Any] = []
    deadline = time.monotonic() + 10
    async with client.get_queue_receiver(
        queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER
    ) as receiver:
        while not found and time.monotonic() < deadline:
            for message in await receiver.receive_messages(20, max_wait_time=1):
                await receiver.complete_message(message)
                if message.message_id == message_id:
                    found.append(message)
    return found


async def wait_settled(bus: Any, entity: str, timeout: float = 10) -> dict[str, int]:
    """Poll the stand-in's counts until the entity holds no active or locked message."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        stats = {name.lower(): value for name, value in bus.stats().items()}
        counts = stats.get(entity.lower(), {})
        if counts and counts["active"] == 0 and counts["locked"] == 0:
            return counts
        await asyncio.sleep(0.2)
    return counts


def _of(message_id: str) -> Callable[[Any], bool]:
    return lambda record: message_id in record.reason


# -- completion, retries, dead-lettering ---------------------------------------------------


async def test_message_is_completed_after_success_with_its_properties(
    bus: Any, client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_id = uuid.uuid4().hex
    sent = ServiceBusMessage(
        json.dumps({"orderId": "o-1"}),
        message_id=message_id,
        correlation_id="corr-1",
        content_type="application/json",
        application_properties={"attempt": "1", "source": "test"},
    )
    async with serving(monkeypatch, "on_order") as runner:
        await send(client, "runner-orders", sent)
        runs = await runner.wait_for_invocations("on_order", 1, where=_of(message_id))
        counts = await wait_settled(bus, "runner-orders")
        module = runner.module
    assert runs[0].succeeded
    assert counts["active"] == 0 and counts["deadLettered"] == 0
    assert module is not None
    received = [m for m in module.seen if m.message_id == message_id]
    assert len(received) == 1
    message = received[0]
    assert json.loads(message.get_body()) == {"orderId": "o-1"}
    assert message.delivery_count == 1
    assert message.correlation_id == "corr-1"
    assert message.content_type == "application/json"
    assert message.application_properties == {"attempt": "1", "source": "test"}
    assert message.user_properties == {"attempt": "1", "source": "test"}
    assert message.sequence_number is not None
    assert message.lock_token
    assert message.enqueued_time_utc is not None and message.enqueued_time_utc.tzinfo is not None
    assert message.enqueued_time_utc <= datetime.now(UTC)


async def test_exception_abandons_and_message_comes_back_with_delivery_count_2(
    bus: Any, client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_id = uuid.uuid4().hex
    async with serving(monkeypatch, "on_order") as runner:
        await send(client, "runner-orders", ServiceBusMessage("fail-once", message_id=message_id))
        runs = await runner.wait_for_invocations("on_order", 2, where=_of(message_id))
        counts = await wait_settled(bus, "runner-orders")
        module = runner.module
    assert [r.succeeded for r in runs] == [False, True]
    assert module is not None
    assert [d[1] for d in module.deliveries if d[0] == message_id] == [1, 2]
    assert counts["active"] == 0


async def test_always_failing_message_is_dead_lettered_after_max_delivery_count(
    client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_id = uuid.uuid4().hex
    async with serving(monkeypatch, "on_order") as runner:
        await send(client, "runner-orders", ServiceBusMessage("always-fail", message_id=message_id))
        runs = await runner.wait_for_invocations(
            "on_order", MAX_DELIVERY_COUNT, where=_of(message_id)
        )
        dead = await dead_letters(client, "runner-orders", message_id)
        module = runner.module
    assert not any(r.succeeded for r in runs)
    assert module is not None
    counts = [d[1] for d in module.deliveries if d[0] == message_id]
    assert counts == list(range(1, MAX_DELIVERY_COUNT + 1))
    assert len(dead) == 1
    assert dead[0].dead_letter_reason == "MaxDeliveryCountExceeded"


async def test_an_exception_named_dead_letter_is_only_an_exception_to_the_host(
    client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The host has no dead-letter convention: the message is abandoned, redelivered until
    # MaxDeliveryCount, then dead-lettered by the broker.
    message_id = uuid.uuid4().hex
    async with serving(monkeypatch, "on_order") as runner:
        await send(client, "runner-orders", ServiceBusMessage("bad-order", message_id=message_id))
        await runner.wait_for_invocations("on_order", MAX_DELIVERY_COUNT, where=_of(message_id))
        dead = await dead_letters(client, "runner-orders", message_id)
        module = runner.module
    assert module is not None
    counts = [d[1] for d in module.deliveries if d[0] == message_id]
    assert counts == list(range(1, MAX_DELIVERY_COUNT + 1))
    assert [m.dead_letter_reason for m in dead] == ["MaxDeliveryCountExceeded"]


# -- SDK-type bindings: the function settles through ServiceBusMessageActions ---------------


async def test_sdk_type_function_dead_letters_at_once_with_its_reason(
    bus: Any, client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_id, good_id = uuid.uuid4().hex, uuid.uuid4().hex
    async with serving(monkeypatch, "settle") as runner:
        await send(
            client,
            "runner-settle",
            ServiceBusMessage("bad-order", message_id=bad_id),
            ServiceBusMessage("fine", message_id=good_id),
        )
        runs = await runner.wait_for_invocations("settle", 2)
        dead = await dead_letters(client, "runner-settle", bad_id)
        counts = await wait_settled(bus, "runner-settle")
        module = runner.module
    assert all(r.succeeded for r in runs)
    assert module is not None
    assert sorted((d[0], d[1]) for d in module.settled) == sorted([(bad_id, 1), (good_id, 1)])
    assert len(dead) == 1
    assert dead[0].dead_letter_reason == "BadOrder"
    assert dead[0].dead_letter_error_description == "the order has no lines"
    assert counts["active"] == 0 and counts["deadLettered"] == 0


async def test_sdk_type_function_exception_abandons_even_without_auto_complete(
    bus: Any, client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_id = uuid.uuid4().hex
    async with serving(monkeypatch, "settle") as runner:
        await send(client, "runner-settle", ServiceBusMessage("fail-once", message_id=message_id))
        runs = await runner.wait_for_invocations("settle", 2, where=_of(message_id))
        counts = await wait_settled(bus, "runner-settle")
        module = runner.module
    assert [r.succeeded for r in runs] == [False, True]
    assert module is not None
    assert [d[1] for d in module.settled if d[0] == message_id] == [1, 2]
    assert counts["active"] == 0


async def test_sdk_type_batch_dead_letters_the_poison_and_completes_its_batch_mates(
    bus: Any, client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison_id = uuid.uuid4().hex
    fine = [f"fine-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    await send(
        client,
        "runner-sdk-batch",
        ServiceBusMessage("poison:1", message_id=poison_id),
        *(ServiceBusMessage(body) for body in fine),
    )
    async with serving(monkeypatch, "sdk_batch") as runner:
        runs = await runner.wait_for_invocations("sdk_batch", 1, timeout=15)
        dead = await dead_letters(client, "runner-sdk-batch", poison_id)
        counts = await wait_settled(bus, "runner-sdk-batch")
        module = runner.module
    assert runs[0].succeeded
    assert module is not None
    assert sorted(module.sdk_batches[0]) == sorted(["poison:1", *fine])
    assert len(module.sdk_batches) == 1, "nothing came back"
    assert [m.dead_letter_reason for m in dead] == ["PoisonEvent"]
    assert counts["active"] == 0 and counts["deadLettered"] == 0


async def test_settling_a_message_twice_fails_the_second_call_instead_of_hanging(
    sb_env: str,
) -> None:
    from azurefunctions.extensions.bindings.servicebus import ServiceBusMessageActions

    from devtools.runner.settlement import SettlementService

    SettlementService.get()

    class _Unknown:
        lock_token = uuid.uuid4()

    started = time.monotonic()
    with pytest.raises(Exception, match="not held by this host"):
        await asyncio.to_thread(ServiceBusMessageActions.get_instance().complete, _Unknown())
    assert time.monotonic() - started < 5


# -- output bindings -----------------------------------------------------------------------


async def test_outputs_are_sent_only_after_the_function_succeeds(
    client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing, working = f"fail-{uuid.uuid4().hex}", f"ok-{uuid.uuid4().hex}"
    async with serving(monkeypatch, "relay") as runner:
        await send(client, "runner-relay-in", ServiceBusMessage(failing))
        # Every delivery of the failing message runs (and fails) before the good one is sent.
        await runner.wait_for_invocations("relay", MAX_DELIVERY_COUNT, timeout=15)
        await send(client, "runner-relay-in", ServiceBusMessage(working))
        await runner.wait_for_invocations("relay", MAX_DELIVERY_COUNT + 1, timeout=15)
        relayed = await receive_bodies(
            client, "runner-relay-out", until=lambda got: f"relayed:{working}" in got
        )
        notes = await receive_bodies(
            client, "runner-notes", subscription="all", until=lambda got: f"note:{working}" in got
        )
    # The queue is FIFO: an output of a failed run would have arrived before this one.
    assert relayed == [f"relayed:{working}"]
    assert notes == [f"note:{working}"]


async def test_http_function_output_is_sent_only_when_it_succeeds(
    client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing, working = f"no-{uuid.uuid4().hex}", f"yes-{uuid.uuid4().hex}"
    async with serving(monkeypatch, "enqueue") as runner:
        async with httpx.AsyncClient(base_url=runner.url) as http:
            failed = await http.post("/api/enqueue/fail", content=failing)
            queued = await http.post("/api/enqueue/ok", content=working)
        delivered = await receive_bodies(client, "runner-http-out", until=lambda got: bool(got))
    assert failed.status_code == 500
    assert queued.status_code == 202 and queued.text == "queued"
    assert delivered == [working]


# -- batches, concurrency, topics, locks -----------------------------------------------------


async def test_batch_function_receives_several_messages_per_invocation(
    bus: Any, client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = [f"b{i}-{uuid.uuid4().hex[:6]}" for i in range(5)]
    # Queued before the runner starts, so all of them are waiting when it first receives.
    await send(client, "runner-batch", *(ServiceBusMessage(b) for b in bodies))
    async with serving(monkeypatch, "batch") as runner:
        deadline = time.monotonic() + 15
        module = runner.module
        assert module is not None
        while sum(len(b) for b in module.batches) < len(bodies) and time.monotonic() < deadline:
            await runner.wait_for_invocations("batch", len(module.batches) + 1, timeout=5)
        counts = await wait_settled(bus, "runner-batch")
    received = [body for batch in module.batches for body in batch]
    assert sorted(received) == sorted(bodies)
    assert max(len(batch) for batch in module.batches) > 1
    assert len(module.batches) < len(bodies)
    assert counts["active"] == 0


async def test_exception_in_a_batch_abandons_every_message_of_it(
    bus: Any, client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The host's semantics for func.ServiceBusMessage batches: one failure, all back.
    poison_id = uuid.uuid4().hex
    fine = f"fine-{uuid.uuid4().hex[:6]}"
    await send(
        client,
        "runner-batch",
        ServiceBusMessage("poison:1", message_id=poison_id),
        ServiceBusMessage(fine),
    )
    async with serving(monkeypatch, "batch") as runner:
        runs = await runner.wait_for_invocations("batch", 2, timeout=15)
        module = runner.module
    assert module is not None
    assert not any(r.succeeded for r in runs[:2])
    assert sorted(module.batches[0]) == sorted(["poison:1", fine])
    assert fine in module.batches[1], "the valid batch-mate was abandoned too"
    # Leave the queue clean for the next test: drain what keeps coming back.
    await dead_letters(client, "runner-batch", poison_id)
    async with client.get_queue_receiver("runner-batch") as receiver:
        for message in await receiver.receive_messages(10, max_wait_time=2):
            await receiver.complete_message(message)


@pytest.mark.parametrize(
    "service_bus_section",
    [
        {"maxConcurrentCalls": 2},
        {"messageHandlerOptions": {"maxConcurrentCalls": 2}},
    ],
    ids=["v4-shape", "messageHandlerOptions-shape"],
)
async def test_max_concurrent_calls_bounds_parallel_invocations(
    tmp_path: Path,
    client: ServiceBusClient,
    monkeypatch: pytest.MonkeyPatch,
    service_bus_section: dict[str, Any],
) -> None:
    host_json = tmp_path / "host.json"
    host_json.write_text(
        json.dumps({"version": "2.0", "extensions": {"serviceBus": service_bus_section}})
    )
    await send(client, "runner-parallel", *(ServiceBusMessage(f"p{i}") for i in range(6)))
    async with serving(monkeypatch, "parallel", host_json=host_json) as runner:
        runs = await runner.wait_for_invocations("parallel", 6, timeout=20)
        module = runner.module
    assert all(r.succeeded for r in runs)
    assert module is not None
    # The function waits for a partner, so 2 is reached; the bound keeps it from going higher.
    assert module.max_active == 2


async def test_topic_subscription_trigger(
    client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = f"event-{uuid.uuid4().hex}"
    async with serving(monkeypatch, "on_event") as runner:
        async with client.get_topic_sender("runner-events") as sender:
            await sender.send_messages(ServiceBusMessage(body))
        runs = await runner.wait_for_invocations("on_event", 1)
        module = runner.module
    assert runs[0].succeeded
    assert module is not None and module.topic_deliveries == [body]


@pytest.mark.slow
async def test_lock_is_renewed_while_a_long_invocation_runs(
    bus: Any, client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # runner-slow locks for 5 s; the function takes 7 s.
    async with serving(monkeypatch, "slow") as runner:
        await send(client, "runner-slow", ServiceBusMessage("slow"))
        runs = await runner.wait_for_invocations("slow", 1, timeout=20)
        counts = await wait_settled(bus, "runner-slow")
        module = runner.module
    assert runs[0].succeeded
    assert module is not None and module.slow_deliveries == [1]
    assert counts["active"] == 0


async def test_stop_abandons_an_invocation_still_running_after_the_grace_period(
    client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devtools.runner")
    message_id = uuid.uuid4().hex
    for name in SB_FUNCTIONS:
        if name != "slow":
            monkeypatch.setenv(f"AzureWebJobs.{name}.Disabled", "true")
    options = RunnerOptions(
        app="runner_sb_app:app",
        port=0,
        app_dir=APPS,
        use_settings_file=False,
        shutdown_grace=0.5,
        servicebus_poll_seconds=0.5,
    )
    runner = Runner(options)
    await runner.start()
    try:
        await send(client, "runner-slow", ServiceBusMessage("slow", message_id=message_id))
        module = runner.module
        assert module is not None
        deadline = time.monotonic() + 10
        while not module.slow_deliveries and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert module.slow_deliveries == [1], "the invocation is running"
    finally:
        await runner.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert any("abandoning 1 invocation(s) still running at shutdown" in m for m in messages)
    assert any(f"abandoned message {message_id}" in m for m in messages)
    # The abandoned message is available again at once, its failed delivery counted.
    async with client.get_queue_receiver("runner-slow") as receiver:
        again = await receiver.receive_messages(1, max_wait_time=5)
        for message in again:
            await receiver.complete_message(message)
    assert [m.message_id for m in again] == [message_id]
    assert again[0].delivery_count == 1


# -- admin, configuration errors, reconnection ---------------------------------------------


async def test_service_bus_function_runs_on_demand_with_the_input_as_body(
    sb_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving(monkeypatch, "on_order") as runner:
        async with httpx.AsyncClient(base_url=runner.url) as http:
            accepted = await http.post(
                "/admin/functions/on_order",
                json={"input": "ok"},
                headers={"x-functions-key": ADMIN_KEY},
            )
        runs = await runner.wait_for_invocations(
            "on_order", 1, where=lambda r: "programmatically" in r.reason
        )
        module = runner.module
    assert accepted.status_code == 202
    assert runs[0].succeeded
    assert module is not None and module.deliveries[-1][1:] == (1, "ok")


async def test_missing_connection_setting_puts_only_that_function_in_error(
    sb_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ServiceBusConnection")
    admin = {"x-functions-key": ADMIN_KEY}
    async with (
        serving(monkeypatch, "on_order", "enqueue") as runner,
        httpx.AsyncClient(base_url=runner.url) as http,
    ):
        listed = (await http.get("/admin/functions", headers=admin)).json()
        status = (await http.get("/admin/host/status", headers=admin)).json()
    listener = {f["name"]: f for f in listed}["on_order"]["listener"]
    assert listener["state"] == "error"
    assert "ServiceBusConnection" in listener["error"]
    assert status["state"] == "Running"


def start_standin_process(config_path: Path, port: int) -> subprocess.Popen[str]:
    """The stand-in as a subprocess on a fixed port, so a restart keeps the address."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "devtools.servicebus", "--host", "127.0.0.1"),
            *("--port", str(port), "--config", str(config_path), "--log-level", "WARNING"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready = process.stdout.readline().strip()
    if ready != f"READY 127.0.0.1:{port}":
        stop_process(process)
        raise AssertionError(f"the stand-in did not start: {ready!r}")
    return process


def stop_process(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


async def test_listener_reconnects_after_the_broker_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = tmp_path / "topology.json"
    config_path.write_text(json.dumps(TOPOLOGY))
    port = standin_testing.free_port()
    connection = standin_testing.connection_string("127.0.0.1", port)
    monkeypatch.setenv("ServiceBusConnection", connection)
    monkeypatch.setenv("RUNNER_T_ORDERS_QUEUE", "runner-orders")
    monkeypatch.setenv("LOCAL_ADMIN_KEY", ADMIN_KEY)
    message_id = uuid.uuid4().hex
    processes = [start_standin_process(config_path, port)]
    try:
        async with serving(monkeypatch, "on_order") as runner:
            before = await _listener_state(runner, "listening")
            await asyncio.to_thread(stop_process, processes[0])
            during = await _listener_state(runner, "reconnecting")
            processes.append(await asyncio.to_thread(start_standin_process, config_path, port))
            async with ServiceBusClient.from_connection_string(connection) as sb_client:
                message = ServiceBusMessage("ok", message_id=message_id)
                await send(sb_client, "runner-orders", message)
            runs = await runner.wait_for_invocations(
                "on_order", 1, timeout=30, where=_of(message_id)
            )
            after = await _listener_state(runner, "listening")
    finally:
        for process in processes:
            stop_process(process)
    assert (before, during, after) == ("listening", "reconnecting", "listening")
    assert runs[0].succeeded


async def _listener_state(runner: Runner, wanted: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    async with httpx.AsyncClient(base_url=runner.url) as http:
        while time.monotonic() < deadline:
            listed = (
                await http.get("/admin/functions", headers={"x-functions-key": ADMIN_KEY})
            ).json()
            state = {f["name"]: f for f in listed}["on_order"]["listener"]["state"]
            if state == wanted:
                return state
            await asyncio.sleep(0.2)
    return state
