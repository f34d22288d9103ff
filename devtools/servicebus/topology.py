"""The entity topology, read from a file in the shape of Microsoft's Service Bus emulator config.

One file serves both this stand-in and the emulator container, so the models follow the
emulator's schema (ServiceBus-Emulator/Schema/Config-schema.json in the repository
Azure/azure-service-bus-emulator-installer): PascalCase keys, ISO-8601 durations, and the
emulator's defaults where a property is left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_pascal

from .durations import format_iso_duration, parse_iso_duration
from .sql import SqlError, compile_action, compile_filter


class TopologyError(ValueError):
    """The topology file is missing, is not JSON, or does not describe a valid namespace."""


def _duration(value: Any) -> Any:
    # Only ISO-8601 text is accepted: pydantic's own timedelta parsing would also take bare
    # numbers, which the emulator rejects, and the file must stay valid for both.
    if isinstance(value, str):
        value = parse_iso_duration(value)
    if not isinstance(value, timedelta):
        raise ValueError("expected an ISO-8601 duration string such as PT1M")
    if value <= timedelta(0):
        raise ValueError("a duration must be longer than zero")
    return value


IsoDuration = Annotated[timedelta, BeforeValidator(_duration)]


class _Model(BaseModel):
    # Unknown keys are refused so that a typo ("MaxDeliveryCont") cannot silently fall back to a
    # default; every key the emulator schema defines is modelled.
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="forbid")


class QueueProperties(_Model):
    dead_lettering_on_message_expiration: bool = False
    default_message_time_to_live: IsoDuration = timedelta(hours=1)
    duplicate_detection_history_time_window: IsoDuration = timedelta(seconds=20)
    forward_dead_lettered_messages_to: str = ""
    forward_to: str = ""
    lock_duration: IsoDuration = timedelta(minutes=1)
    max_delivery_count: int = Field(default=3, ge=1)
    requires_duplicate_detection: bool = False
    requires_session: bool = False


class TopicProperties(_Model):
    default_message_time_to_live: IsoDuration = timedelta(hours=1)
    duplicate_detection_history_time_window: IsoDuration = timedelta(seconds=20)
    requires_duplicate_detection: bool = False


class SubscriptionProperties(_Model):
    dead_lettering_on_message_expiration: bool = False
    default_message_time_to_live: IsoDuration = timedelta(hours=1)
    lock_duration: IsoDuration = timedelta(minutes=1)
    max_delivery_count: int = Field(default=3, ge=1)
    forward_dead_lettered_messages_to: str = ""
    forward_to: str = ""
    requires_session: bool = False


class CorrelationFilter(_Model):
    content_type: str | None = None
    correlation_id: str | None = None
    label: str | None = None
    message_id: str | None = None
    reply_to: str | None = None
    reply_to_session_id: str | None = None
    session_id: str | None = None
    to: str | None = None
    properties: dict[str, Any] | None = None


class SqlExpression(_Model):
    sql_expression: str = ""


class RuleProperties(_Model):
    filter_type: Literal["Correlation", "Sql"]
    correlation_filter: CorrelationFilter | None = None
    sql_filter: SqlExpression | None = None
    action: SqlExpression | None = None

    @model_validator(mode="after")
    def _filter_matches_type(self) -> RuleProperties:
        if self.filter_type == "Correlation" and self.correlation_filter is None:
            raise ValueError("FilterType Correlation needs a CorrelationFilter")
        if self.filter_type == "Sql" and self.sql_filter is None:
            raise ValueError("FilterType Sql needs a SqlFilter")
        # Parse the SQL now so that a bad expression stops start-up with the reason, instead
        # of silently matching nothing (or everything) at run time.
        try:
            if self.filter_type == "Sql" and self.sql_filter is not None:
                compile_filter(self.sql_filter.sql_expression)
            if self.action is not None and self.action.sql_expression.strip():
                compile_action(self.action.sql_expression)
        except SqlError as exc:
            raise ValueError(str(exc)) from exc
        return self


class Rule(_Model):
    name: str = Field(min_length=1)
    properties: RuleProperties


class Subscription(_Model):
    name: str = Field(min_length=1)
    properties: SubscriptionProperties = Field(default_factory=SubscriptionProperties)
    rules: list[Rule] = Field(default_factory=list)


class Topic(_Model):
    name: str = Field(min_length=1)
    properties: TopicProperties = Field(default_factory=TopicProperties)
    subscriptions: list[Subscription] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_subscriptions(self) -> Topic:
        _refuse_duplicates(
            [sub.name for sub in self.subscriptions], f"subscription of topic {self.name!r}"
        )
        return self


class Queue(_Model):
    name: str = Field(min_length=1)
    properties: QueueProperties = Field(default_factory=QueueProperties)


class Namespace(_Model):
    name: str = Field(min_length=1)
    queues: list[Queue] = Field(default_factory=list)
    topics: list[Topic] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_entities(self) -> Namespace:
        # Queues and topics share one address space; Service Bus compares paths case-insensitively.
        _refuse_duplicates(
            [q.name for q in self.queues] + [t.name for t in self.topics], "queue or topic"
        )
        _check_forwarding(self)
        return self


class Logging(_Model):
    type: str = "Console"


class UserConfig(_Model):
    namespaces: list[Namespace] = Field(min_length=1)
    logging: Logging = Field(default_factory=Logging)


class EmulatorConfig(_Model):
    """The whole file: ``{"UserConfig": {"Namespaces": [...], "Logging": {...}}}``."""

    user_config: UserConfig

    @property
    def namespace(self) -> Namespace:
        """The namespace served; the emulator serves exactly one, so the first is used."""
        return self.user_config.namespaces[0]


def _check_forwarding(ns: Namespace) -> None:
    """ForwardTo / ForwardDeadLetteredMessagesTo name a queue or topic of the namespace ("The
    destination entity must exist at the time the source entity is created", Microsoft's
    "Chaining Service Bus entities with autoforwarding"), and ForwardTo chains end somewhere: the
    stand-in refuses a loop rather than model Service Bus's hop limit."""
    entities = {q.name.lower() for q in ns.queues} | {t.name.lower() for t in ns.topics}
    sources: list[tuple[str, str, QueueProperties | SubscriptionProperties]] = [
        (q.name, q.name.lower(), q.properties) for q in ns.queues
    ] + [
        (f"{t.name}/{s.name}", t.name.lower(), s.properties)
        for t in ns.topics
        for s in t.subscriptions
    ]
    edges: dict[str, set[str]] = {}
    for name, node, props in sources:
        for key, target in (
            ("ForwardTo", props.forward_to),
            ("ForwardDeadLetteredMessagesTo", props.forward_dead_lettered_messages_to),
        ):
            if target and target.lower() not in entities:
                raise ValueError(f"{name}: {key} names {target!r}, not a queue or topic here")
        if props.forward_to:
            edges.setdefault(node, set()).add(props.forward_to.lower())

    def visit(node: str, path: list[str]) -> None:
        for following in edges.get(node, ()):
            if following in path:
                loop = " -> ".join([*path[path.index(following) :], following])
                raise ValueError(f"ForwardTo makes a loop: {loop}")
            visit(following, [*path, following])

    for start in edges:
        visit(start, [start])


