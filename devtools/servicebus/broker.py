"""The AMQP side: a proton reactor handler that maps links and deliveries onto the store.

Everything runs on the reactor's single thread. Every event handler is guarded so that one
misbehaving client (a malformed frame, an unexpected outcome) closes its own link or connection
and is logged, while the broker keeps serving everybody else.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from proton import Condition, Delivery, Endpoint, Event, Link, Message, Terminus, symbol
from proton.handlers import FlowController, Handshaker
from proton.reactor import Handler

from .addresses import NodeAddress, NodeKind, node_path, parse_node_address
from .encoding import encode_stored_message
from .management import (
    LOCK_LOST,
    NOT_ALLOWED,
    NOT_FOUND,
    SESSION_CANNOT_BE_LOCKED,
    SESSION_LOCK_LOST,
    TIMEOUT,
    ManagementNode,
    ManagementReply,
    cbs_reply,
    error_condition,
    reply_properties,
)
from .sections import MalformedMessage, plain
from .store import (
    EntityNotFound,
    LockLost,
    Namespace,
    OperationNotAllowed,
    ReceivableEntity,
    SendTarget,
    SessionCannotBeLocked,
    SessionLockLost,
    SessionNotSupported,
    SessionRequired,
    StoreError,
)

_LOG = logging.getLogger("devtools.servicebus")

# Standard tier's limit; the client sizes batches from the value the broker announces.
MAX_MESSAGE_SIZE = 256 * 1024
_INCOMING_WINDOW = 100
_SESSION_FILTER = "com.microsoft:session-filter"
_SESSION_LOCKED_UNTIL = symbol("com.microsoft:locked-until-utc")
_OPERATION_TIMEOUT = "com.microsoft:timeout"
# .NET ticks (100 ns) at the Unix epoch: the session lock expiry travels as DateTimeOffset ticks.
_DOTNET_TICKS_AT_EPOCH = 621_355_968_000_000_000
# How long a next-available session receiver waits for a session when it names no timeout.
_DEFAULT_SESSION_WAIT = 60.0
_DEAD_LETTER_REASON = "DeadLetterReason"
_DEAD_LETTER_DESCRIPTION = "DeadLetterErrorDescription"

_TERMINAL_OUTCOMES = (Delivery.ACCEPTED, Delivery.REJECTED, Delivery.RELEASED, Delivery.MODIFIED)

_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(method: _F) -> _F:
    """Log and contain an exception in an event handler instead of stopping the reactor.

    On a durable namespace it also writes what the handler changed before returning, so before
    proton sends any frame the handler produced (a delivery, a disposition, a reply).
    """

    @functools.wraps(method)
    def wrapper(self: BrokerHandler, event: Event) -> None:
        try:
            method(self, event)
            if self._durable:
                self.namespace.commit()
        except Exception:
            _LOG.exception("error while handling %s; closing the offending endpoint", event.type)
            self._close_after_error(event)

    return wrapper  # type: ignore[return-value]


@dataclass(eq=False)
class _Consumer:
    """An outgoing link from a queue, subscription or dead-letter queue to a client receiver."""

    link: Link
    entity: ReceivableEntity
    receive_and_delete: bool
    connection_id: int
    session_id: str | None = None
    owner: uuid.UUID | None = None


@dataclass(eq=False)
class _PendingSessionReceiver:
    """A next-available session receiver waiting, unanswered, for a session to become free."""

    link: Link
    entity: ReceivableEntity
    receive_and_delete: bool
    connection_id: int
    deadline: float


class BrokerHandler(Handler):
    """Serves one namespace. ``tick`` must be called periodically (the server schedules it)."""

    def __init__(self, namespace: Namespace) -> None:
        super().__init__()
        # Our handler sees each event first and decides about links; the children then open
        # connections and sessions and keep credit flowing on incoming links.
        self.handlers = [FlowController(_INCOMING_WINDOW), _Handshaker()]
        self.namespace = namespace
        self._durable = namespace.durable
        self.management = ManagementNode(namespace, self.send_encoded)
        self._connection_ids = itertools.count(1)
        self._consumers: dict[ReceivableEntity, list[_Consumer]] = {}
        self._reply_links: dict[tuple[int, str], Link] = {}
        self._open_connections: dict[int, Any] = {}
        self._pending_sessions: list[_PendingSessionReceiver] = []

    # -- connections ----------------------------------------------------------------------

    @_guarded
    def on_connection_init(self, event: Event) -> None:
        connection_id = next(self._connection_ids)
        event.connection.standin_id = connection_id
        self._open_connections[connection_id] = event.connection

    @_guarded
    def on_connection_bound(self, event: Event) -> None:
        # The Python client authenticates with CBS tokens after SASL ANONYMOUS.
        event.transport.sasl().allowed_mechs("ANONYMOUS")

    @_guarded
    def on_connection_remote_open(self, event: Event) -> None:
        _LOG.info(
            "connection %s opened by %s",
            _connection_id(event.connection),
            event.connection.remote_container,
        )

    def on_transport_error(self, event: Event) -> None:
        condition = event.transport.condition
        if condition is None:
            return
        # The Python client sends detach frames after ending its session when it closes
        # ("no such channel"); the connection is going away anyway, so that is not worth a warning.
        closing_noise = "no such channel" in (condition.description or "")
        _LOG.log(
            logging.DEBUG if closing_noise else logging.WARNING,
            "transport error: %s %s",
            condition.name,
            condition.description,
        )

    @_guarded
    def on_transport_closed(self, event: Event) -> None:
        if event.connection is not None:
            self._forget_connection(_connection_id(event.connection))

    @_guarded
    def on_connection_remote_close(self, event: Event) -> None:
        self._forget_connection(_connection_id(event.connection))

    def _forget_connection(self, connection_id: int) -> None:
        if self._open_connections.pop(connection_id, None) is None:
            return
        _LOG.info("connection %s closed", connection_id)
        for entity, consumers in list(self._consumers.items()):
            for consumer in consumers:
                if consumer.connection_id == connection_id:
                    self._release_session(consumer)
            self._consumers[entity] = [c for c in consumers if c.connection_id != connection_id]
        self._pending_sessions = [
            p for p in self._pending_sessions if p.connection_id != connection_id
        ]
        for key in [key for key in self._reply_links if key[0] == connection_id]:
            del self._reply_links[key]

    def close_all(self) -> None:
        for connection in list(self._open_connections.values()):
            if not connection.state & Endpoint.LOCAL_CLOSED:
                connection.condition = Condition("amqp:connection:forced", "broker stopping")
                connection.close()

    # -- links ----------------------------------------------------------------------------

    @_guarded
    def on_link_remote_open(self, event: Event) -> None:
        link = event.link
        if not link.state & Endpoint.LOCAL_UNINIT:
            return
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        address = link.remote_source.address if link.is_sender else link.remote_target.address
        node = parse_node_address(address)
        try:
            self._attach(link, node)
        except EntityNotFound as exc:
            self._refuse(link, NOT_FOUND, str(exc))
        except OperationNotAllowed as exc:
            self._refuse(link, NOT_ALLOWED, str(exc))
        except SessionCannotBeLocked as exc:
            self._refuse(link, SESSION_CANNOT_BE_LOCKED, str(exc))

    def _attach(self, link: Link, node: NodeAddress) -> None:
        connection_id = _connection_id(link.connection)
        if node.kind is NodeKind.CBS:
            self._open_control_link(link, node, connection_id)
            return
        if not node.entity_path:
            raise EntityNotFound("the link has no address")
        if node.kind is NodeKind.MANAGEMENT:
            if not self.namespace.exists(node.entity_path):
                raise EntityNotFound(
                    f"The messaging entity '{self.namespace.name}:{node.entity_path}' "
                    "could not be found."
                )
            self._open_control_link(link, node, connection_id)
            return
        if link.is_sender:
            entity = self.namespace.receivable(node.entity_path, dead_letter=node.dead_letter)
            if entity.forward_to is not None:
                raise OperationNotAllowed(
                    f"Cannot create a message receiver on '{entity.path}': it auto-forwards "
                    f"to '{entity.forward_to.path}'."
                )
            wants_session, session_id = _session_filter(link)
            if entity.requires_session and not wants_session:
                raise SessionRequired(
                    f"It is not possible for an entity that requires sessions ('{entity.path}') "
                    "to create a non-sessionful message receiver."
                )
            if wants_session and not entity.requires_session:
                raise SessionNotSupported(
                    f"It is not possible for an entity that does not require sessions "
                    f"('{entity.path}') to create a sessionful message receiver."
                )
            receive_and_delete = link.remote_snd_settle_mode == Link.SND_SETTLED
            link.snd_settle_mode = Link.SND_SETTLED if receive_and_delete else Link.SND_UNSETTLED
            link.rcv_settle_mode = link.remote_rcv_settle_mode
            link.standin_node = node
            if not wants_session:
                self._open_consumer(_Consumer(link, entity, receive_and_delete, connection_id))
                return
            pending = _PendingSessionReceiver(
                link,
                entity,
                receive_and_delete,
                connection_id,
                time.monotonic() + _session_wait_seconds(link),
            )
            if session_id is not None:
                self._accept_session(pending, session_id)  # a named session is answered at once
            elif not self._accept_session(pending, None):
                # Service Bus answers only once a session is free or the client's timeout passed.
                link.standin_pending = True
                self._pending_sessions.append(pending)
        else:
            target = self.namespace.send_target(node.entity_path, dead_letter=node.dead_letter)
            link.standin_target = target
            link.standin_node = node
            link.max_message_size = MAX_MESSAGE_SIZE
            link.open()
            _LOG.info("sender attached to %s", target.path)

    def _open_consumer(self, consumer: _Consumer) -> None:
        link = consumer.link
        link.standin_consumer = consumer
        self._consumers.setdefault(consumer.entity, []).append(consumer)
        link.open()
        _LOG.info(
            "receiver attached to %s%s (%s)",
            consumer.entity.path,
            f" session {consumer.session_id!r}" if consumer.session_id is not None else "",
            "receive-and-delete" if consumer.receive_and_delete else "peek-lock",
        )
        self._pump(consumer.entity)

    def _accept_session(self, pending: _PendingSessionReceiver, session_id: str | None) -> bool:
        """Lock a session for a session receiver and answer its attach; False if none is free."""
        owner = uuid.uuid4()
        session = pending.entity.accept_session(session_id, owner)
        if session is None:
            return False
        link = pending.link
        link.standin_pending = False
        # The client reads the session it got from the filter in our attach, and the session
        # lock's expiry from the link property, in .NET ticks.
        filters = link.source.filter
        filters.clear()
        filters.put_object({symbol(_SESSION_FILTER): session.session_id})
        link.properties = {
            _SESSION_LOCKED_UNTIL: _DOTNET_TICKS_AT_EPOCH + int(session.locked_until * 10_000_000)
        }
        consumer = _Consumer(
            link,
            pending.entity,
            pending.receive_and_delete,
            pending.connection_id,
            session_id=session.session_id,
            owner=owner,
        )
        self._open_consumer(consumer)
        return True

    def _serve_pending_sessions(self) -> None:
        """Give waiting next-available receivers a session, or refuse them once they time out."""
        if not self._pending_sessions:
            return
        now = time.monotonic()
        waiting: list[_PendingSessionReceiver] = []
        for pending in self._pending_sessions:
            link = pending.link
            if link.state & Endpoint.REMOTE_CLOSED:
                continue
            try:
                if self._accept_session(pending, None):
                    continue
            except StoreError as exc:
                self._refuse(link, NOT_ALLOWED, str(exc))
                continue
            if now >= pending.deadline:
                link.standin_pending = False
                self._refuse(
                    link, TIMEOUT, f"no session of '{pending.entity.path}' became available in time"
                )
                continue
            waiting.append(pending)
        self._pending_sessions = waiting

    def _release_session(self, consumer: _Consumer) -> None:
        if consumer.session_id is not None and consumer.owner is not None:
            consumer.entity.release_session(consumer.session_id, consumer.owner)

    def _open_control_link(self, link: Link, node: NodeAddress, connection_id: int) -> None:
        link.standin_node = node
        if link.is_sender:
            # Replies go back on the link whose source is the node the request was sent to.
            self._reply_links[(connection_id, node_path(link.remote_source.address))] = link
        link.open()

    def _refuse(self, link: Link, condition: str, description: str) -> None:
        # Answer the attach with a null terminus on our side (the spec's way of refusing a
        # link), then detach with the error. The null terminus matters for the Python client:
        # it then never treats the link as attached, so a sender does not transfer a message
        # into the refused link and the client surfaces the detach error (amqp:not-found ->
        # MessagingEntityNotFoundError) instead of a generic send failure.
        _LOG.info(
            "refusing link to %r: %s",
            link.remote_source.address or link.remote_target.address,
            description,
        )
        if link.is_sender:
            link.source.type = Terminus.UNSPECIFIED
            link.source.address = None
            link.source.filter.clear()
        else:
            link.target.type = Terminus.UNSPECIFIED
        link.open()
        link.condition = error_condition(condition, description)
        link.close()

    @_guarded
    def on_link_remote_close(self, event: Event) -> None:
        self._forget_link(event.link)

    @_guarded
    def on_link_remote_detach(self, event: Event) -> None:
        self._forget_link(event.link)
        event.link.detach()

    def _forget_link(self, link: Link) -> None:
        consumer = getattr(link, "standin_consumer", None)
        if consumer is not None:
            consumers = self._consumers.get(consumer.entity, [])
            if consumer in consumers:
                consumers.remove(consumer)
                self._release_session(consumer)
                # A freed session can go to a receiver that is waiting for one.
                self._serve_pending_sessions()
            # Locks taken through this link stay until they expire, as in Service Bus; the
            # client can still settle them through $management.
        for key, reply_link in list(self._reply_links.items()):
            if reply_link == link:
                del self._reply_links[key]

    @_guarded
    def on_link_flow(self, event: Event) -> None:
        consumer = getattr(event.link, "standin_consumer", None)
        if consumer is not None:
            self._pump(consumer.entity)

    # -- deliveries -----------------------------------------------------------------------

    @_guarded
    def on_delivery(self, event: Event) -> None:
        delivery = event.delivery
        if delivery.link.is_receiver:
            self._on_incoming(delivery)
        else:
            self._on_outcome(delivery)

    def _on_incoming(self, delivery: Delivery) -> None:
        link = delivery.link
        if delivery.aborted:
            delivery.settle()
            return
        if not delivery.readable or delivery.partial:
            return
        raw = link.recv(delivery.pending)
        link.advance()
        node: NodeAddress | None = getattr(link, "standin_node", None)
        if node is None:
            # A transfer that raced our refusal of the link: leave it unsettled so the client
            # fails it with the link's error (amqp:not-found), as Service Bus does.
            return
        if node.kind is NodeKind.ENTITY:
            self._accept_message(delivery, link.standin_target, bytes(raw))
        else:
            self._answer_request(delivery, node, bytes(raw))
            delivery.update(Delivery.ACCEPTED)
        delivery.settle()

    def _accept_message(self, delivery: Delivery, target: SendTarget, raw: bytes) -> None:
        try:
            _, touched = target.accept_encoded(raw)
        except MalformedMessage as exc:
            _LOG.warning("rejecting a malformed message sent to %s: %s", target.path, exc)
            self._reject(delivery, "amqp:decode-error", str(exc))
            return
        except OperationNotAllowed as exc:
            _LOG.info("rejecting a message sent to %s: %s", target.path, exc)
            self._reject(delivery, NOT_ALLOWED, str(exc))
            return
        except (StoreError, ValueError) as exc:
            _LOG.warning("rejecting a message sent to %s: %s", target.path, exc)
            self._reject(delivery, "amqp:internal-error", str(exc))
            return
        if self._durable:
            # Accepted means stored: the journal has it before the client hears so.
            try:
                self.namespace.commit()
            except Exception as exc:
                _LOG.exception("cannot store a message sent to %s", target.path)
                self._reject(delivery, "amqp:internal-error", f"the message was not stored: {exc}")
                return
        delivery.update(Delivery.ACCEPTED)
        for entity in touched:
            self._pump(entity)
        self._serve_pending_sessions()

    @staticmethod
    def _reject(delivery: Delivery, condition: str, description: str) -> None:
        # The Python client reads the error's info field unconditionally; a rejection without
        # it fails inside the client's callback and leaves the sender waiting forever.
        delivery.local.condition = error_condition(condition, description)
        delivery.update(Delivery.REJECTED)

    def send_encoded(self, entity_path: str, raw: bytes) -> list[int | None]:
        """Accept an encoded message (or batch) for an entity and push it to waiting receivers."""
        sequence_numbers, touched = self.namespace.send_target(entity_path).accept_encoded(raw)
        for entity in touched:
            self._pump(entity)
        self._serve_pending_sessions()
        return sequence_numbers

    def _answer_request(self, delivery: Delivery, node: NodeAddress, raw: bytes) -> None:
        request = Message()
        request.decode(raw)
        properties: dict[str, Any] = request.properties or {}
        operation = properties.get("operation")
        cbs = node.kind is NodeKind.CBS
        if cbs:
            reply = cbs_reply(str(operation) if operation is not None else None)
        else:
            reply = self.management.execute(node, operation, plain(request.body))
            if reply.status_code >= 300:
                _LOG.info(
                    "%s %s -> %s %s", node.display, operation, reply.status_code, reply.description
                )
        for entity in reply.touched:
            self._pump(entity)
        self._send_reply(delivery.link, request, reply, cbs=cbs)

    def _send_reply(
        self, request_link: Link, request: Message, reply: ManagementReply, *, cbs: bool
    ) -> None:
        connection_id = _connection_id(request_link.connection)
        reply_link = self._reply_links.get((connection_id, node_path(request_link.target.address)))
        if reply_link is None and request.reply_to:
            reply_link = self._reply_links.get((connection_id, node_path(request.reply_to)))
        if reply_link is None:
            _LOG.warning("no reply link for a request to %s", request_link.target.address)
            return
        response = Message(
            correlation_id=request.id,
            address=request.reply_to,
            properties=reply_properties(reply, cbs=cbs),
            body=reply.body,
        )
        # proton accepts bytes tags although its annotation says str
        delivery = reply_link.delivery(uuid.uuid4().bytes)  # type: ignore[arg-type]
        reply_link.stream(response.encode())
        reply_link.advance()
        if reply_link.remote_snd_settle_mode == Link.SND_SETTLED:
            delivery.settle()

    def _on_outcome(self, delivery: Delivery) -> None:
        consumer: _Consumer | None = getattr(delivery.link, "standin_consumer", None)
        token: uuid.UUID | None = getattr(delivery, "standin_token", None)
        if consumer is None or token is None:
            if delivery.settled:
                delivery.settle()
            return
        state = delivery.remote_state
        if state not in _TERMINAL_OUTCOMES and not delivery.settled:
            return  # no outcome yet (or only a non-terminal "received" state)
        entity = consumer.entity
        remote = delivery.remote
        try:
            if state == Delivery.ACCEPTED:
                entity.complete(token)
            elif state == Delivery.REJECTED:
                reason, description = _dead_letter_details(remote.condition)
                entity.dead_letter(token, reason, description)
            elif state == Delivery.MODIFIED:
                delivery.local.failed = remote.failed
                delivery.local.undeliverable = remote.undeliverable
                if remote.undeliverable:
                    entity.defer(token)
                else:
                    entity.abandon(token, failed=remote.failed)
            else:
                # released, or settled without an outcome: back to the queue, not a failure
                entity.abandon(token, failed=False)
                state = Delivery.RELEASED
            delivery.update(state)
        except LockLost as exc:
            self._reject(delivery, LOCK_LOST, str(exc))
        except SessionLockLost as exc:
            self._reject(delivery, SESSION_LOCK_LOST, str(exc))
        except OperationNotAllowed as exc:
            self._reject(delivery, NOT_ALLOWED, str(exc))
        delivery.standin_token = None
        delivery.settle()
        self._pump(entity)
        if entity.dead_letter_queue is not None:
            self._pump(entity.dead_letter_queue)

    # -- pushing messages to receivers ----------------------------------------------------

    def _pump(self, entity: ReceivableEntity) -> None:
        consumers = [c for c in self._consumers.get(entity, []) if _usable(c.link)]
        if not consumers:
            return
        if entity.requires_session:
            self._pump_sessions(entity, consumers)
            return
        exhausted = False
        while not exhausted:
            sent_any = False
            for consumer in consumers:
                if consumer.link.credit <= 0:
                    continue
                message = entity.receive(lock=not consumer.receive_and_delete)
                if message is None:
                    exhausted = True
                    break
                self._deliver(consumer, message)
                sent_any = True
            if not sent_any:
                break
        # Rotate so the next message goes to a different receiver first.
        registered = self._consumers.get(entity, [])
        if len(registered) > 1:
            registered.append(registered.pop(0))
        for consumer in consumers:
            link = consumer.link
            if link.drain_mode and link.credit > 0 and not entity.has_ready_message():
                link.drained()

    def _pump_sessions(self, entity: ReceivableEntity, consumers: list[_Consumer]) -> None:
        """Each session receiver gets its own session's messages, oldest first."""
        for consumer in consumers:
            assert consumer.session_id is not None and consumer.owner is not None
            if not entity.holds_session(consumer.session_id, consumer.owner):
                self._lose_session(consumer)
                continue
            link = consumer.link
            while link.credit > 0:
                message = entity.receive(
                    lock=not consumer.receive_and_delete, session_id=consumer.session_id
                )
                if message is None:
                    break
                self._deliver(consumer, message)
            if (
                link.drain_mode
                and link.credit > 0
                and not entity.has_ready_in_session(consumer.session_id)
            ):
                link.drained()

    def _lose_session(self, consumer: _Consumer) -> None:
        """The session lock lapsed: detach the receiver as Service Bus does."""
        consumers = self._consumers.get(consumer.entity, [])
        if consumer in consumers:
            consumers.remove(consumer)
        link = consumer.link
        if not link.state & Endpoint.LOCAL_CLOSED:
            link.condition = error_condition(
                SESSION_LOCK_LOST,
                f"The session lock for '{consumer.session_id}' has expired; "
                "accept the session again.",
            )
            link.close()

    def _deliver(self, consumer: _Consumer, message: Any) -> None:
        link = consumer.link
        token = message.lock_token
        # The client reads the lock token from the delivery tag as a little-endian UUID.
        tag = (token or uuid.uuid4()).bytes_le
        delivery = link.delivery(tag)  # type: ignore[arg-type]
        link.stream(encode_stored_message(message, lock_token=token))
        link.advance()
        if consumer.receive_and_delete:
            delivery.settle()
        else:
            delivery.standin_token = token

    # -- time -----------------------------------------------------------------------------

    def tick(self) -> None:
        """Release expired locks, publish due scheduled messages, expire old ones."""
        try:
            self.namespace.process_timers()
            for entity in list(self._consumers):
                self._pump(entity)
            self._serve_pending_sessions()
            if self._durable:
                self.namespace.commit()
        except Exception:
            _LOG.exception("error in the periodic broker tick")

    # -- errors ---------------------------------------------------------------------------

    def _close_after_error(self, event: Event) -> None:
        try:
            link = event.link
            if link is not None and not link.state & Endpoint.LOCAL_CLOSED:
                link.condition = error_condition("amqp:internal-error", "the stand-in failed")
                link.close()
                return
            connection = event.connection
            if connection is not None and not connection.state & Endpoint.LOCAL_CLOSED:
                connection.condition = error_condition("amqp:internal-error", "the stand-in failed")
                connection.close()
        except Exception:
            _LOG.exception("could not close the endpoint after an error")


