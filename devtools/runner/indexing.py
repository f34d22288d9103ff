"""Turn `app.get_functions()` into plain specs the runner serves, or refuse with a reason.

The binding objects of azure-functions 1.26 are read by their `type` string and attributes
(not their classes), so generic bindings declared with the same type work too.
"""

from __future__ import annotations

import inspect
import json
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import azure.functions as func

from devtools.runner.errors import AppIndexError, SettingsError
from devtools.runner.routes import RouteTemplate
from devtools.runner.schedules import Schedule, ScheduleError
from devtools.runner.settings import resolve_placeholders

HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
SERVICE_BUS_TRIGGER = "serviceBusTrigger"
HTTP_OUTPUT = "http"
SERVICE_BUS_OUTPUT = "serviceBus"
RETURN = "$return"
ALL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
AUTH_LEVELS = frozenset({"anonymous", "function", "admin"})
DEFAULT_SERVICE_BUS_CONNECTION = "AzureWebJobsServiceBus"


def _text(value: Any) -> str | None:
    """An enum from the decorators (AuthLevel, HttpMethod, Cardinality) or a plain string."""
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
    """Everything needed to invoke one function."""

    name: str
    trigger_type: str
    trigger: TriggerSpec
    trigger_param: str
    user_function: Callable[..., Any]
    is_async: bool
    wants_context: bool
    outputs: tuple[ServiceBusOutputSpec, ...]
    http_output_name: str | None
    trigger_annotation: Any
    bindings: list[dict[str, Any]]
    disabled: bool = False
    parameters: frozenset[str] = field(default_factory=frozenset)


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


def _http_trigger(trigger: Any, name: str) -> HttpTriggerSpec:
    route_text = getattr(trigger, "route", None) or name
    methods_raw = getattr(trigger, "methods", None)
    methods = frozenset(str(_text(m)).upper() for m in methods_raw) if methods_raw else ALL_METHODS
    unknown = methods - ALL_METHODS
    if unknown:
        raise AppIndexError(f"function {name}: unsupported HTTP methods {sorted(unknown)}")
    auth_level = (_text(getattr(trigger, "auth_level", None)) or "function").lower()
    if auth_level not in AUTH_LEVELS:
        raise AppIndexError(f"function {name}: unknown auth level {auth_level!r}")
    return HttpTriggerSpec(
        route=RouteTemplate.parse(route_text), methods=methods, auth_level=auth_level
    )


def _timer_trigger(trigger: Any, name: str, environ: Mapping[str, str]) -> TimerTriggerSpec:
    expression = _resolve(getattr(trigger, "schedule", None), "schedule", name, environ)
    try:
        schedule = Schedule.parse(expression)
    except ScheduleError as exc:
        raise AppIndexError(f"function {name}: {exc}") from exc
    return TimerTriggerSpec(
        schedule=schedule, run_on_startup=bool(getattr(trigger, "run_on_startup", False))
    )


def _service_bus_trigger(
    trigger: Any, name: str, environ: Mapping[str, str]
) -> ServiceBusTriggerSpec:
    if getattr(trigger, "is_sessions_enabled", None):
        raise AppIndexError(f"function {name}: session-enabled triggers are not supported locally")
    queue = getattr(trigger, "queue_name", None)
    topic = getattr(trigger, "topic_name", None)
    if (queue is None) == (topic is None):
        raise AppIndexError(f"function {name}: give either queue_name or topic_name")
    cardinality = (_text(getattr(trigger, "cardinality", None)) or "one").lower()
    auto_complete = getattr(trigger, "auto_complete_messages", None)
    return ServiceBusTriggerSpec(
        connection=_connection(getattr(trigger, "connection", None), name, environ),
        queue_name=_resolve(queue, "queue_name", name, environ) if queue is not None else None,
        topic_name=_resolve(topic, "topic_name", name, environ) if topic is not None else None,
        subscription_name=(
            _resolve(
                getattr(trigger, "subscription_name", None), "subscription_name", name, environ
            )
            if topic is not None
            else None
        ),
        many=cardinality == "many",
        auto_complete=None if auto_complete is None else bool(auto_complete),
    )


def _service_bus_output(
    binding: Any, name: str, environ: Mapping[str, str]
) -> ServiceBusOutputSpec:
    queue = getattr(binding, "queue_name", None)
    topic = getattr(binding, "topic_name", None)
    if (queue is None) == (topic is None):
        raise AppIndexError(
            f"function {name}: output {binding.name} needs queue_name or topic_name"
        )
    return ServiceBusOutputSpec(
        name=binding.name,
        connection=_connection(getattr(binding, "connection", None), name, environ),
        queue_name=_resolve(queue, "queue_name", name, environ) if queue is not None else None,
        topic_name=_resolve(topic, "topic_name", name, environ) if topic is not None else None,
    )


def _is_disabled(name: str, environ: Mapping[str, str]) -> bool:
    # The host's switch: AzureWebJobs.<FunctionName>.Disabled = true.
    return environ.get(f"AzureWebJobs.{name}.Disabled", "").strip().lower() in {"true", "1"}


def _trigger_annotation(user_function: Callable[..., Any], param: str) -> Any:
    try:
        hints = typing.get_type_hints(user_function)
    except Exception:  # unresolvable annotations only lose the str/bytes convenience
        hints = {}
    return hints.get(param)


def index_function(function: func.Function, environ: Mapping[str, str]) -> FunctionSpec:
    """One function as a spec; raises AppIndexError for anything the runner cannot serve."""
    name = function.get_function_name() or ""
    trigger = function.get_trigger()
    if trigger is None:
        raise AppIndexError(f"function {name} has no trigger")
    trigger_type = str(trigger.type)
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
    for binding in function.get_bindings():
        if binding is trigger:
            continue
        binding_type = str(binding.type)
        if binding_type == HTTP_OUTPUT:
            http_output = binding.name
        elif binding_type == SERVICE_BUS_OUTPUT:
            outputs.append(_service_bus_output(binding, name, environ))
        else:
            raise AppIndexError(
                f"function {name}: binding {binding.name!r} of type {binding_type!r} is not "
                "supported by the local runner"
            )

    user_function = function.get_user_function()
    parameters = inspect.signature(user_function).parameters
    known = {trigger.name, "context", *(o.name for o in outputs), http_output}
    for parameter in parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.name not in known and parameter.default is parameter.empty:
            raise AppIndexError(f"function {name}: parameter {parameter.name!r} matches no binding")
    return FunctionSpec(
        name=name,
        trigger_type=trigger_type,
        trigger=spec,
        trigger_param=trigger.name,
        user_function=user_function,
        is_async=inspect.iscoroutinefunction(user_function),
        wants_context="context" in parameters,
        outputs=tuple(outputs),
        http_output_name=http_output,
        trigger_annotation=_trigger_annotation(user_function, trigger.name),
        bindings=json.loads(function.get_function_json())["bindings"],
        disabled=_is_disabled(name, environ),
        parameters=frozenset(parameters),
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
    app: func.FunctionApp, environ: Mapping[str, str] | None = None
) -> list[FunctionSpec]:
    """Index every function of the app, refusing duplicates of names and (route, method)."""
    source = os.environ if environ is None else environ
    # get_functions() remembers names it has seen and would call a second indexing a duplicate.
    if hasattr(app, "functions_bindings"):
        app.functions_bindings = None
    try:
        functions = app.get_functions()
    except ValueError as exc:
        raise AppIndexError(f"the app cannot be indexed: {exc}") from exc
    specs = [index_function(f, source) for f in functions]
    _check_duplicates(specs)
    return specs
