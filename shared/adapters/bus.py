"""Sending to Service Bus with the real client: one connection per process, senders reused.

The health probe's peek goes over a receiver link kept open per entity (opening an AMQP link
costs far more than a peek); a link that fails or is cut off is closed and opened afresh.

Handlers on the receiving side are idempotent, so a send that may have happened twice is safe;
MessageId carries the business id so duplicate detection on the entity drops a re-send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Hashable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver, ServiceBusSender
from azure.servicebus.exceptions import ServiceBusError
from opentelemetry.trace import Status, StatusCode

from shared.observability.propagation import inject_into_properties
from shared.observability.spans import producer_span

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
_CLOSE_TIMEOUT_SECONDS = 5.0


class BusSendFailed(RuntimeError):
    """The message may not have been sent; the caller keeps it for a later re-send."""


class MessageBus:
    """Reused senders per queue or topic over one ``ServiceBusClient``."""

    def __init__(self, client: ServiceBusClient) -> None:
        self._client = client
        self._senders: dict[str, ServiceBusSender] = {}
        self._send_locks: dict[str, asyncio.Lock] = {}
        self._lock = asyncio.Lock()
        self._peekers: KeptReceivers[str] = KeptReceivers(client.get_queue_receiver)

    @classmethod
    def from_connection_string(cls, connection: str) -> MessageBus:
        return cls(ServiceBusClient.from_connection_string(connection))

    @classmethod
    def from_namespace(cls, fully_qualified_namespace: str, credential: Any) -> MessageBus:
        return cls(ServiceBusClient(fully_qualified_namespace, credential))

    async def _sender(self, entity: str) -> ServiceBusSender:
        sender = self._senders.get(entity)
        if sender is None:
            async with self._lock:
                sender = self._senders.get(entity)
                if sender is None:
                    # get_queue_sender works for topics too: the address is the entity path.
                    sender = self._client.get_queue_sender(entity)
                    await sender.__aenter__()
                    self._send_locks[entity] = asyncio.Lock()
                    self._senders[entity] = sender
        return sender

    async def send_json(
        self,
        entity: str,
        body: Mapping[str, Any],
        *,
        message_id: str,
        correlation_id: str | None = None,
        subject: str | None = None,
        properties: Mapping[str, str | int] | None = None,
        scheduled_at: datetime | None = None,
        session_id: str | None = None,
    ) -> None:
        """Send one JSON message; ``BusSendFailed`` when the broker did not confirm it.

        ``session_id`` is required by entities with RequiresSession (ordered per session).
        """
        with producer_span(entity, message_id, correlation_id) as span:
            application_properties: dict[str | bytes, Any] = {
                k: v for k, v in (properties or {}).items()
            }
            # The receiver continues this trace (the producer span is the parent).
            inject_into_properties(application_properties)
            message = ServiceBusMessage(
                json.dumps(body, default=str, separators=(",", ":")),
                message_id=message_id,
                correlation_id=correlation_id,
                subject=subject,
                content_type="application/json",
                application_properties=application_properties,
                scheduled_enqueue_time_utc=scheduled_at,
                session_id=session_id,
            )
            try:
                # Opening the link can fail too (broker unreachable): same answer as a send.
                sender = await self._sender(entity)
                # One send at a time per link: the async client can write concurrent transfers
                # out of delivery-id order, which a strict AMQP peer rejects as a session error.
                async with self._send_locks[entity]:
                    await sender.send_messages(message)
            except ServiceBusError as error:
                span.set_status(Status(StatusCode.ERROR, "send not confirmed"))
                raise BusSendFailed(f"send to {entity} failed: {error}") from error

    async def peek_count(self, entity: str, max_count: int = 1) -> int:
        """Peek without consuming: proves the namespace and the entity answer (health)."""

        async def peek(receiver: ServiceBusReceiver) -> int:
            # From the start each time: the client reads 0 as "after the last peeked message".
            batch = await receiver.peek_messages(max_message_count=max_count, sequence_number=1)
            return len(batch)

        return await self._peekers.use(entity, peek)

    async def close(self) -> None:
        await self._peekers.close()
        for sender in self._senders.values():
            await sender.close()
        self._senders.clear()
        await self._client.close()


class KeptReceivers(Generic[K]):
    """Peek-only receivers kept open per key for the process, one peek at a time on each.

    A peek on a kept link that fails (the broker restarted, the link was detached) is tried
    once more on a new link, so a recovered broker never shows as down; a peek that is
    cancelled (a caller's timeout) drops its link, whose close runs in the background so a
    hung broker cannot hang the caller.
    """

    def __init__(self, open_receiver: Callable[[K], ServiceBusReceiver]) -> None:
        self._open = open_receiver
        self._receivers: dict[K, ServiceBusReceiver] = {}
        self._locks: dict[K, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def use(self, key: K, action: Callable[[ServiceBusReceiver], Awaitable[T]]) -> T:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            reused = key in self._receivers
            try:
                return await action(await self._receiver(key))
            except Exception:
                self._drop(key)
                if not reused:
                    raise
            except BaseException:  # cancelled mid-peek: the link's state is unknown
                self._drop(key)
                raise
            try:
                return await action(await self._receiver(key))
            except BaseException:
                self._drop(key)
                raise

    async def _receiver(self, key: K) -> ServiceBusReceiver:
        receiver = self._receivers.get(key)
        if receiver is None:
            receiver = self._open(key)
            self._receivers[key] = receiver  # dropped again if opening fails
            await receiver.__aenter__()
        return receiver

    def _drop(self, key: K) -> None:
        receiver = self._receivers.pop(key, None)
        if receiver is not None:
            task = asyncio.get_running_loop().create_task(_close_quietly(receiver))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        receivers = list(self._receivers.values())
        self._receivers.clear()
        for receiver in receivers:
            await _close_quietly(receiver)


async def _close_quietly(receiver: ServiceBusReceiver) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(receiver.close(), _CLOSE_TIMEOUT_SECONDS)
