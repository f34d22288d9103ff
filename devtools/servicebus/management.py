"""The ``<entity>/$management`` request-response node and the ``$cbs`` token node.

Requests arrive as AMQP messages whose application property ``operation`` names the operation
and whose amqp-value body is a map; replies carry ``statusCode`` / ``statusDescription``
(``status-code`` / ``status-description`` on ``$cbs``), correlated by the request's message-id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from proton import UNDESCRIBED, Array, Condition, Data, symbol

from .addresses import NodeAddress
from .encoding import encode_stored_message, to_timestamp
from .sections import MalformedMessage
from .store import (
    LockLost,
    MessageNotFound,
    Namespace,
    OperationNotAllowed,
    ReceivableEntity,
    SessionCannotBeLocked,
    SessionLockLost,
    StoreError,
)

_LOG = logging.getLogger(__name__)

VENDOR = "com.microsoft:"
LOCK_LOST = VENDOR + "message-lock-lost"
MESSAGE_NOT_FOUND = VENDOR + "message-not-found"
ARGUMENT_ERROR = VENDOR + "argument-error"
NOT_FOUND = "amqp:not-found"
NOT_ALLOWED = "amqp:not-allowed"
NOT_IMPLEMENTED = "amqp:not-implemented"
SESSION_LOCK_LOST = VENDOR + "session-lock-lost"
SESSION_CANNOT_BE_LOCKED = VENDOR + "session-cannot-be-locked"
TIMEOUT = VENDOR + "timeout"
TRACKING_ID = symbol(VENDOR + "tracking-id")
# get-message-sessions sends DateTime.MaxValue (year 10000) as "no filter": list all sessions.
_LIST_ALL_SESSIONS_MS = 253402300800000

# receiver-settle-mode values in receive-by-sequence-number: 1 is "second", i.e. peek-lock.
_PEEK_LOCK_SETTLE_MODE = 1


def error_condition(name: str, description: str) -> Condition:
    """An AMQP error that always carries description and info (the Python client reads both)."""
    return Condition(name, description, {TRACKING_ID: str(uuid.uuid4())})


class BadRequest(ValueError):
    """The request body lacks a field the operation needs, or has the wrong type."""


@dataclass
class ManagementReply:
    status_code: int
    description: str
    body: Any = None
    error_condition: str | None = None
    touched: set[ReceivableEntity] = field(default_factory=set)


def cbs_reply(operation: str | None) -> ManagementReply:
    """Accept every token: the stand-in trusts any local client, like the emulator's fixed key."""
    if operation != "put-token":
        return ManagementReply(400, f"unsupported $cbs operation {operation!r}")
    return ManagementReply(202, "Accepted")


def _elements(value: Any) -> list[Any]:
    if isinstance(value, Array):
        return list(value.elements)
    if isinstance(value, list | tuple):
        return list(value)
    if value is None:
        raise BadRequest("a required list is missing")
    return [value]


def _field(body: Any, name: str) -> Any:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a map")
    for key, value in body.items():
        if str(key) == name:
            return value
    return None


def _lock_tokens(body: Any) -> list[uuid.UUID]:
    tokens = []
    for item in _elements(_field(body, "lock-tokens")):
        if isinstance(item, uuid.UUID):
            tokens.append(item)
        elif isinstance(item, bytes) and len(item) == 16:
            tokens.append(uuid.UUID(bytes=item))
        else:
            tokens.append(uuid.UUID(str(item)))
    return tokens


def _session_id(body: Any) -> str | None:
    value = _field(body, "session-id")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def _required_session_id(body: Any) -> str:
    session_id = _session_id(body)
    if session_id is None:
        raise BadRequest("session-id is required")
    return session_id


def _sequence_numbers(body: Any) -> list[int]:
    return [int(item) for item in _elements(_field(body, "sequence-numbers"))]


def _typed_array(type_code: int, values: Iterable[Any]) -> Array:
    return Array(UNDESCRIBED, type_code, *values)  # type: ignore[arg-type]


