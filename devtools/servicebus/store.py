"""In-memory queues, topics and subscriptions with Service Bus semantics.

Nothing here knows about AMQP links: the broker calls these methods from its single event
thread, so the state needs no locking. Time comes from an injectable clock (epoch seconds) so the
rules (lock expiry, scheduling, duplicate window, TTL) can be checked without sleeping.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import heapq
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .journal import ChangeLog, Journal
from .rules import CompiledRule, compile_rule, route
from .sections import (
    MessageParts,
    encode_parts,
    message_id_key,
    split_message,
    unpack_batch,
    with_application_properties,
)
from .sessions import MessageSession
from .topology import (
    EmulatorConfig,
    ReceiveSettings,
    SendSettings,
    receive_settings,
    send_settings,
)

Clock = Callable[[], float]

_LOG = logging.getLogger("devtools.servicebus")

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


class SessionRequired(OperationNotAllowed):
    """A RequiresSession entity got a message without SessionId, or a receiver without session."""


class SessionNotSupported(OperationNotAllowed):
    """A session receiver or session operation on an entity that does not require sessions."""


class SessionCannotBeLocked(StoreError):
    """The named session is locked by another receiver."""


class SessionLockLost(StoreError):
    """The session lock expired or was released; its receiver must accept the session again."""


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

    @property
    def session_id(self) -> str | None:
        value = self.parts.session_id
        if value is None:
            return None
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    def state(self, now: float) -> MessageState:
        if self.deferred:
            return MessageState.DEFERRED
        if self.visible_at > now:
            return MessageState.SCHEDULED
        return MessageState.ACTIVE

    def encoded(self) -> bytes:
        """The sections to store; ``split_message`` reads them back."""
        return encode_parts(self.parts)

    def copy(self, parts: MessageParts | None = None) -> StoredMessage:
        """A fresh copy (one per subscription); ``parts`` when an action changed them."""
        return StoredMessage(
            sequence_number=self.sequence_number,
            parts=parts if parts is not None else self.parts,
            enqueued_at=self.enqueued_at,
            visible_at=self.visible_at,
            expires_at=self.expires_at,
            dead_letter_source=self.dead_letter_source,
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
        # On a dead-letter queue: the queue or subscription it belongs to.
        self.dead_letter_parent: ReceivableEntity | None = None
        self._clock = clock
        self._messages: dict[int, StoredMessage] = {}
        self._order: list[int] = []
        # Heaps with lazy deletion: an entry is checked against the message when popped.
        self._ready: list[int] = []
        self._scheduled: list[tuple[float, int]] = []
        self._lock_deadlines: list[tuple[float, int, uuid.UUID]] = []
        self._expiries: list[tuple[float, int]] = []
        self._locks: dict[uuid.UUID, StoredMessage] = {}
        self._sessions: dict[str, MessageSession] = {}
        # Set by a durable namespace: every change of a message or session state is noted there.
        self.changes: ChangeLog | None = None
        # Auto-forwarding (ForwardTo, or ForwardDeadLetteredMessagesTo on a dead-letter queue):
        # what arrives here moves on to that queue or topic at once.
        self.forward_to: SendTarget | None = None

    @property
    def requires_session(self) -> bool:
        return self.settings.requires_session

    def now(self) -> float:
        return self._clock()

    def __repr__(self) -> str:
        return f"ReceivableEntity({self.path!r})"

    def _track(self, sequence_number: int) -> None:
        if self.changes is not None:
            self.changes.message(self, sequence_number)

    def stored_message(self, sequence_number: int) -> StoredMessage | None:
        """The message with that sequence number, if the entity holds it (for the journal)."""
        return self._messages.get(sequence_number)

    def stored_session_state(self, session_id: str) -> tuple[bytes | None, float | None]:
        session = self._sessions.get(session_id)
        if session is None:
            return None, None
        return session.state, session.state_updated_at

    # -- adding ---------------------------------------------------------------------------

    def add(self, message: StoredMessage) -> None:
        if self.forward_to is not None:
            self.forward_to.forward(message, self)
            return
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
        self._track(message.sequence_number)

    def _remove(self, message: StoredMessage) -> None:
        self._messages.pop(message.sequence_number, None)
        self._track(message.sequence_number)
        index = bisect.bisect_left(self._order, message.sequence_number)
        if index < len(self._order) and self._order[index] == message.sequence_number:
            del self._order[index]
        if message.lock_token is not None:
            self._locks.pop(message.lock_token, None)
            message.lock_token = None

    def restore(self, message: StoredMessage) -> None:
        """Put back a message read from the journal."""
        self.add(message)

    def forget(self, sequence_number: int) -> None:
        """A stored message this entity no longer holds (it was forwarded on a restart)."""
        self._track(sequence_number)

    def lose_lock(self, message: StoredMessage) -> None:
        """A restored message was locked before the restart, and that lock did not survive.

        As when a lock expires, the message is available again and its delivery count goes up
        (which dead-letters it at MaxDeliveryCount).
        """
        self._unlock(message, failed=True)

    def restore_session_state(
        self, session_id: str, state: bytes, updated_at: float | None
    ) -> None:
        session = self._sessions.setdefault(session_id, MessageSession(session_id))
        session.state = state
        session.state_updated_at = updated_at

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

    def receive(self, *, lock: bool, session_id: str | None = None) -> StoredMessage | None:
        """Take the next visible message: lock it (peek-lock) or remove it (receive-and-delete).

        On a session entity ``session_id`` names the session the receiver holds; its messages
        come in sequence-number order and share the session's lock.
        """
        if session_id is not None:
            return self._receive_from_session(session_id, lock=lock)
        if not self.has_ready_message():
            return None
        message = self._messages[heapq.heappop(self._ready)]
        if lock:
            self._lock(message)
        else:
            self._remove(message)
        return message

    def _receive_from_session(self, session_id: str, *, lock: bool) -> StoredMessage | None:
        message = self._first_ready(session_id)
        if message is None:
            return None
        if lock:
            session = self._sessions.get(session_id)
            self._lock(message, until=session.locked_until if session else None)
        else:
            self._remove(message)
        return message

    def _first_ready(self, session_id: str | None) -> StoredMessage | None:
        """The oldest receivable message of a session (any session when None)."""
        self.process_timers()
        now = self._clock()
        for sequence_number in list(self._order):
            message = self._messages.get(sequence_number)
            if message is None or not self._is_ready(message, now):
                continue
            if session_id is not None and message.session_id != session_id:
                continue
            if session_id is None:
                holder = self._sessions.get(message.session_id or "")
                if holder is not None and holder.is_locked(now):
                    continue
            if message.expires_at is not None and message.expires_at <= now:
                self._expire(message)
                continue
            return message
        return None

    def has_ready_in_session(self, session_id: str) -> bool:
        return self._first_ready(session_id) is not None

    def _lock(self, message: StoredMessage, until: float | None = None) -> None:
        token = uuid.uuid4()
        message.lock_token = token
        message.locked_until = (
            until
            if until is not None
            else self._clock() + self.settings.lock_duration.total_seconds()
        )
        self._locks[token] = message
        heapq.heappush(self._lock_deadlines, (message.locked_until, message.sequence_number, token))
        self._track(message.sequence_number)

    def _locked(self, token: uuid.UUID) -> StoredMessage:
        self.process_timers()
        message = self._locks.get(token)
        if message is None and self.requires_session:
            raise SessionLockLost(
                "The session lock has expired or was released; accept the session again."
            )
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
        self._track(message.sequence_number)

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
        self._track(message.sequence_number)
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
        # x-opt-deadletter-source marks messages auto-forwarded out of a dead-letter queue
        # (ForwardDeadLetteredMessagesTo), which the stand-in does not do; never set in place.
        message.dead_letter_properties = {
            key: value
            for key, value in ((DEAD_LETTER_REASON, reason), (DEAD_LETTER_DESCRIPTION, description))
            if value is not None
        }
        message.expires_at = None  # dead-lettered messages do not expire
        self.dead_letter_queue.add(message)

    # -- deferred and scheduled -----------------------------------------------------------

    def receive_deferred(
        self, sequence_numbers: Iterable[int], *, lock: bool, session_id: str | None = None
    ) -> list[StoredMessage]:
        self.process_timers()
        found: list[StoredMessage] = []
        for sequence_number in sequence_numbers:
            message = self._messages.get(int(sequence_number))
            if message is None or not message.deferred or message.lock_token is not None:
                raise MessageNotFound(f"deferred message {sequence_number} not found")
            if session_id is not None and message.session_id != session_id:
                raise MessageNotFound(
                    f"deferred message {sequence_number} is not in session {session_id!r}"
                )
            found.append(message)
        session = self._sessions.get(session_id) if session_id is not None else None
        for message in found:
            if lock:
                self._lock(message, until=session.locked_until if session else None)
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

    def peek(
        self, from_sequence_number: int, count: int, session_id: str | None = None
    ) -> list[StoredMessage]:
        self.process_timers()
        start = bisect.bisect_left(self._order, from_sequence_number)
        if session_id is None:
            return [self._messages[seq] for seq in self._order[start : start + max(count, 0)]]
        found: list[StoredMessage] = []
        for seq in self._order[start:]:
            if len(found) >= count:
                break
            if self._messages[seq].session_id == session_id:
                found.append(self._messages[seq])
        return found

    # -- sessions -------------------------------------------------------------------------

    def accept_session(self, session_id: str | None, owner: uuid.UUID) -> MessageSession | None:
        """Lock a named session, or the next one with a receivable message (None if none)."""
        if not self.requires_session:
            raise SessionNotSupported(
                f"'{self.path}' does not require sessions; use a receiver without a session"
            )
        now = self._clock()
        if session_id is None:
            first = self._first_ready(None)
            if first is None or first.session_id is None:
                return None
            session_id = first.session_id
        session = self._sessions.setdefault(session_id, MessageSession(session_id))
        if session.is_locked(now) and session.owner != owner:
            raise SessionCannotBeLocked(
                f"The requested session '{session_id}' cannot be accepted. "
                "It may be locked by another receiver."
            )
        session.lock(owner, now + self.settings.lock_duration.total_seconds())
        return session

    def holds_session(self, session_id: str, owner: uuid.UUID) -> bool:
        self.process_timers()
        session = self._sessions.get(session_id)
        return session is not None and session.owner == owner

    def release_session(self, session_id: str, owner: uuid.UUID) -> None:
        """The receiver closed: free the session; messages it still held come back."""
        session = self._sessions.get(session_id)
        if session is None or session.owner != owner:
            return
        session.release()
        for message in list(self._locks.values()):
            if message.session_id == session_id:
                self._unlock(message, failed=True)

    def _held_session(self, session_id: str) -> MessageSession:
        self.process_timers()
        if not self.requires_session:
            raise SessionNotSupported(f"'{self.path}' does not require sessions")
        session = self._sessions.get(session_id)
        if session is None or not session.is_locked(self._clock()):
            raise SessionLockLost(
                f"The session lock for '{session_id}' has expired or is not held; "
                "accept the session again."
            )
        return session

    def renew_session(self, session_id: str) -> float:
        session = self._held_session(session_id)
        session.locked_until = self._clock() + self.settings.lock_duration.total_seconds()
        for token, message in self._locks.items():
            if message.session_id == session_id:
                message.locked_until = session.locked_until
                heapq.heappush(
                    self._lock_deadlines, (message.locked_until, message.sequence_number, token)
                )
        return session.locked_until

    def session_state(self, session_id: str) -> bytes | None:
        return self._held_session(session_id).state

    def set_session_state(self, session_id: str, state: bytes | None) -> None:
        session = self._held_session(session_id)
        session.state = state
        session.state_updated_at = self._clock()
        if self.changes is not None:
            self.changes.session(self, session_id)

    def session_ids(self, updated_after: float | None = None) -> list[str]:
        """Sessions with messages or state; with ``updated_after``, those with newer state."""
        self.process_timers()
        if updated_after is not None:
            return sorted(
                session.session_id
                for session in self._sessions.values()
                if session.state_updated_at is not None and session.state_updated_at > updated_after
            )
        ids = {m.session_id for m in self._messages.values() if m.session_id is not None}
        ids.update(s.session_id for s in self._sessions.values() if s.state is not None)
        return sorted(ids)

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
        for session in self._sessions.values():
            if session.owner is not None and session.locked_until <= now:
                session.release()
                changed = True
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

    def remember(self, key: str) -> float:
        accepted_at = self._clock()
        self._seen[key] = accepted_at
        self._seen.move_to_end(key)
        return accepted_at

    def restore(self, key: str, accepted_at: float) -> None:
        """Remember a MessageId accepted before a restart (oldest first), if still in the window."""
        if self._clock() - accepted_at < self._window:
            self._seen[key] = accepted_at
            self._seen.move_to_end(key)


@dataclass
class _Destination:
    entity: ReceivableEntity
    rules: list[CompiledRule]


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
        # Set by a durable namespace (see ReceivableEntity.changes).
        self.changes: ChangeLog | None = None

    @property
    def next_sequence_number(self) -> int:
        return self._next_sequence_number

    @property
    def duplicate_window_seconds(self) -> float:
        return self.settings.duplicate_detection_window.total_seconds()

    def restore(self, next_sequence_number: int, duplicates: list[tuple[str, float]]) -> None:
        """Continue numbering after a restart, and remember MessageIds still in the window."""
        self._next_sequence_number = max(self._next_sequence_number, next_sequence_number)
        if self._duplicates is not None:
            for key, accepted_at in duplicates:
                self._duplicates.restore(key, accepted_at)

    def accept_encoded(self, raw: bytes) -> tuple[list[int | None], set[ReceivableEntity]]:
        """Accept one transfer (a message or a batch envelope); all of a batch or none of it."""
        parts = split_message(raw)
        inner = unpack_batch(parts)
        messages = [split_message(item) for item in inner] if inner is not None else [parts]
        plans = [self._route(message) for message in messages]
        sequence_numbers: list[int | None] = []
        touched: set[ReceivableEntity] = set()
        for message, copies in zip(messages, plans, strict=True):
            sequence_number, entities = self._store(message, copies)
            sequence_numbers.append(sequence_number)
            touched.update(entities)
        return sequence_numbers, touched

    def forward(self, message: StoredMessage, source: ReceivableEntity) -> None:
        """Take a message auto-forwarded from ``source``, as a new message of this entity.

        Out of a dead-letter queue it keeps its dead-letter reason and description and is marked
        with the entity it was dead-lettered from (``x-opt-deadletter-source``), which Service Bus
        sets only on such forwarded messages. Duplicate detection is not applied to a forward.
        """
        parts = message.parts
        dead_letter_source = None
        if source.dead_letter_parent is not None:
            parts = with_application_properties(parts, dict(message.dead_letter_properties))
            dead_letter_source = source.dead_letter_parent.path
        self._store(parts, self._route(parts), dead_letter_source=dead_letter_source, dedup=False)

    def accept(self, parts: MessageParts) -> tuple[int | None, list[ReceivableEntity]]:
        """Store one message; return its sequence number, or None if dropped as a duplicate."""
        return self._store(parts, self._route(parts))

    def _route(self, parts: MessageParts) -> list[tuple[ReceivableEntity, MessageParts]]:
        """The copy each queue or subscription gets; refuses what a session entity cannot take."""
        copies: list[tuple[ReceivableEntity, MessageParts]] = []
        for destination in self.destinations:
            routed = route(destination.rules, parts)
            if routed is None:
                continue
            if destination.entity.requires_session and routed.session_id in (None, "", b""):
                raise SessionRequired(
                    "The SessionId was not set on a message, and it cannot be sent to the entity "
                    f"'{destination.entity.path}'. Entities that have session support enabled can "
                    "only receive messages that have the SessionId set to a valid value."
                )
            copies.append((destination.entity, routed))
        return copies

    def _store(
        self,
        parts: MessageParts,
        copies: list[tuple[ReceivableEntity, MessageParts]],
        *,
        dead_letter_source: str | None = None,
        dedup: bool = True,
    ) -> tuple[int | None, list[ReceivableEntity]]:
        key = message_id_key(parts.message_id)
        if dedup and self._duplicates is not None and key is not None:
            if self._duplicates.is_duplicate(key):
                return None, []
            accepted_at = self._duplicates.remember(key)
            if self.changes is not None:
                self.changes.duplicate(self, key, accepted_at)
        now = self._clock()
        visible_at = max(now, _scheduled_time(parts) or now)
        ttl = self.settings.default_time_to_live.total_seconds()
        if parts.ttl_ms is not None and parts.ttl_ms > 0:
            ttl = min(ttl, parts.ttl_ms / 1000)
        sequence_number = self._next_sequence_number
        self._next_sequence_number += 1
        if self.changes is not None:
            self.changes.target(self)
        original = StoredMessage(
            sequence_number=sequence_number,
            parts=parts,
            enqueued_at=visible_at,
            visible_at=visible_at,
            expires_at=visible_at + ttl,
            dead_letter_source=dead_letter_source,
        )
        touched = []
        for entity, routed in copies:
            entity.add(original.copy(routed))
            touched.append(entity)
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
    """All entities of one namespace, looked up by lower-cased path.

    With a ``journal`` the namespace is durable: it starts from what the journal holds, and
    ``commit()`` writes every change since the last one (the broker calls it before answering).
    Without one (the default) everything stays in memory and ``commit()`` does nothing.
    """

    def __init__(
        self, config: EmulatorConfig, clock: Clock = time.time, *, journal: Journal | None = None
    ) -> None:
        self.name = config.namespace.name
        self._clock = clock
        self._journal = journal
        self._changes: ChangeLog | None = None
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
                    [compile_rule(rule) for rule in sub.rules],
                )
                for sub in topic.subscriptions
            ]
            self._topic_paths.add(topic.name.lower())
            self._send_targets[topic.name.lower()] = SendTarget(
                topic.name, send_settings(topic.properties), destinations, clock
            )
        self._wire_forwarding(config)
        if journal is not None:
            self._restore(journal)

    # -- durability -----------------------------------------------------------------------

    @property
    def durable(self) -> bool:
        return self._journal is not None

    def _restore(self, journal: Journal) -> None:
        """Load what the journal holds, then note every later change for ``commit``."""
        entities = {entity.path.lower(): entity for entity in self.receivables()}
        restored = 0
        dropped: set[str] = set()
        lost_locks: list[tuple[ReceivableEntity, StoredMessage]] = []
        # Held by an entity that now auto-forwards (the topology changed): forwarded once the
        # destinations know their next sequence numbers.
        to_forward: list[tuple[ReceivableEntity, StoredMessage]] = []
        for row in journal.messages():
            entity = entities.get(row.entity.lower())
            if entity is None:
                dropped.add(row.entity)
                continue
            message = StoredMessage(
                sequence_number=row.sequence_number,
                parts=split_message(row.body),
                enqueued_at=row.enqueued_at,
                visible_at=row.visible_at,
                expires_at=row.expires_at,
                delivery_count=row.delivery_count,
                deferred=row.deferred,
                dead_letter_properties=row.dead_letter_properties,
                dead_letter_source=row.dead_letter_source,
            )
            if entity.forward_to is not None:
                to_forward.append((entity, message))
                continue
            entity.restore(message)
            if row.locked:
                lost_locks.append((entity, message))
            restored += 1
        for path in sorted(dropped):
            _LOG.warning("stored messages of %r dropped: the topology has no such entity", path)
            journal.forget_entity(path)
        for path, session_id, state, updated_at in journal.session_states():
            entity = entities.get(path.lower())
            if entity is not None:
                entity.restore_session_state(session_id, state, updated_at)
        next_numbers = {
            path.lower(): number for path, number in journal.next_sequence_numbers().items()
        }
        duplicates: dict[str, list[tuple[str, float]]] = {}
        for path, key, accepted_at in journal.duplicates():
            duplicates.setdefault(path.lower(), []).append((key, accepted_at))
        for key, target in self._send_targets.items():
            highest = max(
                (
                    sequence_number
                    for destination in target.destinations
                    for entity in (destination.entity, destination.entity.dead_letter_queue)
                    if entity is not None
                    for sequence_number in entity._order
                ),
                default=0,
            )
            target.restore(max(next_numbers.get(key, 1), highest + 1), duplicates.get(key, []))
        self._changes = ChangeLog()
        for entity in self.receivables():
            entity.changes = self._changes
        for target in self._send_targets.values():
            target.changes = self._changes
        # The locks these messages were under are gone: they come back as after a lock expiry.
        for entity, message in lost_locks:
            entity.lose_lock(message)
        for entity, message in to_forward:
            entity.forget(message.sequence_number)
            entity.add(message)
        self.commit()
        _LOG.info(
            "restored %s messages from %s (%s were locked: delivery count + 1)",
            restored,
            journal.path,
            len(lost_locks),
        )

    def commit(self) -> None:
        """Write what changed since the last commit (durable namespaces only)."""
        if self._journal is None or not self._changes:
            return
        assert self._changes is not None
        self._journal.write(self._changes, self._clock())
        self._changes.clear()

    def close(self) -> None:
        if self._journal is not None:
            self.commit()
            self._journal.close()

    def _receivable(self, path: str, settings: ReceiveSettings) -> ReceivableEntity:
        # A dead-letter queue never requires sessions, even under a session entity.
        dead_letter = ReceivableEntity(
            f"{path}/$DeadLetterQueue",
            dataclasses.replace(settings, requires_session=False),
            self._clock,
        )
        entity = ReceivableEntity(path, settings, self._clock, dead_letter_queue=dead_letter)
        dead_letter.dead_letter_parent = entity
        self._receivables[path.lower()] = entity
        return entity

    def _wire_forwarding(self, config: EmulatorConfig) -> None:
        ns = config.namespace
        sources = [(q.name, q.properties) for q in ns.queues] + [
            (f"{t.name}/Subscriptions/{s.name}", s.properties)
            for t in ns.topics
            for s in t.subscriptions
        ]
        for path, props in sources:
            entity = self._receivables[path.lower()]
            if props.forward_to:
                entity.forward_to = self._send_targets[props.forward_to.lower()]
            if props.forward_dead_lettered_messages_to and entity.dead_letter_queue is not None:
                entity.dead_letter_queue.forward_to = self._send_targets[
                    props.forward_dead_lettered_messages_to.lower()
                ]

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
