"""How a stored message looks on the wire when delivered, peeked or received by sequence number."""

from __future__ import annotations

import uuid
from typing import Any

from proton import symbol, timestamp, uint

from .sections import build_message
from .store import StoredMessage

SEQUENCE_NUMBER = symbol("x-opt-sequence-number")
ENQUEUED_TIME = symbol("x-opt-enqueued-time")
LOCKED_UNTIL = symbol("x-opt-locked-until")
LOCK_TOKEN = symbol("x-opt-lock-token")
MESSAGE_STATE = symbol("x-opt-message-state")
DEAD_LETTER_SOURCE = symbol("x-opt-deadletter-source")


def to_timestamp(epoch_seconds: float) -> timestamp:
    return timestamp(round(epoch_seconds * 1000))


def encode_stored_message(
    message: StoredMessage,
    *,
    lock_token: uuid.UUID | None = None,
    state: int | None = None,
) -> bytes:
    """The message as a receiver sees it: its own sections plus what the broker stamped on it.

    ``delivery-count`` is always present (0 on the first delivery): the client reads it from the
    header, and a missing header would show as None rather than 0.
    """
    original = message.parts.header or []

    def header_field(index: int) -> Any:
        return original[index] if index < len(original) else None

    header = [
        header_field(0),
        header_field(1),
        header_field(2),
        message.delivery_count == 0,
        uint(message.delivery_count),
    ]
    annotations: dict[Any, Any] = dict(message.parts.annotations)
    annotations[SEQUENCE_NUMBER] = int(message.sequence_number)
    annotations[ENQUEUED_TIME] = to_timestamp(message.enqueued_at)
    delivery_annotations: dict[Any, Any] | None = None
    if lock_token is not None:
        annotations[LOCKED_UNTIL] = to_timestamp(message.locked_until)
        delivery_annotations = {LOCK_TOKEN: lock_token}
    if state is not None:
        annotations[MESSAGE_STATE] = int(state)
    if message.dead_letter_source is not None:
        annotations[DEAD_LETTER_SOURCE] = message.dead_letter_source
    return build_message(
        message.parts,
        header=header,
        annotations=annotations,
        delivery_annotations=delivery_annotations,
        extra_application_properties=message.dead_letter_properties or None,
    )
