"""In-memory queues, topics and subscriptions with Service Bus semantics.

Nothing here knows about AMQP links: the broker calls these methods from its single event
thread, so the state needs no locking. Time comes from an injectable clock (epoch seconds) so the
rules (lock expiry, scheduling, duplicate window, TTL) can be checked without sleeping.
"""

from __future__ import annotations

import bisect
import enum
import heapq
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .rules import subscription_accepts
from .sections import MessageParts, message_id_key, split_message, unpack_batch
from .topology import (
    EmulatorConfig,
    ReceiveSettings,
    Rule,
    SendSettings,
    receive_settings,
    send_settings,
)

Clock = Callable[[], float]

SCHEDULED_ENQUEUE_TIME = "x-opt-scheduled-enqueue-time"
MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
TTL_EXPIRED = "TTLExpiredException"
DEAD_LETTER_REASON = "DeadLetterReason"
DEAD_LETTER_DESCRIPTION = "DeadLetterErrorDescription"


class StoreError(Exception):
    """Base of the errors the broker turns into AMQP error conditions."""


class EntityNotFound(StoreError):
    """No queue, topic or subscription has that path."""


class OperationNotAllowed(StoreError):
    """The entity exists but cannot be used that way (receive from a topic, send to a DLQ)."""


class LockLost(StoreError):
    """The lock token is unknown or its lock expired; the message may be with another receiver."""


class MessageNotFound(StoreError):
    """No deferred or scheduled message has that sequence number."""


class MessageState(enum.IntEnum):
    """Values of the ``x-opt-message-state`` annotation the client reads as ``state``."""

    ACTIVE = 0
    DEFERRED = 1
    SCHEDULED = 2


@dataclass
class StoredMessage:
    """One copy of a message in one queue or subscription (or its dead-letter queue)."""

    sequence_number: int
    parts: MessageParts
    enqueued_at: float
    visible_at: float
    expires_at: float | None
    delivery_count: int = 0
    deferred: bool = False
    lock_token: uuid.UUID | None = None
    locked_until: float = 0.0
    dead_letter_properties: dict[str, str] = field(default_factory=dict)
    dead_letter_source: str | None = None

    def state(self, now: float) -> MessageState:
        if self.deferred:
            return MessageState.DEFERRED
        if self.visible_at > now:
            return MessageState.SCHEDULED
        return MessageState.ACTIVE

    def copy(self) -> StoredMessage:
        """A fresh copy (one per subscription) sharing the immutable sections."""
        return StoredMessage(
            sequence_number=self.sequence_number,
            parts=self.parts,
            enqueued_at=self.enqueued_at,
            visible_at=self.visible_at,
            expires_at=self.expires_at,
        )


@dataclass(frozen=True)
class EntityCounts:
    """Counts an operations view shows; ``active`` includes locked messages, as in Service Bus."""

    active: int
    locked: int
    scheduled: int
    deferred: int
    dead_lettered: int

    def as_dict(self) -> dict[str, int]:
        return {
            "active": self.active,
            "locked": self.locked,
            "scheduled": self.scheduled,
            "deferred": self.deferred,
            "deadLettered": self.dead_lettered,
        }


