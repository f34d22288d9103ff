"""Durable storage for the stand-in: SQLite in WAL mode under a data directory.

Without a data directory the stand-in keeps everything in memory (the default, and nothing here
runs). With one, the store records what changed (`ChangeLog`) and the broker writes it
(`Journal.write`, one transaction) before any frame that depends on it leaves: a send is
accepted, a settlement confirmed, a message delivered under a lock or a management request
answered only once the change is on disk. That is what Service Bus promises for a send: the
client's send completes when the broker has accepted the message ("Settling send operations",
https://learn.microsoft.com/azure/service-bus-messaging/message-transfers-locks-settlement).

Kept: every queue's, subscription's and dead-letter queue's messages (as encoded sections), their
sequence numbers, enqueue/visible/expiry times, delivery counts, deferral, whether a lock was
held, dead-letter reason and description; each entity's next sequence number; session state; the
duplicate-detection history within its window. Not kept: locks (a restart loses them, as a
broker failover does; the messages they held come back with DeliveryCount + 1, see
`store.Namespace.restore`), sessions' locks, links and connections.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import ReceivableEntity, SendTarget

DATABASE_NAME = "servicebus-standin.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    entity TEXT NOT NULL,
    sequence_number INTEGER NOT NULL,
    body BLOB NOT NULL,
    enqueued_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    expires_at REAL,
    delivery_count INTEGER NOT NULL,
    deferred INTEGER NOT NULL,
    locked INTEGER NOT NULL,
    dead_letter TEXT,
    dead_letter_source TEXT,
    PRIMARY KEY (entity, sequence_number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sequences (
    target TEXT PRIMARY KEY,
    next_sequence_number INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_states (
    entity TEXT NOT NULL,
    session_id TEXT NOT NULL,
    state BLOB NOT NULL,
    updated_at REAL,
    PRIMARY KEY (entity, session_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS duplicates (
    target TEXT NOT NULL,
    message_key TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    PRIMARY KEY (target, message_key)
) WITHOUT ROWID;
"""


@dataclass
class ChangeLog:
    """What changed since the last write, by key; the current value is read at write time."""

    messages: dict[tuple[str, int], ReceivableEntity] = field(default_factory=dict)
    sessions: dict[tuple[str, str], ReceivableEntity] = field(default_factory=dict)
    targets: dict[str, SendTarget] = field(default_factory=dict)
    duplicates: list[tuple[SendTarget, str, float]] = field(default_factory=list)

    def message(self, entity: ReceivableEntity, sequence_number: int) -> None:
        self.messages[(entity.path, sequence_number)] = entity

    def session(self, entity: ReceivableEntity, session_id: str) -> None:
        self.sessions[(entity.path, session_id)] = entity

    def target(self, target: SendTarget) -> None:
        self.targets[target.path] = target

    def duplicate(self, target: SendTarget, key: str, accepted_at: float) -> None:
        self.duplicates.append((target, key, accepted_at))

    def __bool__(self) -> bool:
        return bool(self.messages or self.sessions or self.targets or self.duplicates)

    def clear(self) -> None:
        self.messages.clear()
        self.sessions.clear()
        self.targets.clear()
        self.duplicates.clear()


@dataclass(frozen=True)
class MessageRow:
    entity: str
    sequence_number: int
    body: bytes
    enqueued_at: float
    visible_at: float
    expires_at: float | None
    delivery_count: int
    deferred: bool
    locked: bool
    dead_letter_properties: dict[str, str]
    dead_letter_source: str | None


