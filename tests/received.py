"""Build `ServiceBusReceivedMessage` objects the way the SDK-type binding does (for unit tests).

The extension decodes the host's model-binding data into a uamqp message and wraps it in the
azure-servicebus received-message class; these helpers take the same path from a body and
properties, so handlers see exactly the object they get under the worker.
"""

from __future__ import annotations

import uuid
from typing import Any

from azurefunctions.extensions.bindings.servicebus import ServiceBusReceivedMessage

from devtools.runner.wire import LOCK_TOKEN_MARK


def received_message(
    body: bytes | str = b"{}",
    *,
    message_id: str = "m-1",
    correlation_id: str | None = None,
    application_properties: dict[str, Any] | None = None,
    delivery_count: int = 1,
) -> Any:
    """An azure-servicebus ServiceBusReceivedMessage, decoded from model-binding content."""
    import uamqp
    from uamqp.message import MessageHeader, MessageProperties

    header = MessageHeader()
    header.delivery_count = delivery_count
    message = uamqp.Message(
        body=body.encode() if isinstance(body, str) else body,
        properties=MessageProperties(message_id=message_id, correlation_id=correlation_id),
        application_properties=dict(application_properties or {}),
        annotations={b"x-opt-sequence-number": 1},
        header=header,
    )
    content = uuid.uuid4().bytes_le + LOCK_TOKEN_MARK + message.encode_message()

    class _Data:
        version = "1.0"
        source = "AzureServiceBusReceivedMessage"
        content_type = "application/octet-stream"

    data = _Data()
    data.content = content  # type: ignore[attr-defined]
    return ServiceBusReceivedMessage(data=data).get_sdk_type()  # type: ignore[arg-type]


class RecordingActions:
    """Stands in for ServiceBusMessageActions in unit tests: records each settlement."""

    def __init__(self) -> None:
        self.settled: list[tuple[str, str, str | None]] = []

    def complete(self, message: Any) -> None:
        self.settled.append(("complete", str(message.message_id), None))

    def deadletter(
        self,
        message: Any,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None:
        self.settled.append(("deadletter", str(message.message_id), deadletter_reason))

    def renew_message_lock(self, message: Any) -> None:
        return None
