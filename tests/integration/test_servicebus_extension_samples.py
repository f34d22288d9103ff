"""Microsoft's own samples for the SDK-type Service Bus bindings, run unchanged on the local stack.

The samples ship inside the `azurefunctions-extensions-bindings-servicebus` wheel; each test
copies one (at test time, from the installed package; nothing of it is committed) into a
temporary app directory and serves it with the runner, which hands it to Microsoft's worker.
The samples name their entities literally (`QUEUE_NAME`, `TOPIC_NAME`/`SUBSCRIPTION_NAME`) and
read the connection from the `SERVICEBUS_CONNECTION` setting.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient

from devtools.runner import Runner, RunnerOptions
from devtools.servicebus.testing import running_standin

PACKAGE = "azurefunctions-extensions-bindings-servicebus"
TOPOLOGY: dict[str, Any] = {
    "UserConfig": {
        "Namespaces": [
            {
                "Name": "sbemulatorns",
                "Queues": [
                    {
                        "Name": "QUEUE_NAME",
                        "Properties": {"MaxDeliveryCount": 3, "LockDuration": "PT30S"},
                    }
                ],
                "Topics": [
                    {
                        "Name": "TOPIC_NAME",
                        "Subscriptions": [
                            {"Name": "SUBSCRIPTION_NAME", "Properties": {"MaxDeliveryCount": 3}}
                        ],
                    }
                ],
            }
        ]
    }
}


def _sample(name: str) -> Path:
    """The sample's function_app.py as installed with the package."""
    for file in distribution(PACKAGE).files or []:
        if str(file) == f"samples/{name}/function_app.py":
            return Path(str(file.locate()))
    pytest.fail(f"{PACKAGE} does not ship samples/{name}")


@pytest.fixture(scope="module")
def bus() -> Iterator[Any]:
    with running_standin(TOPOLOGY) as handle:
        yield handle


@pytest.fixture
def app_dir(tmp_path: Path, bus: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SERVICEBUS_CONNECTION", bus.connection_string)
    yield tmp_path
    # The sample was imported as `function_app`: leave that name to the product's app.
    sys.modules.pop("function_app", None)


async def _send(bus: Any, entity: str, *messages: ServiceBusMessage, topic: bool = False) -> None:
    async with ServiceBusClient.from_connection_string(bus.connection_string) as client:
        sender = client.get_topic_sender(entity) if topic else client.get_queue_sender(entity)
        async with sender:
            await sender.send_messages(list(messages))


def _serve(app_dir: Path, sample: str) -> Runner:
    shutil.copy(_sample(sample), app_dir / "function_app.py")
    return Runner(
        RunnerOptions(
            app="function_app:app",
            port=0,
            app_dir=app_dir,
            use_settings_file=False,
            shutdown_grace=3.0,
            servicebus_poll_seconds=0.5,
        )
    )


async def _settled(bus: Any, entity: str, timeout: float = 10) -> dict[str, int]:
    import asyncio

    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = {k.lower(): v for k, v in bus.stats().items()}.get(entity.lower(), {})
        if counts and counts["active"] == 0 and counts["locked"] == 0:
            return counts
        await asyncio.sleep(0.2)
    return counts


async def test_single_sample_receives_a_service_bus_received_message(
    bus: Any, app_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    message_id = uuid.uuid4().hex
    async with _serve(app_dir, "servicebus_samples_single") as runner:
        await _send(bus, "QUEUE_NAME", ServiceBusMessage("hello", message_id=message_id))
        await _send(bus, "TOPIC_NAME", ServiceBusMessage("news", message_id=message_id), topic=True)
        queue_runs = await runner.wait_for_invocations("servicebus_queue_trigger", 1)
        topic_runs = await runner.wait_for_invocations("servicebus_topic_trigger", 1)
        counts = await _settled(bus, "QUEUE_NAME")
    assert queue_runs[0].succeeded and topic_runs[0].succeeded
    assert counts["active"] == 0 and counts["deadLettered"] == 0
    logged = caplog.text
    assert f"Message ID: {message_id}" in logged
    assert "Lock Token: " in logged and "Sequence number: " in logged


async def test_batch_sample_receives_a_list_of_messages(bus: Any, app_dir: Path) -> None:
    await _send(bus, "QUEUE_NAME", *(ServiceBusMessage(f"b{i}") for i in range(5)))
    async with _serve(app_dir, "servicebus_samples_batch") as runner:
        await runner.wait_for_invocations("servicebus_queue_trigger", 1)
        counts = await _settled(bus, "QUEUE_NAME")
        runs = runner.invocations
    sizes = [int(r.reason.split("BatchSize=")[1].rstrip(")")) for r in runs]
    assert all(r.succeeded for r in runs)
    assert sum(sizes) == 5 and max(sizes) > 1
    assert counts["active"] == 0 and counts["deadLettered"] == 0


async def test_settlement_sample_completes_through_the_host_settlement_service(
    bus: Any, app_dir: Path
) -> None:
    message_id = uuid.uuid4().hex
    async with _serve(app_dir, "servicebus_samples_settlement") as runner:
        await _send(bus, "QUEUE_NAME", ServiceBusMessage("settle me", message_id=message_id))
        runs = await runner.wait_for_invocations("servicebus_queue_trigger", 1)
        counts = await _settled(bus, "QUEUE_NAME")
        # autoCompleteMessages is off: only the sample's own complete() can have settled it.
        assert runner.functions[0].trigger.auto_complete is False  # type: ignore[union-attr]
    assert runs[0].succeeded
    assert counts["active"] == 0 and counts["deadLettered"] == 0
