"""Sending from the inventory services: what they need of the bus, one send at a time per entity.

``MessageBus`` shares one sender per entity across invocations and opens it lazily; when
several coroutines send on a fresh (or broken) sender at once, all but one fail while it
opens, and the failed opens leave connections behind (measured against the stand-in: 3-5 of
5 cold concurrent sends fail; after a first send, concurrent sends are fine). Until the
adapter opens its senders under its lock, the inventory services send through ``send_one``,
which serialises sends per entity within the event loop. Sends are a few milliseconds and
rare on these paths (alerts, snapshots), so the cost is negligible.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import Any, Protocol


class JsonSender(Protocol):
    """What the inventory services need from the message bus (``MessageBus`` fits)."""

    async def send_json(
        self,
        entity: str,
        body: Mapping[str, Any],
        *,
        message_id: str,
        correlation_id: str | None = None,
        subject: str | None = None,
        properties: Mapping[str, str | int] | None = None,
    ) -> None: ...


# Locks belong to one event loop; keyed weakly by loop so a test's closed loop leaves nothing.
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _lock_for(entity: str) -> asyncio.Lock:
    per_loop = _locks.setdefault(asyncio.get_running_loop(), {})
    lock = per_loop.get(entity)
    if lock is None:
        lock = per_loop[entity] = asyncio.Lock()
    return lock


async def send_one(
    bus: JsonSender,
    entity: str,
    body: Mapping[str, Any],
    *,
    message_id: str,
    subject: str | None = None,
    properties: Mapping[str, str | int] | None = None,
) -> None:
    """Send one JSON message, never concurrently with another send to the same entity."""
    async with _lock_for(entity):
        await bus.send_json(
            entity, body, message_id=message_id, subject=subject, properties=properties
        )
