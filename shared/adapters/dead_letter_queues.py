"""Dead-letter sub-queues with the real Service Bus client: peek, count, move back.

Counting peeks (never receives), so looking at the operations page cannot change delivery
counts or take locks; the peeking links are kept open per entity for the process (opening an
AMQP link costs far more than a peek) and replaced when one fails.

Moving back receives in peek-lock, sends a copy to the entity and only
then completes the dead-lettered original; if the send fails the original is abandoned and
stays where it was. The copy's MessageId comes from the caller (the service decides how a
replay survives duplicate detection).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver, ServiceBusSender
from azure.servicebus.amqp import AmqpMessageBodyType

from shared.adapters.bus import KeptReceivers

PEEK_BATCH = 100
# Peeks always name where to start: the client reads 0 as "after the last message this
# receiver peeked", which on a kept receiver would skip what the previous peek saw.
FIRST_SEQUENCE = 1
RECEIVE_BATCH = 50
# Application properties Service Bus itself sets on a dead-lettered message; a replayed copy
# must not carry the old verdict.
DEAD_LETTER_PROPERTIES = frozenset({"DeadLetterReason", "DeadLetterErrorDescription"})


@dataclass(frozen=True)
class EntityAddress:
    """A queue, or a topic subscription (whose messages are replayed to the topic)."""

    queue_or_topic: str
    subscription: str | None = None

    @property
    def send_to(self) -> str:
        return self.queue_or_topic


@dataclass(frozen=True)
class DeadLetteredMessage:
    """What an operator needs to decide about one dead-lettered message."""

    message_id: str
    sequence_number: int
    reason: str
    description: str
    enqueued_at: datetime | None
    delivery_count: int
    subject: str | None
    correlation_id: str | None
    replay_count: int = 0


@dataclass(frozen=True)
class CopyPlan:
    """How the copy of one dead-lettered message is sent: its new id and extra properties."""

    message_id: str
    properties: Mapping[str, str | int]


@dataclass
class MoveOutcome:
    """What one move-back call did, per message."""

    moved: list[tuple[DeadLetteredMessage, str]] = field(default_factory=list)
    failed: list[tuple[DeadLetteredMessage, str]] = field(default_factory=list)


class UnsupportedBody(ValueError):
    """A dead-lettered message whose body is not a data body; it is left in place."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _properties(message: ServiceBusReceivedMessage) -> dict[str, Any]:
    return {_text(k): v for k, v in (message.application_properties or {}).items()}


def describe(message: ServiceBusReceivedMessage) -> DeadLetteredMessage:
    properties = _properties(message)
    reason = message.dead_letter_reason or properties.get("DeadLetterReason") or ""
    description = (
        message.dead_letter_error_description or properties.get("DeadLetterErrorDescription") or ""
    )
    return DeadLetteredMessage(
        message_id=_text(message.message_id or ""),
        sequence_number=int(message.sequence_number or 0),
        reason=_text(reason),
        description=_text(description),
        enqueued_at=message.enqueued_time_utc,
        delivery_count=int(message.delivery_count or 0),
        subject=message.subject,
        correlation_id=message.correlation_id,
        replay_count=_small_int(properties.get("replayCount")),
    )


def _small_int(value: Any) -> int:
    try:
        return max(0, int(_text(value))) if value is not None else 0
    except ValueError:
        return 0


def copy_of(message: ServiceBusReceivedMessage, plan: CopyPlan) -> ServiceBusMessage:
    """The message to send back: same body, properties, correlation id, subject and session."""
    if message.body_type is not AmqpMessageBodyType.DATA:
        raise UnsupportedBody(f"body type {message.body_type} cannot be replayed")
    body = b"".join(bytes(part) for part in message.body)
    properties: dict[str | bytes, Any] = {
        key: value
        for key, value in _properties(message).items()
        if key not in DEAD_LETTER_PROPERTIES
    }
    properties.update(plan.properties)
    return ServiceBusMessage(
        body,
        message_id=plan.message_id,
        correlation_id=message.correlation_id,
        subject=message.subject,
        content_type=message.content_type,
        reply_to=message.reply_to,
        session_id=message.session_id,  # a session entity refuses a copy without it
        application_properties=properties,
    )


