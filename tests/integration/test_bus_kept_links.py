"""The health probe's kept peek link: reused while the broker lives, replaced after it restarts,
and a gone broker fails the peek instead of hanging it (a real stand-in process, killed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.servicebus.aio import ServiceBusClient

from devtools.servicebus.testing import StandinProcess
from shared.adapters.bus import MessageBus

QUEUE = "probe"
TOPOLOGY = {
    "UserConfig": {
        "Namespaces": [{"Name": "sbemulatorns", "Queues": [{"Name": QUEUE, "Properties": {}}]}]
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


async def test_the_kept_link_is_reused_and_replaced_after_a_broker_restart(
    standin: StandinProcess,
) -> None:
    bus = MessageBus(ServiceBusClient.from_connection_string(standin.connection_string))
    try:
        assert await bus.peek_count(QUEUE) == 0
        kept = bus._peekers._receivers[QUEUE]
        await bus.send_json(QUEUE, {"n": 1}, message_id="m1")
        # The same link, and each peek starts from the first message again.
        assert await bus.peek_count(QUEUE, 5) == 1
        assert await bus.peek_count(QUEUE, 5) == 1
        assert bus._peekers._receivers[QUEUE] is kept

        standin.kill()
        # The broker is gone: the peek fails (or is cut off by the caller's bound); no hang.
        with pytest.raises((Exception, TimeoutError)):
            await asyncio.wait_for(bus.peek_count(QUEUE), 10)
        assert QUEUE not in bus._peekers._receivers

        standin.start()  # same port, durable data: the message is still there
        assert await asyncio.wait_for(bus.peek_count(QUEUE, 5), 30) == 1
        assert bus._peekers._receivers[QUEUE] is not kept
    finally:
        await bus.close()
