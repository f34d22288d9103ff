"""One order, one trace: HTTP intake -> Service Bus -> booking -> ERP, on real components.

The function handlers run in this process (so the in-memory exporter sees every span) against
a private ERP simulator, a private Service Bus stand-in (the real azure-servicebus client) and
Azurite. The ``orders`` message is received with the real client and handed to the booking
trigger as the SDK-type ``ServiceBusReceivedMessage``, through the runner's model-binding data
and the extension's own decoder, as under the worker.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import azure.functions as func
import httpx
import pytest
from azure.servicebus.aio import ServiceBusClient
from azurefunctions.extensions.bindings.servicebus import ServiceBusReceivedMessage
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

import functions.orders
from devtools.erp_sim.testing import custom_api
from devtools.runner.wire import model_binding_data
from functions.messages import properties_of
from shared.adapters.stores.orders import load_order
from tests.received import RecordingActions
from tests.support.orders_harness import Harness, erp_orders, sim_price
from tests.telemetry_support import Recorders, recorders

CUSTOMER = "C00001"
SKU = "IT-000001"


@pytest.fixture
def telemetry() -> Iterator[Recorders]:
    found = recorders()
    found.spans.clear()
    yield found
    found.spans.clear()


@pytest.fixture
def app(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """The orders trigger module wired to this test's components instead of the settings'."""
    monkeypatch.setattr(functions.orders, "get_services", lambda: None)
    monkeypatch.setattr(functions.orders, "order_context", lambda services: harness.ctx)
    return harness


def order_request(harness: Harness, correlation_id: str, traceparent: str) -> func.HttpRequest:
    price = sim_price(harness.sim, CUSTOMER, SKU, 2)
    body = {
        "customerId": CUSTOMER,
        "externalOrderId": f"shop-{uuid.uuid4().hex[:8]}",
        "channel": "web",
        "lines": [{"sku": SKU, "quantity": 2, "expectedUnitPrice": str(price)}],
    }
    return func.HttpRequest(
        method="POST",
        url="http://127.0.0.1:7071/api/orders",
        headers={
            "content-type": "application/json",
            "Idempotency-Key": f"key-{uuid.uuid4().hex}",
            "x-correlation-id": correlation_id,
            "traceparent": traceparent,
        },
        params={},
        route_params={},
        body=json.dumps(body).encode(),
    )


async def submit(harness: Harness, correlation_id: str, traceparent: str) -> str:
    await harness.stock(SKU, MAIN=10, EAST=3)
    response = await functions.orders.submit(order_request(harness, correlation_id, traceparent))
    assert response.status_code == 202, response.get_body()
    assert response.headers["x-correlation-id"] == correlation_id
    return str(json.loads(response.get_body())["orderId"])


async def book(harness: Harness, order_id: str) -> Any:
    """Receive the order's message from the stand-in and run the booking trigger on it."""
    async with ServiceBusClient.from_connection_string(harness.bus_connection) as client:
        receiver = client.get_queue_receiver("orders", max_wait_time=10)
        async with receiver:
            for _ in range(20):
                for received in await receiver.receive_messages(max_message_count=10):
                    data = model_binding_data(received)
                    message = ServiceBusReceivedMessage(data=data).get_sdk_type()  # type: ignore[arg-type]
                    if message.message_id != order_id:
                        await receiver.complete_message(received)  # not this test's order
                        continue
                    actions = RecordingActions()
                    await functions.orders.book(message, actions)  # type: ignore[arg-type]
                    assert [a[0] for a in actions.settled] == ["complete"]
                    await receiver.complete_message(received)
                    return message
    raise AssertionError(f"no orders message for {order_id}")


def new_traceparent() -> tuple[str, int, int]:
    trace_id, span_id = secrets.randbits(128) | 1, secrets.randbits(64) | 1
    return f"00-{trace_id:032x}-{span_id:016x}-01", trace_id, span_id


