"""A stock-events worker killed in the middle of a batch: nothing lost, nothing twice.

A separate process receives a batch of events for several items from a private Service Bus
stand-in (short lock) and is killed (os._exit) right after its first partition write. The
broker still holds every message, locked by the dead worker; when the lock runs out they come
back, the normal service applies the whole batch again and completes it, and each item's
projection equals the independent reference fold of its events: the part written before the
kill is recognised as done, the rest is applied once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient

from devtools.servicebus.testing import StandinHandle, running_standin
from devtools.stack import TOPOLOGY
from shared.adapters.tables import TableStore
from shared.domain.stock import parse_inventory_event
from shared.services import stock_store
from shared.services.inventory_events import InboundMessage, apply_inventory_messages
from shared.services.inventory_policy import StockPolicy
from tests.integration import stock_crash_worker
from tests.integration.broker_bus import BrokerBus
from tests.integration.test_inventory_support import event
from tests.stock_model import fold_in_order

ROOT = Path(__file__).resolve().parents[2]
LOCK_SECONDS = 3
SKUS = ("CRASH/1", "CRASH/2", "CRASH/3")


@pytest.fixture(scope="module")
def short_lock_broker() -> Iterator[StandinHandle]:
    """The product's topology, with a short lock on inventory-events so a dead worker's
    messages come back within seconds (Azure: LockDuration, 1 minute by default)."""
    topology = json.loads(TOPOLOGY.read_text())
    changed = deepcopy(topology)
    for queue in changed["UserConfig"]["Namespaces"][0]["Queues"]:
        if queue["Name"] == "inventory-events":
            queue["Properties"]["LockDuration"] = f"PT{LOCK_SECONDS}S"
    with running_standin(changed) as handle:
        yield handle


async def test_a_worker_killed_mid_batch_loses_nothing_and_applies_nothing_twice(
    short_lock_broker: StandinHandle, azurite_connection: str, table_prefix: str
) -> None:
    connection = short_lock_broker.connection_string
    bodies = [
        event(sku, n, "counted" if n == 1 else "adjusted", 50 if n == 1 else -n % 7 + 1)
        for sku in SKUS
        for n in range(1, 9)
    ]
    client = ServiceBusClient.from_connection_string(connection, retry_total=0)
    async with client, client.get_queue_sender("inventory-events") as sender:
        await sender.send_messages(
            [ServiceBusMessage(json.dumps(b), message_id=b["eventId"]) for b in bodies]
        )

    settings = {
        "storage": azurite_connection,
        "prefix": table_prefix,
        "bus": connection,
        "count": len(bodies),
    }
    worker = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.integration.stock_crash_worker"],
        cwd=ROOT,
        input=json.dumps(settings),
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert worker.returncode == stock_crash_worker.KILLED_EXIT, worker.stderr[-2000:]
    tables = TableStore.from_connection_string(azurite_connection, prefix=table_prefix)
    try:
        written = [
            sku
            for sku in SKUS
            if (await stock_store.load_position(tables, sku, "MAIN")).etag is not None
        ]
        assert 1 <= len(written) < len(SKUS), "the kill must land in the middle of the batch"

        # The lock of the dead worker runs out; the broker delivers everything again.
        bus = BrokerBus(connection)
        client = ServiceBusClient.from_connection_string(connection, retry_total=0)
        async with client, client.get_queue_receiver("inventory-events") as receiver:
            again = []
            while len(again) < len(bodies):
                got = await receiver.receive_messages(len(bodies), max_wait_time=LOCK_SECONDS + 5)
                assert got, f"{len(again)} of {len(bodies)} messages came back"
                again.extend(got)
            assert {m.delivery_count for m in again} == {1}
            outcome = await apply_inventory_messages(
                tables,
                bus,
                [InboundMessage(str(m.message_id), b"".join(m.body)) for m in again],
                StockPolicy(),
            )
            for message in again:
                await receiver.complete_message(message)
            assert not await receiver.receive_messages(10, max_wait_time=1)
        await bus.close()
        assert not outcome.rejected
        assert outcome.tally["duplicates"] == 8 * len(written)  # done before the kill
        assert outcome.tally["applied"] == 8 * (len(SKUS) - len(written))
        for sku in SKUS:
            expected = fold_in_order([parse_inventory_event(b) for b in bodies if b["sku"] == sku])
            stored = (await stock_store.load_position(tables, sku, "MAIN")).position
            assert (stored.on_hand, stored.last_sequence) == (
                expected.on_hand,
                expected.last_sequence,
            )
    finally:
        await tables.close()
