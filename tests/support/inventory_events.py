"""Builders shared by the inventory tests (no tests here): message bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.services.inventory.events import InboundMessage

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def event(
    sku: str,
    sequence: int,
    kind: str = "adjusted",
    quantity: str | int | Decimal = 1,
    *,
    location: str = "MAIN",
    event_id: str | None = None,
    at: datetime | None = None,
    source: str = "wms",
) -> dict[str, Any]:
    """One contract message body for (sku, location)."""
    return {
        "eventId": event_id or f"{sku}|{location}|{sequence}",
        "sku": sku,
        "location": location,
        "kind": kind,
        "quantity": str(quantity),
        "sequence": sequence,
        "occurredAt": (at or T0 + timedelta(seconds=sequence)).isoformat(),
        "source": source,
    }


def inbound(*bodies: Mapping[str, Any] | bytes | str) -> list[InboundMessage]:
    """Broker messages as the trigger hands them over (MessageId = eventId when there is one)."""
    messages = []
    for number, body in enumerate(bodies):
        if isinstance(body, Mapping):
            messages.append(InboundMessage(str(body.get("eventId", number)), json.dumps(body)))
        else:
            messages.append(InboundMessage(f"raw-{number}", body))
    return messages
