"""A message bus that records what services send, for tests without the Service Bus stand-in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SentMessage:
    entity: str
    body: Mapping[str, Any]
    message_id: str
    correlation_id: str | None = None
    subject: str | None = None
    properties: Mapping[str, str | int] = field(default_factory=dict)
    scheduled_at: datetime | None = None
    session_id: str | None = None


class RecordingBus:
    """``MessageSender`` that keeps every message; ``fail_with`` makes the next sends raise."""

    def __init__(self) -> None:
        self.sent: list[SentMessage] = []
        self.fail_with: BaseException | None = None

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
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(
            SentMessage(
                entity,
                dict(body),
                message_id,
                correlation_id,
                subject,
                dict(properties or {}),
                scheduled_at,
                session_id,
            )
        )

    def to(self, entity: str) -> list[SentMessage]:
        """What went to one queue or topic, in order."""
        return [message for message in self.sent if message.entity == entity]