def _refuse_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        key = name.lower()
        if key in seen:
            raise ValueError(f"duplicate {what} name {name!r}")
        seen.add(key)


@dataclass(frozen=True)
class ReceiveSettings:
    """What a queue or subscription needs at run time, with durations already parsed."""

    lock_duration: timedelta
    max_delivery_count: int
    default_time_to_live: timedelta
    dead_letter_on_expiration: bool
    requires_session: bool = False


@dataclass(frozen=True)
class SendSettings:
    """What a queue or topic checks when a message arrives."""

    requires_duplicate_detection: bool
    duplicate_detection_window: timedelta
    default_time_to_live: timedelta


def receive_settings(props: QueueProperties | SubscriptionProperties) -> ReceiveSettings:
    return ReceiveSettings(
        lock_duration=props.lock_duration,
        max_delivery_count=props.max_delivery_count,
        default_time_to_live=props.default_message_time_to_live,
        dead_letter_on_expiration=props.dead_lettering_on_message_expiration,
        requires_session=props.requires_session,
    )


def send_settings(props: QueueProperties | TopicProperties) -> SendSettings:
    return SendSettings(
        requires_duplicate_detection=props.requires_duplicate_detection,
        duplicate_detection_window=props.duplicate_detection_history_time_window,
        default_time_to_live=props.default_message_time_to_live,
    )


def parse_topology(document: Any) -> EmulatorConfig:
    """Validate an already-parsed JSON document."""
    try:
        return EmulatorConfig.model_validate(document)
    except ValidationError as exc:
        raise TopologyError(f"invalid Service Bus topology: {exc}") from exc


