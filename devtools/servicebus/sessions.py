"""Message sessions of one queue or subscription: who holds each session's lock, and its state.

A session exists while it has messages or stored state. One receiver at a time holds its lock
(``owner``); the lock lasts the entity's LockDuration and is renewed through ``$management``.
The messages a session receiver locked share the session's lock: when it lapses they come back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass
class MessageSession:
    session_id: str
    state: bytes | None = None
    state_updated_at: float | None = None
    owner: uuid.UUID | None = None
    locked_until: float = 0.0

    def is_locked(self, now: float) -> bool:
        return self.owner is not None and self.locked_until > now

    def lock(self, owner: uuid.UUID, until: float) -> None:
        self.owner = owner
        self.locked_until = until

    def release(self) -> None:
        self.owner = None
        self.locked_until = 0.0
