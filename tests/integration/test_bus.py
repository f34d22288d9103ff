"""The product's Service Bus sender on the real client and the local stand-in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from azure.servicebus import ServiceBusClient

from devtools.servicebus.testing import running_standin
from devtools.stack import TOPOLOGY
from shared.adapters.bus import MessageBus


@pytest.fixture(scope="module")
def private_bus() -> Iterator[str]:
    """A stand-in of its own: the session's runner consumes every product queue."""
    with running_standin(TOPOLOGY) as standin:
        yield standin.connection_string


async def test_concurrent_sends_on_a_new_sender_all_arrive(private_bus: str) -> None:
    # The async client writes concurrent transfers out of order unless sends are serialised;
    # a strict AMQP peer then drops the connection and most sends fail.
    bus = MessageBus.from_connection_string(private_bus)
    try:
        await asyncio.gather(
            *(
                bus.send_json("erp-notifications", {"n": n}, message_id=f"concurrent-{n}")
                for n in range(12)
            )
        )
    finally:
        await bus.close()
    received = []
    client = ServiceBusClient.from_connection_string(private_bus)
    with client, client.get_queue_receiver("erp-notifications", max_wait_time=2) as receiver:
        while len(received) < 12:
            batch = receiver.receive_messages(max_message_count=12, max_wait_time=2)
            if not batch:
                break
            for message in batch:
                received.append(json.loads(str(message))["n"])
                receiver.complete_message(message)
    assert sorted(received) == list(range(12))
