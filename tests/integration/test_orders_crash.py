"""The booking process is killed between the ERP create and the message completion.

A separate Python process (this module run as a script) receives the ``orders`` message and
books it with a client that calls ``os._exit`` the moment the ERP has answered the create:
no ``finally``, no completion, no status write, exactly what a killed worker leaves. The
message's lock then expires, Service Bus delivers it again, and the normal handler must end
with exactly one ERP order (counted in the simulator) and the order booked.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from azure.servicebus.aio import ServiceBusClient

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.models import SalesOrder, SalesOrderCreate
from shared.adapters.erp.request_pipeline import RequestPipeline
from shared.adapters.stores.orders import load_order
from shared.adapters.tables import TableStore
from shared.domain.orders import OrderStatus
from shared.services.orders.booking import handle_booking_message
from shared.services.orders.messages import OrderMessage
from tests.support.orders_harness import Harness, build_context, erp_config, erp_orders

ROOT = Path(__file__).resolve().parents[2]
CRASH_EXIT = 17


class _ErpThatDiesAfterCreate(ErpClient):
    async def create_sales_order(
        self,
        payload: SalesOrderCreate,
        *,
        correlation_id: str | None = None,
        via: RequestPipeline | None = None,
    ) -> SalesOrder:
        order = await super().create_sales_order(payload, correlation_id=correlation_id, via=via)
        # The ERP committed the order and answered; the worker dies before anything else.
        os._exit(CRASH_EXIT)
        return order  # pragma: no cover


async def _work_until_killed(settings: dict[str, str]) -> int:
    """The doomed worker: take one message and book it with the dying client."""
    tables = TableStore.from_connection_string(settings["storage"], settings["prefix"])
    prices = TableStore.from_connection_string(settings["storage"], settings["pricePrefix"])
    erp = _ErpThatDiesAfterCreate(erp_config(settings["erp"]))
    ctx = build_context(tables, prices, erp, settings["bus"])
    async with (
        ServiceBusClient.from_connection_string(settings["bus"]) as client,
        client.get_queue_receiver("orders") as receiver,
    ):
        batch = await receiver.receive_messages(max_message_count=1, max_wait_time=20)
        received = batch[0]
        message = OrderMessage.model_validate_json(str(received))
        await handle_booking_message(ctx, message, (received.delivery_count or 0) + 1)
    return 3  # reached only if the client did not die: the test fails on this code


async def test_a_worker_killed_after_the_erp_create_leaves_exactly_one_erp_order(
    harness: Harness, azurite_connection: str, price_prefix: str, table_prefix: str
) -> None:
    await harness.stock("IT-000001", MAIN=5)
    answer = await harness.submit(
        {
            "customerId": "C00001",
            "externalOrderId": "crash-1",
            "channel": "web",
            "lines": [{"sku": "IT-000001", "quantity": 1}],
        }
    )
    order_id = json.loads(answer.body)["orderId"]
    worker = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.integration.test_orders_crash"],
        cwd=ROOT,
        input=json.dumps(
            {
                "storage": azurite_connection,
                "prefix": table_prefix,
                "pricePrefix": price_prefix,
                "erp": harness.sim,
                "bus": harness.bus_connection,
            }
        ),
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert worker.returncode == CRASH_EXIT, worker.stderr[-2000:]
    # The ERP has the order; this product's row still says accepted, with the dead claim.
    assert len(erp_orders(harness.sim, order_id)) == 1
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None and stored.order.status is OrderStatus.ACCEPTED
    assert stored.order.claim is not None

    async def settled() -> bool:
        current = await load_order(harness.ctx.tables, order_id)
        return current is not None and current.order.settled

    outcomes = await harness.deliver(until=settled, timeout=60)
    erp = erp_orders(harness.sim, order_id)
    assert len(erp) == 1, erp
    order = (await load_order(harness.ctx.tables, order_id)).order  # type: ignore[union-attr]
    assert order.status is OrderStatus.BOOKED and order.erp_order_number == erp[0]["number"]
    booked = [h for h in order.history if str(h.event) == "booked"]
    assert len(booked) == 1 and "already_existed" in booked[0].detail
    assert order.claims == 2  # the killed attempt and the one that found the ERP's order
    # Delivered again after the lock expired (deferred while the dead claim lasted, if so).
    assert outcomes
    assert (await harness.reservations("IT-000001"))["MAIN"] == {}


def _main() -> None:
    settings: dict[str, Any] = json.loads(sys.stdin.read())
    sys.exit(asyncio.run(_work_until_killed(settings)))


if __name__ == "__main__":
    _main()
