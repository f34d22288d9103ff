"""Sample Service Bus app for the runner tests. Each function has its own queue, and the
tests disable the functions they do not exercise (AzureWebJobs.<name>.Disabled)."""

from __future__ import annotations

import asyncio
import threading
import time
import typing

import azure.functions as func
import azurefunctions.extensions.bindings.servicebus as servicebus

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
CONNECTION = "ServiceBusConnection"

# (message_id, delivery_count, body) per delivery, in order.
deliveries: list[tuple[str, int | None, str]] = []
seen: list[func.ServiceBusMessage] = []
batches: list[list[str]] = []
topic_deliveries: list[str] = []
slow_deliveries: list[int | None] = []
_active = 0
max_active = 0
_active_lock = threading.Lock()
_two_active = threading.Event()
# (message_id, delivery_count, body) per SDK-type delivery.
settled: list[tuple[str, int | None, str]] = []
sdk_batches: list[list[str]] = []


class DeadLetter(Exception):
    """Named like the old runner convention: the host gives such a name no meaning."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason
        self.description = description


def _body(message: servicebus.ServiceBusReceivedMessage) -> str:
    return b"".join(message.body).decode()


@app.service_bus_queue_trigger(
    arg_name="msg", queue_name="%RUNNER_T_ORDERS_QUEUE%", connection=CONNECTION
)
def on_order(msg: func.ServiceBusMessage) -> None:
    body = msg.get_body().decode()
    deliveries.append((msg.message_id, msg.delivery_count, body))
    seen.append(msg)
    if body == "fail-once" and msg.delivery_count == 1:
        raise RuntimeError("transient failure on the first delivery")
    if body == "always-fail":
        raise RuntimeError("this message can never be processed")
    if body == "bad-order":
        raise DeadLetter("BadOrder", "the order has no lines")


@app.service_bus_queue_trigger(arg_name="msg", queue_name="runner-relay-in", connection=CONNECTION)
@app.service_bus_queue_output(arg_name="out", queue_name="runner-relay-out", connection=CONNECTION)
@app.service_bus_topic_output(arg_name="note", topic_name="runner-notes", connection=CONNECTION)
def relay(msg: func.ServiceBusMessage, out: func.Out[str], note: func.Out[str]) -> None:
    body = msg.get_body().decode()
    out.set(f"relayed:{body}")
    note.set(f"note:{body}")
    if body.startswith("fail"):
        raise RuntimeError("failed after setting the outputs")


@app.service_bus_queue_trigger(
    arg_name="msgs", queue_name="runner-batch", connection=CONNECTION, cardinality="many"
)
def batch(msgs: typing.List[func.ServiceBusMessage]) -> None:  # noqa: UP006 - worker
    bodies = [m.get_body().decode() for m in msgs]
    batches.append(bodies)
    if any(m.get_body().startswith(b"poison:") for m in msgs):
        raise ValueError("a poison message in the batch")


@app.service_bus_queue_trigger(
    arg_name="message",
    queue_name="runner-settle",
    connection=CONNECTION,
    auto_complete_messages=False,
)
def settle(
    message: servicebus.ServiceBusReceivedMessage,
    message_actions: servicebus.ServiceBusMessageActions,
) -> None:
    """Settles its message itself, as the SDK-type binding allows."""
    body = _body(message)
    settled.append((str(message.message_id), message.delivery_count, body))
    if body == "bad-order":
        message_actions.deadletter(
            message,
            deadletter_reason="BadOrder",
            deadletter_error_description="the order has no lines",
        )
    elif body == "fail-once" and message.delivery_count == 1:
        raise RuntimeError("transient failure before settling")
    elif body == "leave-it":
        return
    else:
        message_actions.complete(message)


@app.service_bus_queue_trigger(
    arg_name="messages",
    queue_name="runner-sdk-batch",
    connection=CONNECTION,
    cardinality="many",
    auto_complete_messages=False,
)
async def sdk_batch(
    messages: typing.List[servicebus.ServiceBusReceivedMessage],  # noqa: UP006 - worker
    message_actions: servicebus.ServiceBusMessageActions,
) -> None:
    """Dead-letters each poison message with its reason; completes the rest one by one."""
    sdk_batches.append([_body(m) for m in messages])
    for message in messages:
        if _body(message).startswith("poison:"):
            await asyncio.to_thread(
                message_actions.deadletter,
                message,
                deadletter_reason="PoisonEvent",
                deadletter_error_description=f"{_body(message)} cannot be applied",
            )
        else:
            await asyncio.to_thread(message_actions.complete, message)


@app.service_bus_queue_trigger(arg_name="msg", queue_name="runner-parallel", connection=CONNECTION)
def parallel(msg: str) -> None:
    """Records how many invocations overlap; waits (bounded) for a partner to overlap with."""
    global _active, max_active
    with _active_lock:
        _active += 1
        max_active = max(max_active, _active)
        if _active >= 2:
            _two_active.set()
    try:
        _two_active.wait(timeout=2)
        time.sleep(0.2)
    finally:
        with _active_lock:
            _active -= 1


@app.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="runner-events",
    subscription_name="runner-sub",
    connection=CONNECTION,
)
def on_event(msg: func.ServiceBusMessage) -> None:
    topic_deliveries.append(msg.get_body().decode())


@app.service_bus_queue_trigger(arg_name="msg", queue_name="runner-slow", connection=CONNECTION)
def slow(msg: func.ServiceBusMessage) -> None:
    """Outlives the queue's short lock; only lock renewal keeps the message from coming back."""
    slow_deliveries.append(msg.delivery_count)
    time.sleep(7)


@app.route(route="enqueue/{outcome}", methods=["POST"])
@app.service_bus_queue_output(arg_name="out", queue_name="runner-http-out", connection=CONNECTION)
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode())
    if req.route_params["outcome"] == "fail":
        raise RuntimeError("failed after setting the output")
    return func.HttpResponse("queued", status_code=202)