def load_topology(path: str | Path) -> EmulatorConfig:
    """Read and validate a topology file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(f"cannot read topology file {path}: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TopologyError(f"topology file {path} is not JSON: {exc}") from exc
    return parse_topology(document)


# Limits of Microsoft's emulator (its JSON schema); Azure itself allows more. Outside them the
# stand-in still works, but the emulator container would refuse the same file.
_EMULATOR_NAMESPACE = "sbemulatorns"
_MAX_TTL = timedelta(hours=1)
_MIN_TTL = timedelta(minutes=5)
_MIN_DUP_WINDOW = timedelta(seconds=5)
_MAX_DUP_WINDOW = timedelta(minutes=5)
_MIN_QUEUE_LOCK = timedelta(seconds=5)
_MIN_SUBSCRIPTION_LOCK = timedelta(minutes=1)
_MAX_LOCK = timedelta(minutes=5)
_MAX_DELIVERY_COUNT = 10
_MAX_ENTITIES = 50


def emulator_limit_warnings(config: EmulatorConfig) -> list[str]:
    """Say where the file goes beyond what Microsoft's emulator accepts."""
    warnings: list[str] = []
    ns = config.namespace

    def within(what: str, value: timedelta, low: timedelta, high: timedelta) -> None:
        if not low <= value <= high:
            warnings.append(
                f"{what} is {format_iso_duration(value)}; the emulator accepts "
                f"{format_iso_duration(low)}..{format_iso_duration(high)}"
            )

    if ns.name != _EMULATOR_NAMESPACE:
        warnings.append(f"namespace is {ns.name!r}; the emulator requires {_EMULATOR_NAMESPACE!r}")
    if len(config.user_config.namespaces) > 1:
        warnings.append("the emulator serves one namespace; only the first is used")
    if len(ns.queues) + len(ns.topics) > _MAX_ENTITIES:
        warnings.append(f"the emulator allows at most {_MAX_ENTITIES} queues and topics")
    for queue in ns.queues:
        p = queue.properties
        within(
            f"queue {queue.name} DefaultMessageTimeToLive",
            p.default_message_time_to_live,
            _MIN_TTL,
            _MAX_TTL,
        )
        within(
            f"queue {queue.name} DuplicateDetectionHistoryTimeWindow",
            p.duplicate_detection_history_time_window,
            _MIN_DUP_WINDOW,
            _MAX_DUP_WINDOW,
        )
        within(f"queue {queue.name} LockDuration", p.lock_duration, _MIN_QUEUE_LOCK, _MAX_LOCK)
        if p.max_delivery_count > _MAX_DELIVERY_COUNT:
            warnings.append(f"queue {queue.name} MaxDeliveryCount above {_MAX_DELIVERY_COUNT}")
    for topic in ns.topics:
        t = topic.properties
        within(
            f"topic {topic.name} DefaultMessageTimeToLive",
            t.default_message_time_to_live,
            _MIN_TTL,
            _MAX_TTL,
        )
        within(
            f"topic {topic.name} DuplicateDetectionHistoryTimeWindow",
            t.duplicate_detection_history_time_window,
            _MIN_DUP_WINDOW,
            _MAX_DUP_WINDOW,
        )
        if not topic.subscriptions:
            warnings.append(f"topic {topic.name} has no subscription; the emulator needs one")
        for sub in topic.subscriptions:
            s = sub.properties
            where = f"subscription {topic.name}/{sub.name}"
            within(
                f"{where} DefaultMessageTimeToLive",
                s.default_message_time_to_live,
                _MIN_TTL,
                _MAX_TTL,
            )
            within(f"{where} LockDuration", s.lock_duration, _MIN_SUBSCRIPTION_LOCK, _MAX_LOCK)
            if s.max_delivery_count > _MAX_DELIVERY_COUNT:
                warnings.append(f"{where} MaxDeliveryCount above {_MAX_DELIVERY_COUNT}")
    return warnings


def stand_in_feature_warnings(config: EmulatorConfig) -> list[str]:
    """Say which configured features this stand-in does not reproduce."""
    warnings: list[str] = []
    ns = config.namespace
    for topic in ns.topics:
        for sub in topic.subscriptions:
            matching_with_action = [r.name for r in sub.rules if r.properties.action is not None]
            if len(matching_with_action) > 1:
                warnings.append(
                    f"{topic.name}/{sub.name}: several rules with actions; when more than one "
                    "matches, the stand-in applies them all to one copy (Service Bus makes a "
                    "copy per rule)"
                )
    return warnings
