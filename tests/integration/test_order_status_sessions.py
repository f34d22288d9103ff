"""A storefront consumer reads ``order-status`` one order at a time, in order, via sessions.

The product's own publisher (``publish_status`` over ``MessageBus``) sends interleaved status
changes of several orders to the stand-in running the real topology
(infra/servicebus-topology.json, where ``order-status/storefront`` requires sessions); a
consumer written against the real azure-servicebus client takes the next available session
and gets exactly that order's events in the order they were published.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from azure.servicebus import NEXT_AVAILABLE_SESSION
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.exceptions import OperationTimeoutError

from devtools.servicebus.testing import StandinHandle, running_standin
from shared.adapters.bus import MessageBus
from shared.domain.orders import Order, OrderStatus
from shared.domain.orders.ids import new_order_id
from shared.services.orders.messages import STATUS_TOPIC, publish_status

SUBSCRIPTION = "storefront"
STEPS = (OrderStatus.ACCEPTED, OrderStatus.FAILED, OrderStatus.ACCEPTED, OrderStatus.BOOKED)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    with running_standin() as handle:  # the real topology file
        yield handle


def _order(n: int, at: datetime) -> Order:
    return Order(
        order_id=new_order_id(int(at.timestamp() * 1000) + n, os.urandom(10)),
        status=OrderStatus.PENDING,
        customer_no="C00001",
        channel="web",
        currency="EUR",
        external_order_id=f"web-{n}",
        created_at=at,
        updated_at=at,
    )


async def test_a_consumer_reads_each_order_in_order_through_its_session(
    standin: StandinHandle,
) -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    orders = [_order(n, start) for n in range(3)]
    bus = MessageBus.from_connection_string(standin.connection_string)
    try:
        for step, status in enumerate(STEPS):  # interleaved: o0, o1, o2, o0, o1, o2, ...
            for order in orders:
                changed = replace(order, status=status, generation=step)
                await publish_status(bus, changed, start + timedelta(minutes=step))
    finally:
        await bus.close()

    seen: dict[str, list[tuple[str, str]]] = {}
    async with ServiceBusClient.from_connection_string(
        standin.connection_string, retry_total=0
    ) as client:
        while True:
            try:
                async with client.get_subscription_receiver(
                    STATUS_TOPIC, SUBSCRIPTION, session_id=NEXT_AVAILABLE_SESSION, max_wait_time=2
                ) as receiver:
                    session = receiver.session.session_id
                    events = seen.setdefault(session, [])
                    while batch := await receiver.receive_messages(
                        max_message_count=10, max_wait_time=1
                    ):
                        for message in batch:
                            body = json.loads(str(message))
                            events.append((body["orderId"], body["status"]))
                            assert message.session_id == session
                            await receiver.complete_message(message)
            except OperationTimeoutError:
                break  # no session has anything left

    assert seen == {
        order.order_id: [(order.order_id, str(status)) for status in STEPS] for order in orders
    }
