"""Dead-letter queues for operators: how many, which, and replay them to their entity.

The entities are the queues and topic subscriptions of ``infra/servicebus-topology.json``
(``DEAD_LETTER_SOURCES``; a unit test keeps the two equal, because the infra folder is not
deployed with the app). An entity is named by its queue name, or ``topic:subscription``
(a colon is never part of a Service Bus name, so the id is unambiguous in a URL).

Replay and MessageIds: a copy sent under the original MessageId would be dropped silently by
duplicate detection on ``orders`` (and ``inventory-events``, ``selftest``) while the original
is within the window, so the copy gets ``<original>~replay-<digest>``, where the digest is
taken from the original id, its dead-letter sequence number and enqueue time. That id is new
for every dead-lettered copy, yet the same when one copy is replayed twice (a replay that sent
but could not complete the original), so such a repeat is dropped as a duplicate. Handlers
are idempotent by business key in the body (order id, event id, probe id), never by
MessageId, so a replay is processed like the first delivery; ``replayOf`` keeps the first
MessageId and ``replayCount`` how often it came back. A subscription's messages are replayed
to its topic, so every subscription whose rule matches gets the copy (each topic here has one
subscription).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.adapters.dead_letter_queues import (
    CopyPlan,
    DeadLetteredMessage,
    DeadLetterQueues,
    EntityAddress,
)
from shared.services.errors import NotFound

COUNT_CAP = 1000
REPLAY_SUFFIX = "~replay-"
MAX_MESSAGE_ID = 128

DEAD_LETTER_SOURCES: tuple[str, ...] = (
    "inventory-events",
    "orders",
    "erp-notifications",
    "selftest",
    "order-status:storefront",
    "stock-alerts:storefront",
)


class UnknownEntity(NotFound):
    """No queue or subscription of that name in the topology."""

    def __init__(self, entity: str) -> None:
        super().__init__("Not found", f"no queue or subscription {entity} in the topology")
        self.entity = entity


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class DeadLetterCount(_Wire):
    """Dead-lettered messages of one entity; ``display`` says "1000+" beyond the cap."""

    entity: str
    kind: Literal["queue", "subscription"]
    count: int | None = Field(None, description="null when the entity could not be read")
    capped: bool = False
    display: str
    error: str = ""
    messages: list[DeadLetterItem] = Field(
        default_factory=list, description="the first dead-lettered messages, when asked for"
    )


class DeadLetterCounts(_Wire):
    entities: list[DeadLetterCount]
    total: int
    checked_at: datetime


class DeadLetterItem(_Wire):
    message_id: str
    reason: str
    description: str
    enqueued_at: datetime | None
    delivery_count: int
    subject: str | None = None
    correlation_id: str | None = None


class DeadLetterListing(_Wire):
    entity: str
    messages: list[DeadLetterItem]


class ReplayedMessage(_Wire):
    message_id: str
    new_message_id: str | None = None
    outcome: Literal["moved", "failed"]
    error: str = ""


class ReplayResult(_Wire):
    entity: str
    limit: int
    moved: int
    failed: int
    messages: list[ReplayedMessage]


def address_of(entity: str) -> EntityAddress:
    """The address of a known entity id; ``UnknownEntity`` otherwise."""
    if entity not in DEAD_LETTER_SOURCES:
        raise UnknownEntity(entity)
    topic, _, subscription = entity.partition(":")
    return EntityAddress(topic, subscription or None)


def replay_message_id(message: DeadLetteredMessage) -> str:
    """A MessageId new per dead-lettered copy and stable across repeats (see module doc)."""
    root = message.message_id.split(REPLAY_SUFFIX, 1)[0]
    enqueued = message.enqueued_at.isoformat() if message.enqueued_at else ""
    seed = f"{message.message_id}|{message.sequence_number}|{enqueued}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:16]
    room = MAX_MESSAGE_ID - len(REPLAY_SUFFIX) - len(digest)
    return f"{root[:room]}{REPLAY_SUFFIX}{digest}"


def copy_plan(message: DeadLetteredMessage, now: datetime) -> CopyPlan:
    return CopyPlan(
        message_id=replay_message_id(message),
        properties={
            "replayOf": message.message_id.split(REPLAY_SUFFIX, 1)[0],
            "replayCount": message.replay_count + 1,
            "replayedAt": now.isoformat(),
        },
    )


async def _count_one(queues: DeadLetterQueues, entity: str, cap: int, peek: int) -> DeadLetterCount:
    kind: Literal["queue", "subscription"] = "subscription" if ":" in entity else "queue"
    try:
        seen = await queues.count(address_of(entity), cap)
        listed = (await list_messages(queues, entity, peek)).messages if seen and peek else []
    except Exception as error:  # one unreadable entity must not hide the others
        return DeadLetterCount(
            entity=entity, kind=kind, display="?", error=f"{type(error).__name__}"
        )
    capped = seen > cap
    return DeadLetterCount(
        entity=entity,
        kind=kind,
        count=min(seen, cap),
        capped=capped,
        display=f"{cap}+" if capped else str(seen),
        messages=listed,
    )


async def count_all(
    queues: DeadLetterQueues,
    entities: Sequence[str] = DEAD_LETTER_SOURCES,
    cap: int = COUNT_CAP,
    timeout: float = 10.0,
    peek: int = 0,
) -> DeadLetterCounts:
    """Counts per entity (and the first ``peek`` messages), concurrently, each bounded."""

    async def bounded(entity: str) -> DeadLetterCount:
        try:
            return await asyncio.wait_for(_count_one(queues, entity, cap, peek), timeout)
        except TimeoutError:
            kind: Literal["queue", "subscription"] = "subscription" if ":" in entity else "queue"
            return DeadLetterCount(entity=entity, kind=kind, display="?", error="timeout")

    found = list(await asyncio.gather(*(bounded(entity) for entity in entities)))
    return DeadLetterCounts(
        entities=found,
        total=sum(item.count or 0 for item in found),
        checked_at=datetime.now(UTC),
    )


async def list_messages(queues: DeadLetterQueues, entity: str, limit: int) -> DeadLetterListing:
    """The first ``limit`` dead-lettered messages of one entity (peeked, not locked)."""
    peeked = await queues.peek(address_of(entity), limit)
    return DeadLetterListing(
        entity=entity,
        messages=[
            DeadLetterItem(
                message_id=m.message_id,
                reason=m.reason,
                description=m.description,
                enqueued_at=m.enqueued_at,
                delivery_count=m.delivery_count,
                subject=m.subject,
                correlation_id=m.correlation_id,
            )
            for m in peeked
        ],
    )


async def replay(queues: DeadLetterQueues, entity: str, limit: int) -> ReplayResult:
    """Move up to ``limit`` dead-lettered messages of ``entity`` back to it."""
    address = address_of(entity)
    now = datetime.now(UTC)
    outcome = await queues.move_back(address, limit, lambda m: copy_plan(m, now))
    messages = [
        ReplayedMessage(message_id=m.message_id, new_message_id=new_id, outcome="moved")
        for m, new_id in outcome.moved
    ] + [
        ReplayedMessage(message_id=m.message_id, outcome="failed", error=error)
        for m, error in outcome.failed
    ]
    return ReplayResult(
        entity=entity,
        limit=limit,
        moved=len(outcome.moved),
        failed=len(outcome.failed),
        messages=messages,
    )