class ReceivableEntity:
    """A queue, a subscription or a dead-letter sub-queue: something a receiver reads from."""

    def __init__(
        self,
        path: str,
        settings: ReceiveSettings,
        clock: Clock,
        *,
        dead_letter_queue: ReceivableEntity | None = None,
    ) -> None:
        self.path = path
        self.settings = settings
        self.dead_letter_queue = dead_letter_queue
        self._clock = clock
        self._messages: dict[int, StoredMessage] = {}
        self._order: list[int] = []
        # Heaps with lazy deletion: an entry is checked against the message when popped.
        self._ready: list[int] = []
        self._scheduled: list[tuple[float, int]] = []
        self._lock_deadlines: list[tuple[float, int, uuid.UUID]] = []
        self._expiries: list[tuple[float, int]] = []
        self._locks: dict[uuid.UUID, StoredMessage] = {}

    def now(self) -> float:
        return self._clock()

    def __repr__(self) -> str:
        return f"ReceivableEntity({self.path!r})"

    # -- adding ---------------------------------------------------------------------------

    def add(self, message: StoredMessage) -> None:
        now = self._clock()
        message.lock_token = None
        self._messages[message.sequence_number] = message
        bisect.insort(self._order, message.sequence_number)
        if message.expires_at is not None:
            heapq.heappush(self._expiries, (message.expires_at, message.sequence_number))
        if message.visible_at > now:
            heapq.heappush(self._scheduled, (message.visible_at, message.sequence_number))
        elif not message.deferred:
            heapq.heappush(self._ready, message.sequence_number)

    def _remove(self, message: StoredMessage) -> None:
        self._messages.pop(message.sequence_number, None)
        index = bisect.bisect_left(self._order, message.sequence_number)
        if index < len(self._order) and self._order[index] == message.sequence_number:
            del self._order[index]
        if message.lock_token is not None:
            self._locks.pop(message.lock_token, None)
            message.lock_token = None

    # -- receiving ------------------------------------------------------------------------

    def has_ready_message(self) -> bool:
        self.process_timers()
        now = self._clock()
        while self._ready:
            candidate = self._messages.get(self._ready[0])
            if candidate is None or not self._is_ready(candidate, now):
                heapq.heappop(self._ready)
                continue
            if candidate.expires_at is not None and candidate.expires_at <= now:
                heapq.heappop(self._ready)
                self._expire(candidate)
                continue
            return True
        return False

    def _is_ready(self, message: StoredMessage, now: float) -> bool:
        return message.lock_token is None and not message.deferred and message.visible_at <= now

    def receive(self, *, lock: bool) -> StoredMessage | None:
        """Take the next visible message: lock it (peek-lock) or remove it (receive-and-delete)."""
        if not self.has_ready_message():
            return None
        message = self._messages[heapq.heappop(self._ready)]
        if lock:
            self._lock(message)
        else:
            self._remove(message)
        return message

    def _lock(self, message: StoredMessage) -> None:
        token = uuid.uuid4()
        message.lock_token = token
        message.locked_until = self._clock() + self.settings.lock_duration.total_seconds()
        self._locks[token] = message
        heapq.heappush(self._lock_deadlines, (message.locked_until, message.sequence_number, token))

    def _locked(self, token: uuid.UUID) -> StoredMessage:
        self.process_timers()
        message = self._locks.get(token)
        if message is None:
            raise LockLost(
                "The lock supplied is invalid. Either the lock expired, or the message has "
                "already been removed from the queue."
            )
        return message

    def is_locked(self, token: uuid.UUID) -> bool:
        self.process_timers()
        return token in self._locks

    def complete(self, token: uuid.UUID) -> None:
        self._remove(self._locked(token))

    def abandon(self, token: uuid.UUID, *, failed: bool = True) -> None:
        """Give the message back; ``failed=False`` is a release that does not count a delivery."""
        self._unlock(self._locked(token), failed=failed)

    def defer(self, token: uuid.UUID) -> None:
        message = self._locked(token)
        self._locks.pop(token, None)
        message.lock_token = None
        message.deferred = True

    def dead_letter(
        self, token: uuid.UUID, reason: str | None = None, description: str | None = None
    ) -> None:
        message = self._locked(token)
        if self.dead_letter_queue is None:
            raise OperationNotAllowed("a message in a dead-letter queue cannot be dead-lettered")
        self._move_to_dead_letter(message, reason, description)

    def renew(self, token: uuid.UUID) -> float:
        message = self._locked(token)
        message.locked_until = self._clock() + self.settings.lock_duration.total_seconds()
        heapq.heappush(self._lock_deadlines, (message.locked_until, message.sequence_number, token))
        return message.locked_until

    def _unlock(self, message: StoredMessage, *, failed: bool) -> None:
        if message.lock_token is not None:
            self._locks.pop(message.lock_token, None)
            message.lock_token = None
        if failed:
            message.delivery_count += 1
            limit = self.settings.max_delivery_count
            if self.dead_letter_queue is not None and message.delivery_count >= limit:
                self._move_to_dead_letter(
                    message,
                    MAX_DELIVERY_COUNT_EXCEEDED,
                    f"Message could not be consumed after {limit} delivery attempts.",
                )
                return
        if not message.deferred:
            heapq.heappush(self._ready, message.sequence_number)

    def _move_to_dead_letter(
        self, message: StoredMessage, reason: str | None, description: str | None
    ) -> None:
        assert self.dead_letter_queue is not None
        self._remove(message)
        message.deferred = False
        message.dead_letter_source = self.path
        message.dead_letter_properties = {
            key: value
            for key, value in ((DEAD_LETTER_REASON, reason), (DEAD_LETTER_DESCRIPTION, description))
            if value is not None
        }
        message.expires_at = None  # dead-lettered messages do not expire
        self.dead_letter_queue.add(message)

    # -- deferred and scheduled -----------------------------------------------------------

    def receive_deferred(
        self, sequence_numbers: Iterable[int], *, lock: bool
    ) -> list[StoredMessage]:
        self.process_timers()
        found: list[StoredMessage] = []
        for sequence_number in sequence_numbers:
            message = self._messages.get(int(sequence_number))
            if message is None or not message.deferred or message.lock_token is not None:
                raise MessageNotFound(f"deferred message {sequence_number} not found")
            found.append(message)
        for message in found:
            if lock:
                self._lock(message)
            else:
                self._remove(message)
        return found

    def cancel_scheduled(self, sequence_number: int) -> bool:
        message = self._messages.get(sequence_number)
        if message is None or message.visible_at <= self._clock():
            return False
        self._remove(message)
        return True

    # -- browsing and counting ------------------------------------------------------------

    def peek(self, from_sequence_number: int, count: int) -> list[StoredMessage]:
        self.process_timers()
        start = bisect.bisect_left(self._order, from_sequence_number)
        return [self._messages[seq] for seq in self._order[start : start + max(count, 0)]]

    def counts(self) -> EntityCounts:
        self.process_timers()
        if self.dead_letter_queue is not None:
            self.dead_letter_queue.process_timers()
        now = self._clock()
        scheduled = deferred = 0
        for message in self._messages.values():
            if message.deferred:
                deferred += 1
            elif message.visible_at > now:
                scheduled += 1
        dead = len(self.dead_letter_queue._messages) if self.dead_letter_queue else 0
        return EntityCounts(
            active=len(self._messages) - scheduled - deferred,
            locked=len(self._locks),
            scheduled=scheduled,
            deferred=deferred,
            dead_lettered=dead,
        )

    # -- time -----------------------------------------------------------------------------

    def process_timers(self) -> bool:
        """Apply everything due by now; True if a message may have become receivable."""
        now = self._clock()
        changed = False
        while self._lock_deadlines and self._lock_deadlines[0][0] <= now:
            deadline, _, token = heapq.heappop(self._lock_deadlines)
            message = self._locks.get(token)
            if message is not None and message.locked_until == deadline:
                self._unlock(message, failed=True)
                changed = True
        while self._scheduled and self._scheduled[0][0] <= now:
            _, seq = heapq.heappop(self._scheduled)
            message = self._messages.get(seq)
            if message is not None and not message.deferred and message.lock_token is None:
                heapq.heappush(self._ready, seq)
                changed = True
        while self._expiries and self._expiries[0][0] <= now:
            expires_at, seq = heapq.heappop(self._expiries)
            message = self._messages.get(seq)
            if message is None or message.expires_at != expires_at:
                continue
            if message.lock_token is not None:
                # A locked message expires once its lock ends, not under its receiver.
                heapq.heappush(self._expiries, (message.locked_until, seq))
                message.expires_at = message.locked_until
                continue
            self._expire(message)
        return changed

    def _expire(self, message: StoredMessage) -> None:
        if self.settings.dead_letter_on_expiration and self.dead_letter_queue is not None:
            self._move_to_dead_letter(
                message, TTL_EXPIRED, "The message expired and was dead lettered."
            )
        else:
            self._remove(message)


