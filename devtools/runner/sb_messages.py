"""Convert received Service Bus messages into the worker's `func.ServiceBusMessage`, and
recognise the runner's dead-letter convention.

Delivery count: the AMQP header counts earlier failed deliveries (0 on the first), while the
Functions host (.NET SDK) reports this delivery included (1 on the first). The runner reports
the host's number, so a message abandoned once arrives with `delivery_count == 2`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
from azure.servicebus import ServiceBusReceivedMessage
from azure.servicebus.amqp import AmqpMessageBodyType

DEAD_LETTER_CLASS_NAME = "DeadLetter"


def _text(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def _properties(raw: dict[Any, Any] | None) -> dict[str, Any]:
    # The client hands back application properties with bytes keys and values.
    return {str(_text(k)): _text(v) for k, v in (raw or {}).items()}


def message_body(message: ServiceBusReceivedMessage) -> bytes:
    """The payload as bytes whatever AMQP body section carried it."""
    body_type = message.body_type
    body = message.body
    if body_type == AmqpMessageBodyType.DATA:
        return b"".join(bytes(chunk) for chunk in body)
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    if body_type == AmqpMessageBodyType.SEQUENCE:
        body = list(body)
    return json.dumps(body, default=str).encode("utf-8")


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def to_function_message(message: ServiceBusReceivedMessage) -> func.ServiceBusMessage:
    """What the Python worker passes for a `serviceBusTrigger` parameter."""
    properties = _properties(message.application_properties)
    raw_count = message.delivery_count
    return func.servicebus.ServiceBusMessage(
        body=message_body(message),
        trigger_metadata=None,
        application_properties=properties,
        user_properties=dict(properties),
        content_type=message.content_type,
        correlation_id=_text(message.correlation_id),
        dead_letter_error_description=message.dead_letter_error_description,
        dead_letter_reason=message.dead_letter_reason,
        dead_letter_source=message.dead_letter_source,
        delivery_count=None if raw_count is None else raw_count + 1,
        enqueued_sequence_number=message.enqueued_sequence_number,
        enqueued_time_utc=_aware(message.enqueued_time_utc),
        expires_at_utc=_aware(message.expires_at_utc),
        label=message.subject,
        locked_until=_aware(message.locked_until_utc),
        lock_token=str(message.lock_token),
        message_id=str(_text(message.message_id) or ""),
        partition_key=message.partition_key,
        reply_to=message.reply_to,
        reply_to_session_id=message.reply_to_session_id,
        scheduled_enqueue_time_utc=_aware(message.scheduled_enqueue_time_utc),
        sequence_number=message.sequence_number,
        session_id=message.session_id,
        subject=message.subject,
        time_to_live=message.time_to_live,
        to=message.to,
    )


def synthetic_message(body: str) -> func.ServiceBusMessage:
    """A message for an on-demand run (`POST /admin/functions/{name}`): nothing to settle."""
    now = datetime.now(UTC)
    return func.servicebus.ServiceBusMessage(
        body=body.encode("utf-8"),
        application_properties={},
        user_properties={},
        message_id=uuid.uuid4().hex,
        delivery_count=1,
        enqueued_time_utc=now,
    )


def adapt_for_parameter(message: func.ServiceBusMessage, annotation: Any) -> Any:
    """A `str`/`bytes` parameter gets the body, as the worker converts it; else the message."""
    if annotation is str:
        return message.get_body().decode("utf-8")
    if annotation is bytes:
        return message.get_body()
    return message


@dataclass(frozen=True)
class DeadLetterRequest:
    """The function asked for its message(s) to be dead-lettered now, not retried."""

    reason: str
    description: str
    message_ids: frozenset[str] | None


def dead_letter_request(error: BaseException | None) -> DeadLetterRequest | None:
    """Recognise an exception class named `DeadLetter` (any module, or a subclass of one).

    Matched by name and attributes, never by import, so the product defines its own class.
    `reason` and `description` become the dead-letter reason and error description; in batch
    mode an optional `message_ids` attribute limits dead-lettering to those messages.
    """
    if error is None:
        return None
    if not any(cls.__name__ == DEAD_LETTER_CLASS_NAME for cls in type(error).__mro__):
        return None
    reason = getattr(error, "reason", None) or DEAD_LETTER_CLASS_NAME
    description = getattr(error, "description", None)
    if description is None:
        description = str(error)
    ids = getattr(error, "message_ids", None)
    return DeadLetterRequest(
        reason=str(reason),
        description=str(description),
        message_ids=frozenset(str(i) for i in ids) if ids else None,
    )
