"""Sending to Service Bus with the real client: one connection per process, senders reused.

Handlers on the receiving side are idempotent, so a send that may have happened twice is safe;
MessageId carries the business id so duplicate detection on the entity drops a re-send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient, ServiceBusSender
from azure.servicebus.exceptions import ServiceBusError
from opentelemetry.trace import Status, StatusCode

from shared.observability.propagation import inject_into_properties
from shared.observability.spans import producer_span


class BusSendFailed(RuntimeError):
    """The message may not have been sent; the caller keeps it for a later re-send."""


class MessageBus:
    """Reused senders per queue or topic over one ``ServiceBusClient``."""

    def __init__(self, client: ServiceBusClient) -> None:
        self._client = client
        self._senders: dict[str, ServiceBusSender] = {}
        self._send_locks: dict[str, asyncio.Lock] = {}
        self._lock = asyncio.Lock()

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
        async with self._client.get_queue_receiver(entity) as receiver:
            return len(await receiver.peek_messages(max_message_count=max_count))

    async def close(self) -> None:
        for sender in self._senders.values():
            await sender.close()
        self._senders.clear()
        await self._client.close()