class DuplicateDetector:
    """MessageIds accepted within the window; a repeat inside it is dropped by the entity."""

    def __init__(self, window_seconds: float, clock: Clock) -> None:
        self._window = window_seconds
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def is_duplicate(self, key: str) -> bool:
        now = self._clock()
        while self._seen:
            oldest_key, accepted_at = next(iter(self._seen.items()))
            if now - accepted_at < self._window:
                break
            del self._seen[oldest_key]
        return key in self._seen

    def remember(self, key: str) -> None:
        self._seen[key] = self._clock()
        self._seen.move_to_end(key)


@dataclass
class _Destination:
    entity: ReceivableEntity
    rules: list[Rule]


class SendTarget:
    """A queue or topic as seen by senders: sequence numbers, duplicate detection, fan-out."""

    def __init__(
        self, path: str, settings: SendSettings, destinations: list[_Destination], clock: Clock
    ) -> None:
        self.path = path
        self.settings = settings
        self.destinations = destinations
        self._clock = clock
        self._next_sequence_number = 1
        self._duplicates = (
            DuplicateDetector(settings.duplicate_detection_window.total_seconds(), clock)
            if settings.requires_duplicate_detection
            else None
        )

    def accept_encoded(self, raw: bytes) -> tuple[list[int | None], set[ReceivableEntity]]:
        """Accept one transfer (a message or a batch envelope)."""
        parts = split_message(raw)
        inner = unpack_batch(parts)
        messages = [split_message(item) for item in inner] if inner is not None else [parts]
        sequence_numbers: list[int | None] = []
        touched: set[ReceivableEntity] = set()
        for message in messages:
            sequence_number, entities = self.accept(message)
            sequence_numbers.append(sequence_number)
            touched.update(entities)
        return sequence_numbers, touched

    def accept(self, parts: MessageParts) -> tuple[int | None, list[ReceivableEntity]]:
        """Store one message; return its sequence number, or None if dropped as a duplicate."""
        key = message_id_key(parts.message_id)
        if self._duplicates is not None and key is not None:
            if self._duplicates.is_duplicate(key):
                return None, []
            self._duplicates.remember(key)
        now = self._clock()
        visible_at = max(now, _scheduled_time(parts) or now)
        ttl = self.settings.default_time_to_live.total_seconds()
        if parts.ttl_ms is not None and parts.ttl_ms > 0:
            ttl = min(ttl, parts.ttl_ms / 1000)
        sequence_number = self._next_sequence_number
        self._next_sequence_number += 1
        original = StoredMessage(
            sequence_number=sequence_number,
            parts=parts,
            enqueued_at=visible_at,
            visible_at=visible_at,
            expires_at=visible_at + ttl,
        )
        touched = []
        for destination in self.destinations:
            if subscription_accepts(destination.rules, parts):
                destination.entity.add(original.copy())
                touched.append(destination.entity)
        return sequence_number, touched

    def cancel_scheduled(self, sequence_number: int) -> bool:
        cancelled = [d.entity.cancel_scheduled(sequence_number) for d in self.destinations]
        return any(cancelled)


