"""The SQL view of a message as the broker holds it, and rule actions written back into it.

System properties map onto the AMQP properties section (``sys.Label`` is its subject,
``sys.SessionId`` its group-id) and two message annotations; user properties are the
application properties. An action works on a copy and re-encodes only the sections it changed,
so one subscription's action never shows in another subscription's copy.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from proton import Described, symbol, ulong

from .sections import APPLICATION_PROPERTIES, PROPERTIES, MessageParts, encode_value

# Canonical system property -> index in the AMQP properties list.
_PROPERTY_INDEX = {
    "MessageId": 0,
    "To": 2,
    "Label": 3,
    "Subject": 3,
    "ReplyTo": 4,
    "CorrelationId": 5,
    "ContentType": 6,
    "SessionId": 10,
    "ReplyToSessionId": 12,
}
_PROPERTIES_LENGTH = 13
_ANNOTATIONS = {
    "ScheduledEnqueueTimeUtc": "x-opt-scheduled-enqueue-time",
    "PartitionKey": "x-opt-partition-key",
}


def _plain_text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, symbol):
        return str(value)
    return value


class PartsView:
    """Read-only view for filters: no copy, since routing evaluates every rule per message."""

    def __init__(self, parts: MessageParts) -> None:
        self._parts = parts

    def system(self, name: str) -> Any:
        index = _PROPERTY_INDEX.get(name)
        if index is not None:
            return _plain_text(self._parts.property_field(index))
        annotation = _ANNOTATIONS.get(name)
        if annotation is None:
            return None
        value = _annotation(self._parts.annotations, annotation)
        if isinstance(value, datetime):
            return value
        return _plain_text(value)

    def has_user(self, name: str) -> bool:
        return name in (self._parts.application_properties or {})

    def user(self, name: str) -> Any:
        return _plain_text((self._parts.application_properties or {}).get(name))


class EditableParts(PartsView):
    """A copy that actions may change; ``result()`` re-encodes what changed."""

    def __init__(self, parts: MessageParts) -> None:
        super().__init__(parts)
        self._original = parts
        self._properties = list(parts.properties or [])
        self._application = dict(parts.application_properties or {})
        self._properties_changed = False
        self._application_changed = False
        self._parts = dataclasses.replace(
            parts, properties=self._properties, application_properties=self._application
        )

    def set_system(self, name: str, value: Any) -> None:
        index = _PROPERTY_INDEX[name]
        if len(self._properties) < _PROPERTIES_LENGTH:
            self._properties.extend([None] * (_PROPERTIES_LENGTH - len(self._properties)))
        if value is not None and not isinstance(value, str):
            value = str(value).lower() if isinstance(value, bool) else str(value)
        if name == "ContentType" and value is not None:
            value = symbol(value)
        self._properties[index] = value
        self._properties_changed = True

    def set_user(self, name: str, value: Any) -> None:
        self._application[name] = value
        self._application_changed = True

    def remove_user(self, name: str) -> None:
        if name in self._application:
            del self._application[name]
            self._application_changed = True

    def result(self) -> MessageParts:
        if not (self._properties_changed or self._application_changed):
            return self._original
        changes: dict[str, Any] = {}
        if self._properties_changed:
            changes["properties"] = list(self._properties)
            changes["properties_raw"] = encode_value(
                Described(ulong(PROPERTIES), list(self._properties))
            )
        if self._application_changed:
            changes["application_properties"] = dict(self._application)
            changes["application_properties_raw"] = encode_value(
                Described(ulong(APPLICATION_PROPERTIES), dict(self._application))
            )
        return dataclasses.replace(self._original, **changes)


def _annotation(annotations: dict[Any, Any], key: str) -> Any:
    for name, value in annotations.items():
        if str(name) == key:
            return value
    return None
