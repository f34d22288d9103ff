"""Turn the worker's function metadata into plain specs the runner serves, or refuse.

The host knows the app only from what the Python worker answers to its metadata request:
each function's name, id and raw bindings (JSON). The host's own rules apply on top, as the
Functions host enforces them: function and binding names, routes that do not start with
`admin` or `runtime`, NCRONTAB timer schedules only (TimeSpan schedules are not allowed on
Flex Consumption), and the trigger and binding types this runner serves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from devtools.runner.errors import AppIndexError, SettingsError
from devtools.runner.routes import RouteTemplate
from devtools.runner.schedules import Schedule, ScheduleError
from devtools.runner.settings import resolve_placeholders
from devtools.runner.worker import IndexedFunction

HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
SERVICE_BUS_TRIGGER = "serviceBusTrigger"
HTTP_OUTPUT = "http"
SERVICE_BUS_OUTPUT = "serviceBus"
RETURN = "$return"
ALL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
AUTH_LEVELS = frozenset({"anonymous", "function", "admin"})
DEFAULT_SERVICE_BUS_CONNECTION = "AzureWebJobsServiceBus"
# The host's naming rules for functions and bindings.
FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,127}$", re.IGNORECASE)
BINDING_NAME = re.compile(r"^([a-z][a-z0-9_]{0,127}|\$return)$", re.IGNORECASE)
# Route prefixes the host keeps for itself.
RESERVED_ROUTE_PREFIXES = ("admin", "runtime")


def _text(value: Any) -> str | None:
    """A raw-binding value: an enum's name as the worker serialises it, or a plain string."""
    if value is None:
        return None
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


@dataclass(frozen=True)
class HttpTriggerSpec:
    route: RouteTemplate
    methods: frozenset[str]
    auth_level: str


@dataclass(frozen=True)
class TimerTriggerSpec:
    schedule: Schedule
    run_on_startup: bool
    use_monitor: bool | None = None


@dataclass(frozen=True)
class ServiceBusTriggerSpec:
    connection: str
    queue_name: str | None
    topic_name: str | None
    subscription_name: str | None
    many: bool
    auto_complete: bool | None

    @property
    def entity(self) -> str:
        if self.queue_name is not None:
            return self.queue_name
        return f"{self.topic_name}/Subscriptions/{self.subscription_name}"


@dataclass(frozen=True)
class ServiceBusOutputSpec:
    name: str
    connection: str
    queue_name: str | None
    topic_name: str | None

    @property
    def entity(self) -> str:
        return self.queue_name or self.topic_name or ""


TriggerSpec = HttpTriggerSpec | TimerTriggerSpec | ServiceBusTriggerSpec


@dataclass(frozen=True)
class FunctionSpec:
    """Everything the host needs to serve one function; invocation is the worker's job."""

    name: str
    function_id: str
    trigger_type: str
    trigger: TriggerSpec
    trigger_param: str
    outputs: tuple[ServiceBusOutputSpec, ...]
    http_output_name: str | None
    bindings: list[dict[str, Any]]
    sdk_type_trigger: bool = False
    disabled: bool = False
    indexed: IndexedFunction | None = field(default=None, compare=False, repr=False)


def _resolve(value: Any, what: str, function_name: str, environ: Mapping[str, str]) -> str:
    if value is None or value == "":
        raise AppIndexError(f"function {function_name}: {what} is missing")
    try:
        return resolve_placeholders(str(value), environ)
    except SettingsError as exc:
        raise AppIndexError(f"function {function_name}: {what}: {exc}") from exc


def _connection(value: Any, function_name: str, environ: Mapping[str, str]) -> str:
    if value is None or value == "":
        return DEFAULT_SERVICE_BUS_CONNECTION
    return _resolve(value, "connection", function_name, environ)


def _http_trigger(binding: Mapping[str, Any], name: str) -> HttpTriggerSpec:
    route_text = binding.get("route") or name
    first = str(route_text).strip("/").split("/", 1)[0].lower()
    if first in RESERVED_ROUTE_PREFIXES:
        raise AppIndexError(
            f"function {name}: the route {route_text!r} starts with {first!r}, "
            "which the Functions host reserves"
        )
    methods_raw = binding.get("methods")
    methods = frozenset(str(_text(m)).upper() for m in methods_raw) if methods_raw else ALL_METHODS
    unknown = methods - ALL_METHODS
    if unknown:
        raise AppIndexError(f"function {name}: unsupported HTTP methods {sorted(unknown)}")
    auth_level = (_text(binding.get("authLevel")) or "function").lower()
    if auth_level not in AUTH_LEVELS:
        raise AppIndexError(f"function {name}: unknown auth level {auth_level!r}")
    return HttpTriggerSpec(
        route=RouteTemplate.parse(str(route_text)), methods=methods, auth_level=auth_level
    )


def _timer_trigger(
    binding: Mapping[str, Any], name: str, environ: Mapping[str, str]
) -> TimerTriggerSpec:
    expression = _resolve(binding.get("schedule"), "schedule", name, environ)
    try:
        schedule = Schedule.parse(expression)
    except ScheduleError as exc:
        raise AppIndexError(f"function {name}: {exc}") from exc
    return TimerTriggerSpec(
        schedule=schedule,
        run_on_startup=str(binding.get("runOnStartup", False)).lower() == "true",
        use_monitor=_flag(binding.get("useMonitor")),
    )


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    return str(value).strip().lower() in {"true", "1"}