class DeadLetterQueues:
    """Dead-letter access over a ``ServiceBusClient`` owned (and closed) by someone else."""

    def __init__(self, client: ServiceBusClient, receive_wait_seconds: float = 1.0) -> None:
        self._client = client
        self._wait = receive_wait_seconds
        self._peekers: KeptReceivers[EntityAddress] = KeptReceivers(self._receiver)

    async def close(self) -> None:
        """Close the kept peeking links (the client stays its owner's to close)."""
        await self._peekers.close()

    def _receiver(self, entity: EntityAddress) -> ServiceBusReceiver:
        if entity.subscription is None:
            return self._client.get_queue_receiver(
                entity.queue_or_topic,
                sub_queue=ServiceBusSubQueue.DEAD_LETTER,
                max_wait_time=self._wait,
                prefetch_count=0,
            )
        return self._client.get_subscription_receiver(
            entity.queue_or_topic,
            entity.subscription,
            sub_queue=ServiceBusSubQueue.DEAD_LETTER,
            max_wait_time=self._wait,
            prefetch_count=0,
        )

    def _sender(self, entity: EntityAddress) -> ServiceBusSender:
        if entity.subscription is None:
            return self._client.get_queue_sender(entity.send_to)
        return self._client.get_topic_sender(entity.send_to)

    async def count(self, entity: EntityAddress, cap: int) -> int:
        """Dead-lettered messages, counted by peeking up to ``cap + 1`` (more means "cap+")."""

        async def count(receiver: ServiceBusReceiver) -> int:
            seen = 0
            next_sequence = FIRST_SEQUENCE
            while seen <= cap:
                batch = await receiver.peek_messages(
                    max_message_count=min(PEEK_BATCH, cap + 1 - seen),
                    sequence_number=next_sequence,
                )
                if not batch:
                    break
                seen += len(batch)
                next_sequence = max(int(m.sequence_number or 0) for m in batch) + 1
            return seen

        return await self._peekers.use(entity, count)

    async def peek(self, entity: EntityAddress, limit: int) -> list[DeadLetteredMessage]:
        """The first ``limit`` dead-lettered messages, oldest first, without locking them."""

        async def first(receiver: ServiceBusReceiver) -> list[ServiceBusReceivedMessage]:
            return list(
                await receiver.peek_messages(
                    max_message_count=limit, sequence_number=FIRST_SEQUENCE
                )
            )

        batch = await self._peekers.use(entity, first)
        return [describe(message) for message in batch[:limit]]

    async def move_back(
        self,
        entity: EntityAddress,
        limit: int,
        plan_for: Callable[[DeadLetteredMessage], CopyPlan],
    ) -> MoveOutcome:
        """Send up to ``limit`` dead-lettered messages back to the entity, one at a time."""
        outcome = MoveOutcome()
        tried: set[int] = set()
        async with self._receiver(entity) as receiver, self._sender(entity) as sender:
            while len(outcome.moved) + len(outcome.failed) < limit:
                wanted = min(RECEIVE_BATCH, limit - len(outcome.moved) - len(outcome.failed))
                batch = await receiver.receive_messages(
                    max_message_count=wanted, max_wait_time=self._wait
                )
                if not batch:
                    break
                repeated = False
                for message in batch:
                    seen = describe(message)
                    sent = {new_id for _m, new_id in outcome.moved}
                    if seen.sequence_number in tried or seen.message_id in sent:
                        # A message this call already tried, or a copy it sent that the
                        # handler rejected again at once: never chase our own tail.
                        repeated = True
                        await receiver.abandon_message(message)
                        continue
                    tried.add(seen.sequence_number)
                    await self._move_one(receiver, sender, message, plan_for(seen), outcome)
                if repeated:
                    break
        return outcome

    async def _move_one(
        self,
        receiver: ServiceBusReceiver,
        sender: ServiceBusSender,
        message: ServiceBusReceivedMessage,
        plan: CopyPlan,
        outcome: MoveOutcome,
    ) -> None:
        seen = describe(message)
        try:
            await sender.send_messages(copy_of(message, plan))
        except Exception as error:  # anything that stops the send leaves the original in place
            outcome.failed.append((seen, f"send failed: {type(error).__name__}: {error}"[:300]))
            # If even the abandon fails, the lock expires on its own: the original stays put.
            with contextlib.suppress(Exception):
                await receiver.abandon_message(message)
            return
        try:
            await receiver.complete_message(message)
        except Exception as error:
            # The copy is out; a later replay sends it again under the same MessageId, which
            # duplicate detection drops and idempotent handlers would ignore anyway.
            outcome.failed.append(
                (seen, f"copied but not removed: {type(error).__name__}: {error}"[:300])
            )
            return
        outcome.moved.append((seen, plan.message_id))
