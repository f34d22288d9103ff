"""A stock-events worker killed for real (``os._exit``) in the middle of a batch (no tests).

Run as ``python -m tests.integration.stock_crash_worker`` with its settings on stdin: it
receives one batch from ``inventory-events`` (peek-lock), applies it with the real service
against Azurite, and dies right after the first partition write succeeded: some items of the
batch are written, the rest are not, and no message is settled. Exactly what a killed
Functions worker leaves behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from azure.servicebus.aio import ServiceBusClient

from shared.adapters.tables import TableStore
from shared.services.inventory.events import InboundMessage, apply_inventory_messages
from shared.services.inventory.policy import StockPolicy
from tests.integration.broker_bus import BrokerBus

KILLED_EXIT = 23


class DiesAfterFirstWrite:
    """The real table store; the process ends the moment its first write has landed. Writes
    go out one at a time, so the others of the batch are certainly not sent yet."""

    def __init__(self, tables: TableStore) -> None:
        self._tables = tables
        self._one_at_a_time = asyncio.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tables, name)

    async def _write_then_die(self, write: str, *args: Any, **kwargs: Any) -> Any:
        async with self._one_at_a_time:
            await getattr(self._tables, write)(*args, **kwargs)
            os._exit(KILLED_EXIT)

    async def transact(self, *args: Any, **kwargs: Any) -> Any:
        return await self._write_then_die("transact", *args, **kwargs)

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        return await self._write_then_die("create", *args, **kwargs)

    async def update(self, *args: Any, **kwargs: Any) -> Any:
        return await self._write_then_die("update", *args, **kwargs)


async def run(settings: dict[str, Any]) -> int:
    tables = TableStore.from_connection_string(settings["storage"], settings["prefix"])
    bus = BrokerBus(settings["bus"])
    client = ServiceBusClient.from_connection_string(settings["bus"], retry_total=0)
    async with client, client.get_queue_receiver("inventory-events") as receiver:
        batch = []
        while len(batch) < settings["count"]:
            got = await receiver.receive_messages(settings["count"], max_wait_time=5)
            if not got:
                break
            batch.extend(got)
        messages = [InboundMessage(str(m.message_id), b"".join(m.body)) for m in batch]
        await apply_inventory_messages(
            DiesAfterFirstWrite(tables),  # type: ignore[arg-type]
            bus,
            messages,
            StockPolicy(),
        )
    return 3  # reached only if the worker was not killed: the test fails on this code


if __name__ == "__main__":
    sys.exit(asyncio.run(run(json.loads(sys.stdin.read()))))
