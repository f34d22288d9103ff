"""What every Service Bus trigger shares: reading the message, parsing it, settling it.

On Azure an exception from a Service Bus function abandons every message the invocation
held: it comes back up to MaxDeliveryCount times, then lands in the dead-letter queue as
MaxDeliveryCountExceeded (with every valid message of its batch). No exception type
dead-letters. A message that can never succeed must be dead-lettered at once, with a reason,
by the function itself: that takes the SDK-type bindings (`ServiceBusReceivedMessage` and
`ServiceBusMessageActions`, with `auto_complete_messages=False`). The decorators here give
every trigger the same contract:

- the handler raises ``Rejected(reason, description)`` (single message) or returns the
  rejections (batch) for permanent failures: those messages are dead-lettered at once;
- the handler returns normally: the other messages are completed, one by one;
- any other exception: nothing is settled here and the host abandons what is left.

The actions client is synchronous gRPC; it runs in threads of its own so the worker's event
loop keeps serving other invocations while the host settles, and a batch's messages settle in
parallel (each call waits for the broker's confirmation).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import azurefunctions.extensions.bindings.servicebus as servicebus
from pydantic import BaseModel, ValidationError

from shared.domain.json_input import JsonRejected, read_json
from shared.observability import metrics

Model = TypeVar("Model", bound=BaseModel)
Received = servicebus.ServiceBusReceivedMessage
Actions = servicebus.ServiceBusMessageActions
_log = logging.getLogger(__name__)
MAX_DESCRIPTION = 1024
# Batches get no automatic lock renewal on the host (Service Bus extension 5.x): renew the
# whole batch this often while it is being applied (LockDuration is 1 minute by default).
BATCH_LOCK_RENEWAL_SECONDS = 20.0
# Settlement calls block on gRPC; enough threads to settle a batch of 100 in a few rounds.
_SETTLING = ThreadPoolExecutor(max_workers=32, thread_name_prefix="settle")


async def _settling(call: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    await asyncio.get_running_loop().run_in_executor(
        _SETTLING, functools.partial(call, *args, **kwargs)
    )


class Rejected(Exception):
    """This message can never succeed: dead-letter it at once with this reason."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason
        self.description = description[:MAX_DESCRIPTION]


@dataclass(frozen=True)
class Rejection:
    """One message of a batch to dead-letter, and why."""

    message: Received
    reason: str
    description: str


def body_of(message: Received) -> bytes:
    """The payload as bytes, whatever AMQP body section carried it."""
    body = message.body
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    chunks = list(body)
    if all(isinstance(chunk, bytes | bytearray) for chunk in chunks):
        return b"".join(bytes(chunk) for chunk in chunks)
    return json.dumps(chunks, default=str).encode("utf-8")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def properties_of(message: Received) -> dict[str, str]:
    """Application properties with text keys and values (the client hands back bytes)."""
    found: dict[str, str] = {}
    for key, value in (message.application_properties or {}).items():
        name, text = _text(key), _text(value)
        if name is not None and text is not None:
            found[name] = text
    return found


def message_id_of(message: Received) -> str:
    return _text(message.message_id) or ""


def correlation_id_of(message: Received) -> str | None:
    return _text(message.correlation_id)


def delivery_count_of(message: Received) -> int:
    """1 on the first delivery, as the host's Service Bus client counts."""
    return int(message.delivery_count or 1)


def parse_message(message: Received, model: type[Model]) -> Model:
    """Validate a JSON message body, or raise ``Rejected`` naming what is wrong."""
    try:
        data = read_json(body_of(message))
    except JsonRejected as refused:
        # Deep nesting, huge numbers, duplicate keys...: no retry will change that.
        raise Rejected("InvalidJson", f"body refused: {refused}") from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}"
            for item in error.errors(include_url=False, include_input=False)
        )
        raise Rejected("InvalidMessage", problems) from None


