"""Hard faults in the middle of a stock batch: a killed worker, restarting table storage.

A separate process receives a batch of events for several items from a private Service Bus
stand-in (short lock) and is killed (os._exit) right after its first partition write. The
broker still holds every message, locked by the dead worker; when the lock runs out they come
back, the normal service applies the whole batch again and completes it, and each item's
projection equals the independent reference fold of its events: the part written before the
kill is recognised as done, the rest is applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.exceptions import MessageLockLostError

from devtools.servicebus.testing import StandinHandle, StandinProcess, running_standin
from devtools.stack import TOPOLOGY, free_port, storage_connection_string
from shared.adapters.stores import stock as stock_store
from shared.adapters.tables import TableStore
from shared.domain.stock import parse_inventory_event
from shared.services.inventory.events import InboundMessage, apply_inventory_messages
from shared.services.inventory.policy import StockPolicy
from tests.integration import stock_crash_worker
from tests.integration.broker_bus import BrokerBus
from tests.integration.killed_worker import run_until_killed
from tests.stock_model import fold_in_order
from tests.support.inventory_events import event

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
    await run_until_killed(
        "tests.integration.stock_crash_worker", settings, stock_crash_worker.KILLED_EXIT
    )
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
            again = await _receive_all(receiver, len(bodies), wait=LOCK_SECONDS + 5)
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
        await _assert_projections_are_the_fold(tables, bodies, SKUS)
    finally:
        await tables.close()


class RestartingProxy:
    """A TCP hop in front of Azurite that can go away and come back: every open connection is
    cut and the port refuses connections for a moment, as a restarting server with durable
    storage does. (Azurite itself, restarted, forgets what it wrote in its last seconds; Azure
    Table storage does not, so the test restarts the hop, not the data.)"""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.restarts = 0

    @property
    def connection(self) -> str:
        return storage_connection_string(self.port)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def restart(self, down_for: float) -> None:
        """Cut every connection, refuse new ones for `down_for` seconds, then serve again."""
        self.restarts += 1
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.sleep(down_for)
        await self.start()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))


class RestartsAfterFirstWrite:
    """The real store through the hop: right after the batch's first write lands, the hop
    restarts while the rest of the batch is still writing."""

    def __init__(self, tables: TableStore, proxy: RestartingProxy) -> None:
        self._tables, self._proxy = tables, proxy
        self.restart: asyncio.Task[None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tables, name)

    async def _write(self, write: str, *args: Any, **kwargs: Any) -> Any:
        result = await getattr(self._tables, write)(*args, **kwargs)
        if self.restart is None:
            self.restart = asyncio.create_task(self._proxy.restart(down_for=1.5))
            await asyncio.sleep(0)  # let it cut the connections before going on
        return result

    async def transact(self, *args: Any, **kwargs: Any) -> Any:
        return await self._write("transact", *args, **kwargs)

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        return await self._write("create", *args, **kwargs)

    async def update(self, *args: Any, **kwargs: Any) -> Any:
        return await self._write("update", *args, **kwargs)


async def test_table_storage_restarting_during_a_batch_write_loses_nothing(
    short_lock_broker: StandinHandle, azurite_connection: str, table_prefix: str
) -> None:
    azurite_port = int(azurite_connection.split("127.0.0.1:")[1].split("/")[0])
    proxy = RestartingProxy(azurite_port)
    await proxy.start()
    bodies = [
        event(
            f"RESTART/{n % 4}", n // 4 + 1, "counted" if n < 4 else "adjusted", 20 if n < 4 else -1
        )
        for n in range(24)
    ]
    connection = short_lock_broker.connection_string
    bus = BrokerBus(connection)
    tables = TableStore.from_connection_string(proxy.connection, prefix=table_prefix)
    # The table exists before the restart (first use creates it), as it does in Azure.
    for n in range(4):
        await stock_store.load_position(tables, f"RESTART/{n}", "MAIN")
    flaky = RestartsAfterFirstWrite(tables, proxy)
    client = ServiceBusClient.from_connection_string(connection, retry_total=0)
    try:
        async with client:
            async with client.get_queue_sender("inventory-events") as sender:
                await sender.send_messages(
                    [ServiceBusMessage(json.dumps(b), message_id=b["eventId"]) for b in bodies]
                )
            async with client.get_queue_receiver("inventory-events") as receiver:
                deliveries = 0
                while True:
                    batch = []
                    while len(batch) < len(bodies):
                        got = await receiver.receive_messages(
                            len(bodies), max_wait_time=LOCK_SECONDS + 5
                        )
                        assert got, f"{len(batch)} of {len(bodies)} messages came back"
                        batch.extend(got)
                    deliveries += 1
                    store = flaky if deliveries == 1 else tables
                    try:
                        await apply_inventory_messages(
                            store,  # type: ignore[arg-type]
                            bus,
                            [InboundMessage(str(m.message_id), b"".join(m.body)) for m in batch],
                            StockPolicy(),
                        )
                    except Exception:  # what the host does: abandon, the broker redelivers
                        for message in batch:
                            # A lock that ran out meanwhile returns the message all the same.
                            with contextlib.suppress(MessageLockLostError):
                                await receiver.abandon_message(message)
                        assert deliveries < 3, "the batch kept failing after storage was back"
                        if flaky.restart is not None:
                            await flaky.restart
                        continue
                    for message in batch:
                        await receiver.complete_message(message)
                    break
                assert not await receiver.receive_messages(10, max_wait_time=1)
        assert proxy.restarts == 1
        await _assert_projections_are_the_fold(tables, bodies, [f"RESTART/{n}" for n in range(4)])
    finally:
        await bus.close()
        await tables.close()
        await proxy.stop()


async def _assert_projections_are_the_fold(
    tables: TableStore, bodies: list[dict[str, Any]], skus: Sequence[str]
) -> None:
    """Each item's stored position equals the independent in-order fold of its events."""
    for sku in skus:
        expected = fold_in_order([parse_inventory_event(b) for b in bodies if b["sku"] == sku])
        stored = (await stock_store.load_position(tables, sku, "MAIN")).position
        assert (stored.on_hand, stored.last_sequence) == (expected.on_hand, expected.last_sequence)


