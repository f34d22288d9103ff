"""What the host puts on the wire for each trigger, and how it reads the worker's answers.

Trigger data and trigger metadata are shaped as the Functions host sends them to the Python
worker; the worker's own converters (azure-functions, and for SDK-type bindings the
azurefunctions-extensions packages) turn them into the objects the function receives:

- HTTP: `RpcHttp` with method, original URL, headers, query, route values, raw body bytes.
- Timer: JSON `{"Schedule", "ScheduleStatus", "IsPastDue"}`.
- Service Bus, `func.ServiceBusMessage`: the body bytes (a `collection_bytes` for a batch)
  with trigger metadata (`MessageId`, `DeliveryCount`, `UserProperties`, ... and their
  `...Array` forms for a batch).
- Service Bus, SDK type (`SupportsDeferredBinding`): model-binding data whose content is the
  lock token's 16 bytes, `x-opt-lock-token`, then the AMQP-encoded message, as the host's
  Service Bus extension builds it; a batch is a collection of those.

Delivery count: the host's Service Bus client reports this delivery included (1 on the first
delivery), while the AMQP header counts earlier failed deliveries (0 on the first). Both shapes
above carry the host's number.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import uamqp
from azure.servicebus import ServiceBusReceivedMessage
from azure.servicebus.amqp import AmqpMessageBodyType
from uamqp.message import MessageHeader, MessageProperties

from devtools.runner import worker_messages as messages

LOCK_TOKEN_MARK = b"x-opt-lock-token"
MODEL_BINDING_SOURCE = "AzureServiceBusReceivedMessage"
MODEL_BINDING_CONTENT_TYPE = "application/octet-stream"


# -- HTTP ------------------------------------------------------------------------------------


def http_trigger_data(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    query: dict[str, str],
    route_values: dict[str, str],
    body: bytes,
) -> messages.TypedData:
    return messages.TypedData(
        http=messages.RpcHttp(
            method=method,
            url=url,
            headers=headers,
            query=query,
            params=route_values,
            body=messages.TypedData(bytes=body),
        )
    )


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _typed_bytes(value: messages.TypedData | None) -> bytes:
    if value is None:
        return b""
    kind = value.WhichOneof("data")
    if kind == "bytes":
        return bytes(value.bytes)
    if kind == "string":
        return str(value.string).encode("utf-8")
    if kind == "json":
        return str(value.json).encode("utf-8")
    if kind in ("int", "double"):
        return str(getattr(value, kind)).encode("utf-8")
    return b""


def _cookie_header(cookie: Any) -> str:
    parts = [f"{cookie.name}={cookie.value}"]
    for attribute, label in (("domain", "Domain"), ("path", "Path")):
        nullable = getattr(cookie, attribute, None)
        if nullable is not None and nullable.value:
            parts.append(f"{label}={nullable.value}")
    if cookie.max_age is not None:
        parts.append(f"Max-Age={int(cookie.max_age.value)}")
    if cookie.secure is not None and cookie.secure.value:
        parts.append("Secure")
    if cookie.http_only is not None and cookie.http_only.value:
        parts.append("HttpOnly")
    return "; ".join(parts)


def http_answer(value: messages.TypedData | None) -> HttpAnswer | None:
    """The HTTP response the worker returned, or None when it returned nothing usable."""
    if value is None:
        return None
    kind = value.WhichOneof("data")
    if kind == "http":
        http = value.http
        headers = [(str(k), str(v)) for k, v in http.headers.items()]
        headers += [("set-cookie", _cookie_header(c)) for c in http.cookies or []]
        status = int(http.status_code or 200)
        return HttpAnswer(status, tuple(headers), _typed_bytes(http.body))
    if kind in ("string", "bytes", "json"):
        content_type = "application/json" if kind == "json" else "text/plain; charset=utf-8"
        return HttpAnswer(200, (("content-type", content_type),), _typed_bytes(value))
    return None


# -- timers ----------------------------------------------------------------------------------


def timer_trigger_data(
    past_due: bool, schedule_status: dict[str, Any] | None
) -> messages.TypedData:
    return messages.TypedData(
        json=json.dumps(
            {
                "Schedule": {"AdjustForDST": True},
                "ScheduleStatus": schedule_status,
                "IsPastDue": past_due,
            }
        )
    )


# -- Service Bus -----------------------------------------------------------------------------


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


def host_delivery_count(message: ServiceBusReceivedMessage) -> int:
    """This delivery included, as the host's client counts (1 on the first delivery)."""
    return int(message.delivery_count or 0) + 1


def _text(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def _properties(raw: dict[Any, Any] | None) -> dict[str, Any]:
    # The Python client hands back application properties with bytes keys and values.
    return {str(_text(k)): _text(v) for k, v in (raw or {}).items()}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _timespan(value: timedelta | None) -> str | None:
    if value is None:
        return None
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    prefix = f"{days}." if days else ""
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}"