def _scheduled_time(parts: MessageParts) -> float | None:
    value: Any = parts.annotations.get(SCHEDULED_ENQUEUE_TIME)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float) and value > 0:
        return float(value) / 1000
    return None


class Namespace:
    """All entities of one namespace, looked up by lower-cased path."""

    def __init__(self, config: EmulatorConfig, clock: Clock = time.time) -> None:
        self.name = config.namespace.name
        self._clock = clock
        self._send_targets: dict[str, SendTarget] = {}
        self._receivables: dict[str, ReceivableEntity] = {}
        self._topic_paths: set[str] = set()
        ns = config.namespace
        for queue in ns.queues:
            entity = self._receivable(queue.name, receive_settings(queue.properties))
            self._send_targets[queue.name.lower()] = SendTarget(
                queue.name, send_settings(queue.properties), [_Destination(entity, [])], clock
            )
        for topic in ns.topics:
            destinations = [
                _Destination(
                    self._receivable(
                        f"{topic.name}/Subscriptions/{sub.name}", receive_settings(sub.properties)
                    ),
                    sub.rules,
                )
                for sub in topic.subscriptions
            ]
            self._topic_paths.add(topic.name.lower())
            self._send_targets[topic.name.lower()] = SendTarget(
                topic.name, send_settings(topic.properties), destinations, clock
            )

    def _receivable(self, path: str, settings: ReceiveSettings) -> ReceivableEntity:
        dead_letter = ReceivableEntity(f"{path}/$DeadLetterQueue", settings, self._clock)
        entity = ReceivableEntity(path, settings, self._clock, dead_letter_queue=dead_letter)
        self._receivables[path.lower()] = entity
        return entity

    def exists(self, path: str) -> bool:
        key = path.lower()
        return key in self._send_targets or key in self._receivables

    def send_target(self, path: str, *, dead_letter: bool = False) -> SendTarget:
        key = path.lower()
        if key in self._send_targets and not dead_letter:
            return self._send_targets[key]
        if self.exists(key):
            raise OperationNotAllowed(f"cannot send to '{path}'")
        raise EntityNotFound(f"The messaging entity '{self.name}:{path}' could not be found.")

    def receivable(self, path: str, *, dead_letter: bool = False) -> ReceivableEntity:
        key = path.lower()
        entity = self._receivables.get(key)
        if entity is None:
            if key in self._topic_paths:
                raise OperationNotAllowed(f"cannot receive from topic '{path}'; use a subscription")
            raise EntityNotFound(f"The messaging entity '{self.name}:{path}' could not be found.")
        if dead_letter:
            assert entity.dead_letter_queue is not None
            return entity.dead_letter_queue
        return entity

    def receivables(self) -> list[ReceivableEntity]:
        """Every queue, subscription and dead-letter queue."""
        result: list[ReceivableEntity] = []
        for entity in self._receivables.values():
            result.append(entity)
            if entity.dead_letter_queue is not None:
                result.append(entity.dead_letter_queue)
        return result

    def process_timers(self) -> list[ReceivableEntity]:
        return [entity for entity in self.receivables() if entity.process_timers()]

    def counts(self) -> dict[str, dict[str, int]]:
        return {entity.path: entity.counts().as_dict() for entity in self._receivables.values()}