def _service_bus_trigger(
    binding: Mapping[str, Any], name: str, environ: Mapping[str, str]
) -> ServiceBusTriggerSpec:
    if _flag(binding.get("isSessionsEnabled")):
        raise AppIndexError(f"function {name}: session-enabled triggers are not supported locally")
    queue = binding.get("queueName")
    topic = binding.get("topicName")
    if (queue is None) == (topic is None):
        raise AppIndexError(f"function {name}: give either queue_name or topic_name")
    cardinality = (_text(binding.get("cardinality")) or "one").lower()
    return ServiceBusTriggerSpec(
        connection=_connection(binding.get("connection"), name, environ),
        queue_name=_resolve(queue, "queue_name", name, environ) if queue is not None else None,
        topic_name=_resolve(topic, "topic_name", name, environ) if topic is not None else None,
        subscription_name=(
            _resolve(binding.get("subscriptionName"), "subscription_name", name, environ)
            if topic is not None
            else None
        ),
        many=cardinality == "many",
        auto_complete=_flag(binding.get("autoCompleteMessages")),
    )


def _service_bus_output(
    binding: Mapping[str, Any], name: str, environ: Mapping[str, str]
) -> ServiceBusOutputSpec:
    queue = binding.get("queueName")
    topic = binding.get("topicName")
    if (queue is None) == (topic is None):
        raise AppIndexError(
            f"function {name}: output {binding.get('name')} needs queue_name or topic_name"
        )
    return ServiceBusOutputSpec(
        name=str(binding.get("name")),
        connection=_connection(binding.get("connection"), name, environ),
        queue_name=_resolve(queue, "queue_name", name, environ) if queue is not None else None,
        topic_name=_resolve(topic, "topic_name", name, environ) if topic is not None else None,
    )


def _is_disabled(name: str, environ: Mapping[str, str]) -> bool:
    # The host's switch: AzureWebJobs.<FunctionName>.Disabled = true.
    return environ.get(f"AzureWebJobs.{name}.Disabled", "").strip().lower() in {"true", "1"}


def _direction(binding: Mapping[str, Any]) -> str:
    return str(binding.get("direction", "IN")).upper()


def index_function(function: IndexedFunction, environ: Mapping[str, str]) -> FunctionSpec:
    """One function as a spec; raises AppIndexError for anything the host would refuse."""
    name = function.name
    if not FUNCTION_NAME.match(name):
        raise AppIndexError(
            f"the function name {name!r} is invalid: a letter, then letters, digits, "
            "'_' or '-', at most 128 characters"
        )
    for binding in function.bindings:
        if not BINDING_NAME.match(str(binding.get("name", ""))):
            raise AppIndexError(
                f"function {name}: the binding name {binding.get('name')!r} is invalid"
            )
    triggers = [b for b in function.bindings if str(b.get("type", "")).endswith("Trigger")]
    if len(triggers) != 1:
        raise AppIndexError(f"function {name} must have exactly one trigger")
    trigger = triggers[0]
    trigger_type = str(trigger["type"])
    spec: TriggerSpec
    if trigger_type == HTTP_TRIGGER:
        spec = _http_trigger(trigger, name)
    elif trigger_type == TIMER_TRIGGER:
        spec = _timer_trigger(trigger, name, environ)
    elif trigger_type == SERVICE_BUS_TRIGGER:
        spec = _service_bus_trigger(trigger, name, environ)
    else:
        raise AppIndexError(f"function {name}: trigger type {trigger_type!r} is not supported")

    outputs: list[ServiceBusOutputSpec] = []
    http_output: str | None = None
    for binding in function.bindings:
        if binding is trigger:
            continue
        binding_type = str(binding.get("type"))
        if binding_type == HTTP_OUTPUT and _direction(binding) == "OUT":
            http_output = str(binding.get("name"))
        elif binding_type == SERVICE_BUS_OUTPUT and _direction(binding) == "OUT":
            outputs.append(_service_bus_output(binding, name, environ))
        else:
            raise AppIndexError(
                f"function {name}: binding {binding.get('name')!r} of type {binding_type!r} "
                "is not supported by the local runner"
            )
    properties = trigger.get("properties") or {}
    return FunctionSpec(
        name=name,
        function_id=function.function_id,
        trigger_type=trigger_type,
        trigger=spec,
        trigger_param=str(trigger.get("name")),
        outputs=tuple(outputs),
        http_output_name=http_output,
        bindings=function.bindings,
        sdk_type_trigger=bool(_flag(properties.get("SupportsDeferredBinding"))),
        disabled=_is_disabled(name, environ),
        indexed=function,
    )


def _check_duplicates(specs: list[FunctionSpec]) -> None:
    names: dict[str, int] = {}
    for spec in specs:
        names[spec.name.lower()] = names.get(spec.name.lower(), 0) + 1
    duplicated = sorted(n for n, count in names.items() if count > 1)
    if duplicated:
        raise AppIndexError(f"duplicate function names: {', '.join(duplicated)}")
    claimed: dict[tuple[str, str], FunctionSpec] = {}
    for spec in specs:
        if not isinstance(spec.trigger, HttpTriggerSpec):
            continue
        for method in sorted(spec.trigger.methods):
            key = (spec.trigger.route.shape, method)
            other = claimed.get(key)
            if other is not None:
                assert isinstance(other.trigger, HttpTriggerSpec)
                raise AppIndexError(
                    f"duplicate route: {other.name} ({method} {other.trigger.route.template!r}) "
                    f"and {spec.name} ({method} {spec.trigger.route.template!r}) "
                    "would serve the same requests"
                )
            claimed[key] = spec


def index_app(
    functions: list[IndexedFunction], environ: Mapping[str, str] | None = None
) -> list[FunctionSpec]:
    """Index what the worker described, refusing duplicates of names and (route, method)."""
    source = os.environ if environ is None else environ
    specs = [index_function(f, source) for f in functions]
    _check_duplicates(specs)
    return specs