def _metadata_values(message: ServiceBusReceivedMessage) -> dict[str, Any]:
    properties = _properties(message.application_properties)
    return {
        "MessageId": str(_text(message.message_id) or ""),
        "DeliveryCount": host_delivery_count(message),
        "SequenceNumber": message.sequence_number,
        "EnqueuedSequenceNumber": message.enqueued_sequence_number,
        "LockToken": str(message.lock_token),
        "ContentType": message.content_type,
        "CorrelationId": _text(message.correlation_id),
        "Label": message.subject,
        "Subject": message.subject,
        "To": message.to,
        "ReplyTo": message.reply_to,
        "ReplyToSessionId": message.reply_to_session_id,
        "SessionId": message.session_id,
        "PartitionKey": message.partition_key,
        "DeadLetterReason": message.dead_letter_reason,
        "DeadLetterErrorDescription": message.dead_letter_error_description,
        "DeadLetterSource": message.dead_letter_source,
        "EnqueuedTimeUtc": _iso(message.enqueued_time_utc),
        "ExpiresAtUtc": _iso(message.expires_at_utc),
        "LockedUntil": _iso(message.locked_until_utc),
        "ScheduledEnqueueTimeUtc": _iso(message.scheduled_enqueue_time_utc),
        "TimeToLive": _timespan(message.time_to_live),
        "ApplicationProperties": properties,
        "UserProperties": properties,
    }


def _scalar(value: Any) -> messages.TypedData:
    # Numbers travel as JSON: the worker reads no `int` member from trigger metadata.
    if isinstance(value, bool | int | float | dict | list):
        return messages.TypedData(json=json.dumps(value, default=str))
    return messages.TypedData(string=str(value))


def _single_metadata(message: ServiceBusReceivedMessage) -> dict[str, messages.TypedData]:
    return {k: _scalar(v) for k, v in _metadata_values(message).items() if v is not None}


def _batch_metadata(batch: Sequence[ServiceBusReceivedMessage]) -> dict[str, messages.TypedData]:
    values = [_metadata_values(m) for m in batch]
    arrays: dict[str, messages.TypedData] = {}
    for key in values[0]:
        arrays[f"{key}Array"] = messages.TypedData(
            json=json.dumps([v[key] for v in values], default=str)
        )
    return arrays


def _amqp_bytes(message: ServiceBusReceivedMessage) -> bytes:
    """The message re-encoded as AMQP, as the host's extension serialises what it received."""
    raw = message.raw_amqp_message
    header = MessageHeader()
    header.delivery_count = host_delivery_count(message)
    if raw.header is not None and raw.header.time_to_live:
        header.time_to_live = int(raw.header.time_to_live)
    props = raw.properties
    properties = MessageProperties(
        message_id=props.message_id if props else None,
        to=props.to if props else None,
        subject=props.subject if props else None,
        reply_to=props.reply_to if props else None,
        correlation_id=props.correlation_id if props else None,
        content_type=props.content_type if props else None,
        group_id=props.group_id if props else None,
        reply_to_group_id=props.reply_to_group_id if props else None,
    )
    body: Any = message_body(message)
    return bytes(
        uamqp.Message(
            body=body,
            properties=properties,
            application_properties=dict(raw.application_properties or {}),
            annotations=dict(raw.annotations or {}),
            header=header,
        ).encode_message()
    )


def model_binding_data(message: ServiceBusReceivedMessage) -> messages.ModelBindingData:
    token = uuid.UUID(str(message.lock_token))
    return messages.ModelBindingData(
        version="1.0",
        source=MODEL_BINDING_SOURCE,
        content_type=MODEL_BINDING_CONTENT_TYPE,
        content=token.bytes_le + LOCK_TOKEN_MARK + _amqp_bytes(message),
    )


def service_bus_trigger_data(
    batch: Sequence[ServiceBusReceivedMessage], *, many: bool, sdk_type: bool
) -> tuple[messages.TypedData, dict[str, messages.TypedData]]:
    """Trigger data and metadata for one invocation."""
    metadata = _batch_metadata(batch) if many else _single_metadata(batch[0])
    if sdk_type:
        if many:
            data = messages.TypedData(
                collection_model_binding_data=messages.CollectionModelBindingData(
                    model_binding_data=[model_binding_data(m) for m in batch]
                )
            )
        else:
            data = messages.TypedData(model_binding_data=model_binding_data(batch[0]))
        return data, metadata
    if many:
        data = messages.TypedData(
            collection_bytes=messages.CollectionBytes(bytes=[message_body(m) for m in batch])
        )
    else:
        data = messages.TypedData(bytes=message_body(batch[0]))
    return data, metadata


def synthetic_trigger_data(body: str, *, many: bool) -> tuple[messages.TypedData, dict[str, Any]]:
    """An on-demand run (`POST /admin/functions/{name}`) of a `func.ServiceBusMessage` function."""
    values = {
        "MessageId": uuid.uuid4().hex,
        "DeliveryCount": 1,
        "EnqueuedTimeUtc": _iso(datetime.now(UTC)),
        "UserProperties": {},
        "ApplicationProperties": {},
    }
    raw = body.encode("utf-8")
    if many:
        metadata = {
            f"{k}Array": messages.TypedData(json=json.dumps([v])) for k, v in values.items()
        }
        return messages.TypedData(collection_bytes=messages.CollectionBytes(bytes=[raw])), metadata
    return messages.TypedData(bytes=raw), {k: _scalar(v) for k, v in values.items()}


def output_bodies(value: messages.TypedData | None) -> list[bytes]:
    """Messages to send for a Service Bus output value: one each, a JSON array item by item."""
    if value is None:
        return []
    kind = value.WhichOneof("data")
    if kind == "json":
        parsed = json.loads(value.json)
        if isinstance(parsed, list):
            return [
                item.encode("utf-8") if isinstance(item, str) else json.dumps(item).encode("utf-8")
                for item in parsed
            ]
        return [str(value.json).encode("utf-8")]
    if kind == "collection_bytes":
        return [bytes(b) for b in value.collection_bytes.bytes]
    if kind == "collection_string":
        return [str(s).encode("utf-8") for s in value.collection_string.string]
    body = _typed_bytes(value)
    return [body] if kind is not None else []
