"""What an expression can read and write on a message, independent of its AMQP encoding."""

from __future__ import annotations

from typing import Any, Protocol

# Readable system properties (``sys.<name>``, case-insensitive) -> canonical name. Names that
# Service Bus knows but the stand-in cannot give a value for at routing time (LockToken, State,
# DeliveryCount, ...) are refused when the rule is compiled rather than silently read as null.
SYSTEM_PROPERTIES = {
    name.lower(): name
    for name in (
        "MessageId",
        "CorrelationId",
        "To",
        "ReplyTo",
        "Label",
        "Subject",
        "SessionId",
        "ReplyToSessionId",
        "ContentType",
        "ScheduledEnqueueTimeUtc",
        "PartitionKey",
    )
}
# What a SET action may change; the rest are stamped by the broker and read-only.
WRITABLE_SYSTEM_PROPERTIES = frozenset(
    {
        "MessageId",
        "CorrelationId",
        "To",
        "ReplyTo",
        "Label",
        "Subject",
        "SessionId",
        "ReplyToSessionId",
        "ContentType",
    }
)


class MessageView(Protocol):
    """Read access for filters; actions also write through ``set_*`` / ``remove_user``."""

    def system(self, name: str) -> Any:
        """The value of a canonical system property, None when the message does not carry it."""
        ...

    def has_user(self, name: str) -> bool: ...

    def user(self, name: str) -> Any:
        """The value of an application property (None when absent or null)."""
        ...


class WritableMessageView(MessageView, Protocol):
    def set_system(self, name: str, value: Any) -> None: ...

    def set_user(self, name: str, value: Any) -> None: ...

    def remove_user(self, name: str) -> None: ...