class Journal:
    """The SQLite file under ``data_dir``; used from the broker's thread only."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DATABASE_NAME
        # The broker thread opens it, and only ever uses it from there (autocommit mode; every
        # write is an explicit transaction).
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed transaction survives a power loss too, not only a killed process.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        # Rows known to exist, so a change of state does not rewrite the message body.
        self._stored: set[tuple[str, int]] = set()

    def close(self) -> None:
        self._db.close()

    # -- reading at start-up --------------------------------------------------------------

    def messages(self) -> Iterator[MessageRow]:
        cursor = self._db.execute(
            "SELECT entity, sequence_number, body, enqueued_at, visible_at, expires_at,"
            " delivery_count, deferred, locked, dead_letter, dead_letter_source"
            " FROM messages ORDER BY entity, sequence_number"
        )
        for row in cursor:
            self._stored.add((row[0], row[1]))
            yield MessageRow(
                entity=row[0],
                sequence_number=row[1],
                body=bytes(row[2]),
                enqueued_at=row[3],
                visible_at=row[4],
                expires_at=row[5],
                delivery_count=row[6],
                deferred=bool(row[7]),
                locked=bool(row[8]),
                dead_letter_properties=json.loads(row[9]) if row[9] else {},
                dead_letter_source=row[10],
            )

    def next_sequence_numbers(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT target, next_sequence_number FROM sequences"))

    def session_states(self) -> Iterator[tuple[str, str, bytes, float | None]]:
        for entity, session_id, state, updated_at in self._db.execute(
            "SELECT entity, session_id, state, updated_at FROM session_states"
        ):
            yield entity, session_id, bytes(state), updated_at

    def duplicates(self) -> Iterator[tuple[str, str, float]]:
        yield from self._db.execute(
            "SELECT target, message_key, accepted_at FROM duplicates ORDER BY accepted_at"
        )

    def forget_entity(self, entity: str) -> None:
        """Drop rows of an entity the topology no longer has."""
        self._db.execute("DELETE FROM messages WHERE entity = ?", (entity,))
        self._stored = {key for key in self._stored if key[0] != entity}

    # -- writing --------------------------------------------------------------------------

    def write(self, changes: ChangeLog, now: float) -> None:
        """Write every change in one transaction; nothing of it if anything fails."""
        db = self._db
        stored = self._stored
        added: list[tuple[str, int]] = []
        removed: list[tuple[str, int]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for (path, sequence_number), entity in changes.messages.items():
                key = (path, sequence_number)
                message = entity.stored_message(sequence_number)
                if message is None:
                    if key in stored:
                        db.execute(
                            "DELETE FROM messages WHERE entity = ? AND sequence_number = ?", key
                        )
                        stored.discard(key)
                        removed.append(key)
                    continue
                state = (
                    message.enqueued_at,
                    message.visible_at,
                    message.expires_at,
                    message.delivery_count,
                    int(message.deferred),
                    int(message.lock_token is not None),
                    json.dumps(message.dead_letter_properties)
                    if message.dead_letter_properties
                    else None,
                    message.dead_letter_source,
                )
                if key in stored:
                    db.execute(
                        "UPDATE messages SET enqueued_at = ?, visible_at = ?, expires_at = ?,"
                        " delivery_count = ?, deferred = ?, locked = ?, dead_letter = ?,"
                        " dead_letter_source = ? WHERE entity = ? AND sequence_number = ?",
                        (*state, path, sequence_number),
                    )
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (path, sequence_number, message.encoded(), *state),
                    )
                    stored.add(key)
                    added.append(key)
            for (path, session_id), entity in changes.sessions.items():
                state_value, updated_at = entity.stored_session_state(session_id)
                if state_value is None:
                    db.execute(
                        "DELETE FROM session_states WHERE entity = ? AND session_id = ?",
                        (path, session_id),
                    )
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO session_states VALUES (?, ?, ?, ?)",
                        (path, session_id, state_value, updated_at),
                    )
            for path, target in changes.targets.items():
                db.execute(
                    "INSERT OR REPLACE INTO sequences VALUES (?, ?)",
                    (path, target.next_sequence_number),
                )
            pruned: set[str] = set()
            for target, key, accepted_at in changes.duplicates:
                db.execute(
                    "INSERT OR REPLACE INTO duplicates VALUES (?, ?, ?)",
                    (target.path, key, accepted_at),
                )
                if target.path not in pruned:
                    pruned.add(target.path)
                    db.execute(
                        "DELETE FROM duplicates WHERE target = ? AND accepted_at <= ?",
                        (target.path, now - target.duplicate_window_seconds),
                    )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            stored.difference_update(added)
            stored.update(removed)
            raise