async def dead_letter(actions: Actions, message: Received, reason: str, description: str) -> None:
    await _settling(
        actions.deadletter,
        message,
        deadletter_reason=reason,
        deadletter_error_description=description[:MAX_DESCRIPTION],
    )
    _log.warning("dead-lettered message %s: %s (%s)", message_id_of(message), reason, description)


async def complete(actions: Actions, message: Received) -> None:
    await _settling(actions.complete, message)


async def _renew_locks(actions: Actions, messages: Sequence[Received], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        for message in messages:
            with contextlib.suppress(Exception):  # a lost lock shows up when settling
                await _settling(actions.renew_message_lock, message)


@contextlib.contextmanager
def _counted(queue: str, count: int) -> Iterator[None]:
    try:
        yield
    except BaseException:
        metrics.event_processed(queue, "abandoned", count)
        raise


MessageHandler = Callable[[Received], Awaitable[None]]
MessageFunction = Callable[[Received, Actions], Awaitable[None]]
BatchHandler = Callable[[list[Received]], Awaitable[Sequence[Rejection]]]
BatchFunction = Callable[[typing.List[Received], Actions], Awaitable[None]]  # noqa: UP006


def _named_like(wrapper: Any, handler: Any) -> None:
    # Not functools.wraps: the worker must see the wrapper's own signature (with the
    # settlement client), not the handler's.
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(wrapper, attribute, getattr(handler, attribute))


def settles_message(queue: str) -> Callable[[MessageHandler], MessageFunction]:
    """Complete on success, dead-letter on ``Rejected``, let the host abandon otherwise."""

    def decorate(handler: MessageHandler) -> MessageFunction:
        async def settle_message(
            msg: servicebus.ServiceBusReceivedMessage,
            message_actions: servicebus.ServiceBusMessageActions,
        ) -> None:
            with _counted(queue, 1):
                try:
                    await handler(msg)
                except Rejected as rejected:
                    await dead_letter(message_actions, msg, rejected.reason, rejected.description)
                    metrics.dead_lettered(queue, rejected.reason)
                    metrics.event_processed(queue, "dead-lettered")
                    return
                await complete(message_actions, msg)
                metrics.event_processed(queue, "completed")

        _named_like(settle_message, handler)
        return settle_message

    return decorate


def settles_batch(queue: str) -> Callable[[BatchHandler], BatchFunction]:
    """Dead-letter the rejections, complete the rest; renew the batch's locks meanwhile."""

    def decorate(handler: BatchHandler) -> BatchFunction:
        async def settle_batch(
            msgs: typing.List[servicebus.ServiceBusReceivedMessage],  # noqa: UP006 - worker
            message_actions: servicebus.ServiceBusMessageActions,
        ) -> None:
            batch = list(msgs)
            with _counted(queue, len(batch)):
                renewal = asyncio.create_task(
                    _renew_locks(message_actions, batch, BATCH_LOCK_RENEWAL_SECONDS)
                )
                try:
                    rejections = await handler(batch)
                finally:
                    renewal.cancel()
                rejected = {id(r.message): r for r in rejections}
                await asyncio.gather(
                    *(
                        dead_letter(message_actions, r.message, r.reason, r.description)
                        for r in rejections
                    ),
                    *(complete(message_actions, m) for m in batch if id(m) not in rejected),
                )
                for rejection in rejections:
                    metrics.dead_lettered(queue, rejection.reason)
            metrics.event_processed(queue, "dead-lettered", len(rejected))
            metrics.event_processed(queue, "completed", len(batch) - len(rejected))

        _named_like(settle_batch, handler)
        return settle_batch

    return decorate


def rejections_by_id(
    messages: Sequence[Received], rejected: Mapping[str, tuple[str, str]]
) -> list[Rejection]:
    """Rejections for every message whose MessageId the domain rejected (reason, detail)."""
    return [
        Rejection(m, *rejected[message_id_of(m)]) for m in messages if message_id_of(m) in rejected
    ]