class _Handshaker(Handshaker):
    """proton's Handshaker, except that it leaves a waiting session receiver unanswered."""

    def on_link_remote_open(self, event: Event) -> None:
        if getattr(event.link, "standin_pending", False):
            return
        super().on_link_remote_open(event)


def _connection_id(connection: Any) -> int:
    return int(getattr(connection, "standin_id", 0))


def _usable(link: Link) -> bool:
    return bool(link.state & Endpoint.LOCAL_ACTIVE and link.state & Endpoint.REMOTE_ACTIVE)


def _session_filter(link: Link) -> tuple[bool, str | None]:
    """Whether the receiver asks for a session, and which one (None: the next available)."""
    data = link.remote_source.filter
    data.rewind()
    if not data.next():
        return False, None
    filters = data.get_object()
    if not isinstance(filters, dict):
        return False, None
    for key, value in filters.items():
        if str(key) == _SESSION_FILTER:
            value = plain(value)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            return True, None if value is None else str(value)
    return False, None


def _session_wait_seconds(link: Link) -> float:
    """The client's ``com.microsoft:timeout`` link property (ms), else Service Bus's default."""
    properties = link.remote_properties
    if isinstance(properties, dict):
        for key, value in properties.items():
            if str(key) == _OPERATION_TIMEOUT and isinstance(value, int):
                return max(0.0, int(value) / 1000)
    return _DEFAULT_SESSION_WAIT


def _dead_letter_details(condition: Condition | None) -> tuple[str | None, str | None]:
    if condition is None:
        return None, None
    info = condition.info if isinstance(condition.info, dict) else {}
    values = {str(key): value for key, value in info.items()}
    reason = values.get(_DEAD_LETTER_REASON)
    description = values.get(_DEAD_LETTER_DESCRIPTION, condition.description)
    return (
        str(reason) if reason is not None else None,
        str(description) if description is not None else None,
    )