class ManagementNode:
    """Executes management operations against one namespace."""

    def __init__(
        self, namespace: Namespace, send_encoded: Callable[[str, bytes], list[int | None]]
    ):
        self._namespace = namespace
        # Sending goes through the broker so that new messages are pushed to waiting receivers.
        self._send_encoded = send_encoded
        self._operations: dict[str, Callable[[NodeAddress, Any], ManagementReply]] = {
            VENDOR + "peek-message": self._peek,
            VENDOR + "renew-lock": self._renew_lock,
            VENDOR + "update-disposition": self._update_disposition,
            VENDOR + "schedule-message": self._schedule,
            VENDOR + "cancel-scheduled-message": self._cancel_scheduled,
            VENDOR + "receive-by-sequence-number": self._receive_by_sequence_number,
            VENDOR + "renew-session-lock": self._renew_session_lock,
            VENDOR + "get-session-state": self._get_session_state,
            VENDOR + "set-session-state": self._set_session_state,
            VENDOR + "get-message-sessions": self._get_message_sessions,
        }

    def execute(self, node: NodeAddress, operation: str | None, body: Any) -> ManagementReply:
        handler = self._operations.get(str(operation))
        if handler is None:
            return ManagementReply(
                501, f"operation {operation!r} is not supported", error_condition=NOT_IMPLEMENTED
            )
        try:
            return handler(node, body)
        except LockLost as exc:
            return ManagementReply(410, str(exc), error_condition=LOCK_LOST)
        except SessionLockLost as exc:
            return ManagementReply(410, str(exc), error_condition=SESSION_LOCK_LOST)
        except SessionCannotBeLocked as exc:
            return ManagementReply(410, str(exc), error_condition=SESSION_CANNOT_BE_LOCKED)
        except MessageNotFound as exc:
            return ManagementReply(404, str(exc), error_condition=MESSAGE_NOT_FOUND)
        except OperationNotAllowed as exc:
            return ManagementReply(400, str(exc), error_condition=NOT_ALLOWED)
        except StoreError as exc:
            return ManagementReply(404, str(exc), error_condition=NOT_FOUND)
        except (BadRequest, MalformedMessage, ValueError, TypeError) as exc:
            return ManagementReply(400, f"bad request: {exc}", error_condition=ARGUMENT_ERROR)

    def _entity(self, node: NodeAddress) -> ReceivableEntity:
        return self._namespace.receivable(node.entity_path, dead_letter=node.dead_letter)

    def _peek(self, node: NodeAddress, body: Any) -> ManagementReply:
        entity = self._entity(node)
        start = int(_field(body, "from-sequence-number") or 0)
        count = int(_field(body, "message-count") or 1)
        messages = entity.peek(start, count, _session_id(body))
        if not messages:
            return ManagementReply(204, "No Content")
        now = entity.now()
        encoded = [{"message": encode_stored_message(m, state=int(m.state(now)))} for m in messages]
        return ManagementReply(200, "OK", {"messages": encoded})

    def _renew_lock(self, node: NodeAddress, body: Any) -> ManagementReply:
        entity = self._entity(node)
        expirations = [entity.renew(token) for token in _lock_tokens(body)]
        stamps = [to_timestamp(value) for value in expirations]
        return ManagementReply(200, "OK", {"expirations": _typed_array(Data.TIMESTAMP, stamps)})

    def _update_disposition(self, node: NodeAddress, body: Any) -> ManagementReply:
        entity = self._entity(node)
        status = str(_field(body, "disposition-status") or "")
        tokens = _lock_tokens(body)
        for token in tokens:
            if not entity.is_locked(token):
                raise LockLost(f"the lock {token} is invalid or has expired")
        for token in tokens:
            if status == "completed":
                entity.complete(token)
            elif status == "abandoned":
                entity.abandon(token)
            elif status == "defered":  # sic: the spelling the service and client use
                entity.defer(token)
            elif status == "suspended":
                reason = _field(body, "deadletter-reason")
                description = _field(body, "deadletter-description")
                entity.dead_letter(
                    token,
                    str(reason) if reason is not None else None,
                    str(description) if description is not None else None,
                )
            else:
                raise BadRequest(f"unknown disposition-status {status!r}")
        touched = {entity}
        if entity.dead_letter_queue is not None:
            touched.add(entity.dead_letter_queue)
        return ManagementReply(200, "OK", {}, touched=touched)

    def _schedule(self, node: NodeAddress, body: Any) -> ManagementReply:
        self._namespace.send_target(node.entity_path, dead_letter=node.dead_letter)
        sequence_numbers: list[int] = []
        for item in _elements(_field(body, "messages")):
            raw = _field(item, "message")
            if not isinstance(raw, bytes):
                raise BadRequest("each scheduled message needs an encoded 'message'")
            accepted = self._send_encoded(node.entity_path, raw)
            sequence_numbers.extend(seq or 0 for seq in accepted)
        return ManagementReply(
            200, "OK", {"sequence-numbers": _typed_array(Data.LONG, sequence_numbers)}
        )

    def _cancel_scheduled(self, node: NodeAddress, body: Any) -> ManagementReply:
        target = self._namespace.send_target(node.entity_path, dead_letter=node.dead_letter)
        for sequence_number in _sequence_numbers(body):
            target.cancel_scheduled(sequence_number)
        return ManagementReply(200, "OK", {})

    def _receive_by_sequence_number(self, node: NodeAddress, body: Any) -> ManagementReply:
        entity = self._entity(node)
        mode = _field(body, "receiver-settle-mode")
        lock = mode is None or int(mode) == _PEEK_LOCK_SETTLE_MODE
        messages = entity.receive_deferred(
            _sequence_numbers(body), lock=lock, session_id=_session_id(body)
        )
        now = entity.now()
        items = []
        for message in messages:
            item: dict[str, Any] = {
                "message": encode_stored_message(
                    message, lock_token=message.lock_token, state=int(message.state(now))
                )
            }
            if message.lock_token is not None:
                item["lock-token"] = message.lock_token
            items.append(item)
        return ManagementReply(200, "OK", {"messages": items})

    # -- sessions -------------------------------------------------------------------------

    def _renew_session_lock(self, node: NodeAddress, body: Any) -> ManagementReply:
        entity = self._entity(node)
        locked_until = entity.renew_session(_required_session_id(body))
        return ManagementReply(200, "OK", {"expiration": to_timestamp(locked_until)})

    def _get_session_state(self, node: NodeAddress, body: Any) -> ManagementReply:
        state = self._entity(node).session_state(_required_session_id(body))
        return ManagementReply(200, "OK", {"session-state": state})

    def _set_session_state(self, node: NodeAddress, body: Any) -> ManagementReply:
        state = _field(body, "session-state")
        if state is not None and not isinstance(state, bytes):
            raise BadRequest("session-state must be binary")
        self._entity(node).set_session_state(_required_session_id(body), state)
        return ManagementReply(200, "OK", {})

    def _get_message_sessions(self, node: NodeAddress, body: Any) -> ManagementReply:
        entity = self._entity(node)
        if not entity.requires_session:
            raise OperationNotAllowed(f"'{entity.path}' does not require sessions")
        updated = _field(body, "last-updated-time")
        skip = int(_field(body, "skip") or 0)
        top = int(_field(body, "top") or 100)
        updated_ms = int(updated) if updated is not None else _LIST_ALL_SESSIONS_MS
        updated_after = None if updated_ms >= _LIST_ALL_SESSIONS_MS else updated_ms / 1000
        ids = entity.session_ids(updated_after)[skip : skip + max(top, 0)]
        if not ids:
            return ManagementReply(204, "No Content")
        return ManagementReply(
            200,
            "OK",
            {"skip": skip + len(ids), "sessions-ids": _typed_array(Data.STRING, ids)},
        )


def reply_properties(reply: ManagementReply, *, cbs: bool) -> dict[str, Any]:
    code_key, description_key = (
        ("status-code", "status-description") if cbs else ("statusCode", "statusDescription")
    )
    properties: dict[str, Any] = {code_key: reply.status_code, description_key: reply.description}
    if reply.error_condition:
        properties["errorCondition"] = symbol(reply.error_condition)
    return properties