async def _receive_all(receiver: Any, count: int, wait: float) -> list[Any]:
    got: list[Any] = []
    while len(got) < count:
        batch = await receiver.receive_messages(count - len(got), max_wait_time=wait)
        assert batch, f"{len(got)} of {count} messages received"
        got.extend(batch)
    return got


@pytest.mark.slow  # starts the stand-in twice
async def test_the_broker_killed_mid_batch_loses_nothing_and_applies_nothing_twice(
    azurite_connection: str, table_prefix: str, tmp_path: Path
) -> None:
    """The Service Bus stand-in, durable as Service Bus is, is killed (SIGKILL) while a handler
    holds a batch it has half applied and not settled. After the restart every message comes
    back (its lock died with the broker), the handler's second pass finds the written half
    done and applies the rest once, and each projection equals the in-order fold."""
    config = tmp_path / "topology.json"
    config.write_text(TOPOLOGY.read_text(), encoding="utf-8")
    broker = StandinProcess(config, data_dir=tmp_path / "data", log_file=tmp_path / "sb.log")
    broker.start()
    tables = TableStore.from_connection_string(azurite_connection, prefix=table_prefix)
    bodies = [
        event(sku, n, "counted" if n == 1 else "adjusted", 40 if n == 1 else -n % 5 + 1)
        for sku in SKUS
        for n in range(1, 7)
    ]
    try:
        client = ServiceBusClient.from_connection_string(broker.connection_string, retry_total=0)
        async with client:
            async with client.get_queue_sender("inventory-events") as sender:
                await sender.send_messages(
                    [ServiceBusMessage(json.dumps(b), message_id=b["eventId"]) for b in bodies]
                )
            receiver = client.get_queue_receiver("inventory-events")
            await receiver.__aenter__()
            held = await _receive_all(receiver, len(bodies), wait=5)
            first = [m for m in held if json.loads(b"".join(m.body))["sku"] == SKUS[0]]
            bus = BrokerBus(broker.connection_string)
            partial = await apply_inventory_messages(
                tables,
                bus,
                [InboundMessage(str(m.message_id), b"".join(m.body)) for m in first],
                StockPolicy(),
            )
            assert partial.tally["applied"] == len(first)
            broker.kill()  # nothing was settled
            with contextlib.suppress(Exception):
                await receiver.close()
            with contextlib.suppress(Exception):
                await bus.close()

        broker.start()  # same port, same data
        client = ServiceBusClient.from_connection_string(broker.connection_string, retry_total=0)
        bus = BrokerBus(broker.connection_string)
        async with client, client.get_queue_receiver("inventory-events") as receiver:
            again = await _receive_all(receiver, len(bodies), wait=10)
            assert sorted(str(m.message_id) for m in again) == sorted(b["eventId"] for b in bodies)
            assert {m.delivery_count for m in again} == {1}  # the lost lock counts a delivery
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
        assert outcome.tally["duplicates"] == len(first)
        assert outcome.tally["applied"] == len(bodies) - len(first)
        await _assert_projections_are_the_fold(tables, bodies, SKUS)
    finally:
        broker.stop()
        await tables.close()