def one(spans: list[ReadableSpan], kind: SpanKind, name: str) -> ReadableSpan:
    found = [span for span in spans if span.kind is kind and span.name == name]
    assert len(found) == 1, sorted((span.kind.name, span.name) for span in spans)
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def attribute(span: ReadableSpan, name: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(name)


async def test_one_order_is_one_trace_from_intake_to_the_erp_booking(
    app: Harness, telemetry: Recorders
) -> None:
    correlation_id = f"corr-{uuid.uuid4().hex[:12]}"
    incoming, trace_id, caller_span = new_traceparent()
    booked_before = telemetry.metric_total("erpsync.orders.booked")
    mismatches_before = telemetry.metric_total("erpsync.orders.price_mismatches")

    order_id = await submit(app, correlation_id, incoming)
    message = await book(app, order_id)

    stored = await load_order(app.ctx.tables, order_id)
    assert stored is not None and stored.order.erp_order_number
    assert len(erp_orders(app.sim, order_id)) == 1
    spans = telemetry.trace(trace_id)

    # HTTP: a server span continuing the storefront's traceparent.
    server = one(spans, SpanKind.SERVER, "POST /api/orders")
    assert parent_of(server) == caller_span
    assert attribute(server, "http.response.status_code") == 202
    # Service Bus send: a producer span inside the request, its context in the message.
    producer = one(
        [s for s in spans if attribute(s, "messaging.destination.name") == "orders"],
        SpanKind.PRODUCER,
        "send orders",
    )
    assert parent_of(producer) == span_id(server)
    assert attribute(producer, "messaging.message.id") == order_id
    sent_context = producer.get_span_context()
    expected_parent = f"00-{trace_id:032x}-{sent_context.span_id:016x}"
    properties = properties_of(message)
    assert properties["traceparent"].startswith(expected_parent)
    assert properties["Diagnostic-Id"].startswith(expected_parent)
    assert message.correlation_id == correlation_id
    # Service Bus receive: the consumer span is the producer's child; booking inside it.
    consumer = one(spans, SpanKind.CONSUMER, "process orders")
    assert parent_of(consumer) == span_id(producer)
    booking = one(spans, SpanKind.INTERNAL, "book order")
    assert parent_of(booking) == span_id(consumer)
    assert attribute(booking, "app.booking.outcome") == "booked"
    # ERP: client spans under the booking, one of them the sales order create.
    erp_calls = [s for s in spans if s.kind is SpanKind.CLIENT and parent_of(s) == span_id(booking)]
    create = [s for s in erp_calls if s.name == "POST salesOrders"]
    assert len(create) == 1 and attribute(create[0], "http.response.status_code") == 201
    assert attribute(create[0], "erp.throttled") is False
    # The intake's own ERP reads (credit) hang under the server span.
    assert any(s.kind is SpanKind.CLIENT and parent_of(s) == span_id(server) for s in spans), (
        "the intake's ERP reads should be children of the HTTP span"
    )
    # One correlation id on every hop.
    assert {attribute(s, "app.correlation_id") for s in spans} == {correlation_id}
    assert len(spans) >= 6

    assert telemetry.metric_total("erpsync.orders.booked") - booked_before == 1
    assert telemetry.metric_total("erpsync.orders.price_mismatches") - mismatches_before == 0


def cheaper_contract_price(sim: str, customer: str, sku: str, unit_price: Decimal) -> None:
    """Give the customer a lower contract price in the ERP (after our order was accepted)."""
    api = custom_api(sim)
    existing = httpx.get(f"{api}/priceListLines", params={"$top": "1"}, timeout=10)
    existing.raise_for_status()
    code = existing.json()["value"][0]["priceListCode"]
    created = httpx.post(
        f"{api}/priceListLines",
        json={
            "priceListCode": code,
            "sourceType": "Customer",
            "sourceNo": customer,
            "assetNo": sku,
            "unitPrice": str(unit_price),
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text


async def test_a_booking_priced_differently_by_the_erp_moves_the_accuracy_counters(
    app: Harness, telemetry: Recorders
) -> None:
    incoming, _, _ = new_traceparent()
    booked_before = telemetry.metric_total("erpsync.orders.booked")
    mismatches_before = telemetry.metric_total("erpsync.orders.price_mismatches")
    accepted_price = sim_price(app.sim, CUSTOMER, SKU, 2)

    order_id = await submit(app, f"corr-{uuid.uuid4().hex[:12]}", incoming)
    cheaper_contract_price(app.sim, CUSTOMER, SKU, (accepted_price / 2).quantize(Decimal("0.01")))
    assert sim_price(app.sim, CUSTOMER, SKU, 2) < accepted_price
    await book(app, order_id)

    stored = await load_order(app.ctx.tables, order_id)
    assert stored is not None and stored.order.erp_total_amount is not None
    assert stored.order.erp_total_amount < stored.order.total_amount
    assert telemetry.metric_total("erpsync.orders.booked") - booked_before == 1
    assert telemetry.metric_total("erpsync.orders.price_mismatches") - mismatches_before == 1
