"""What the inventory services need of the message bus (``MessageBus`` fits; tests may fake it).

``MessageBus`` itself opens each sender once and serialises sends per entity, so callers send
concurrently without care.
"""

from __future__ import annotations

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
