"""The product's real ``MessageBus`` against a private Service Bus stand-in, for integration tests.

What a service sends goes through the real ``azure-servicebus`` client to a broker, and the
test reads back what the broker holds (receiving and completing it), so a test never checks
what a fake recorded. ``fail = True`` sends through a second real client whose broker is not
there, so a send fails the way it fails in production (``BusSendFailed``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.servicebus import NEXT_AVAILABLE_SESSION, ServiceBusReceivedMessage
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver
from azure.servicebus.exceptions import OperationTimeoutError

from devtools.servicebus.testing import connection_string, free_port
from shared.adapters.bus import MessageBus

# Topics and the subscription a test reads them through.
SUBSCRIPTIONS = {"stock-alerts": "storefront", "order-status": "storefront"}
# Entities that require sessions (order-status: SessionId = order id); read session by session.
SESSION_ENTITIES = {"order-status"}
_RECEIVE_WAIT = 0.5


@dataclass(frozen=True)
class Arrived:
    """One message as the broker delivered it."""

    entity: str
    body: Mapping[str, Any]
    message_id: str
    subject: str | None
    properties: Mapping[str, Any]
    delivery_count: int


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def arrived(entity: str, message: ServiceBusReceivedMessage) -> Arrived:
    body = b"".join(message.body) if not isinstance(message.body, bytes) else message.body
    return Arrived(
        entity=entity,
        body=json.loads(body),
        message_id=str(message.message_id),
        subject=message.subject,
        properties={_text(k): _text(v) for k, v in (message.application_properties or {}).items()},
        delivery_count=int(message.delivery_count or 0),
    )


class BrokerBus:
    """Sends with the real client; `received` what the broker delivered, in arrival order."""

    def __init__(self, connection: str) -> None:
        self.bus = MessageBus(ServiceBusClient.from_connection_string(connection, retry_total=0))
        self._down = MessageBus(
            ServiceBusClient.from_connection_string(
                connection_string("127.0.0.1", free_port()), retry_total=0
            )
        )
        self._reader = ServiceBusClient.from_connection_string(connection, retry_total=0)
        self.fail = False
        self.received: list[Arrived] = []

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
        target = self._down if self.fail else self.bus
        await target.send_json(
            entity,
            body,
            message_id=message_id,
            correlation_id=correlation_id,
            subject=subject,
            properties=properties,
            scheduled_at=scheduled_at,
            session_id=session_id,
        )

    async def to(self, entity: str) -> list[Arrived]:
        """Everything the broker delivered on `entity` so far (receiving what is waiting)."""
        self.received.extend(await self.take(entity))
        return [message for message in self.received if message.entity == entity]

    async def take(self, entity: str) -> list[Arrived]:
        """Receive and complete what waits on `entity` (a topic: through its subscription)."""
        subscription = SUBSCRIPTIONS.get(entity)
        sessions = entity in SESSION_ENTITIES
        found: list[Arrived] = []
        while True:
            session_id = NEXT_AVAILABLE_SESSION if sessions else None
            receiver = (
                self._reader.get_subscription_receiver(
                    entity, subscription, session_id=session_id, max_wait_time=1
                )
                if subscription
                else self._reader.get_queue_receiver(entity, session_id=session_id, max_wait_time=1)
            )
            try:
                async with receiver:
                    await self._take_from(entity, receiver, found)
            except OperationTimeoutError:
                return found  # no session has anything left
            if not sessions:
                return found

    @staticmethod
    async def _take_from(entity: str, receiver: ServiceBusReceiver, found: list[Arrived]) -> None:
        while True:
            batch = await receiver.receive_messages(100, max_wait_time=_RECEIVE_WAIT)
            if not batch:
                return
            for message in batch:
                found.append(arrived(entity, message))
                await receiver.complete_message(message)

    async def purge(self, *entities: str) -> None:
        """Forget what earlier tests left on these entities (all at once: each take waits)."""
        await asyncio.gather(*(self.take(entity) for entity in entities))
        self.received.clear()

    async def close(self) -> None:
        for client in (self.bus, self._down):
            await client.close()
        await self._reader.close()
