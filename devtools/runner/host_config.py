"""The parts of host.json the runner honours: the HTTP route prefix and Service Bus tuning.

Both the v4 shape (`extensions.serviceBus.maxConcurrentCalls`, ...) and the older
`messageHandlerOptions` / `batchOptions` shape are read; the flat v4 keys win when both are
present, as they do for the Service Bus extension 5.x.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devtools.runner.errors import HostConfigError

DEFAULT_ROUTE_PREFIX = "api"
_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2}):(?P<seconds>\d{1,2})"
    r"(?:\.(?P<fraction>\d{1,7}))?$"
)


def parse_timespan(text: str) -> timedelta:
    """A .NET TimeSpan string (`[d.]hh:mm:ss[.fffffff]`) as a timedelta."""
    match = _TIMESPAN.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a TimeSpan like '00:05:00'")
    fraction = match.group("fraction") or "0"
    return timedelta(
        days=int(match.group("days") or 0),
        hours=int(match.group("hours")),
        minutes=int(match.group("minutes")),
        seconds=int(match.group("seconds")),
        microseconds=int(fraction.ljust(7, "0")[:7]) // 10,
    )


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _MessageHandlerOptions(_Loose):
    max_concurrent_calls: int | None = Field(default=None, alias="maxConcurrentCalls", ge=1)
    auto_complete: bool | None = Field(default=None, alias="autoComplete")
    max_auto_renew_duration: str | None = Field(default=None, alias="maxAutoRenewDuration")


class _BatchOptions(_Loose):
    max_message_count: int | None = Field(default=None, alias="maxMessageCount", ge=1)
    auto_complete: bool | None = Field(default=None, alias="autoComplete")


class _ServiceBusSection(_Loose):
    max_concurrent_calls: int | None = Field(default=None, alias="maxConcurrentCalls", ge=1)
    auto_complete_messages: bool | None = Field(default=None, alias="autoCompleteMessages")
    max_auto_lock_renewal_duration: str | None = Field(
        default=None, alias="maxAutoLockRenewalDuration"
    )
    max_message_batch_size: int | None = Field(default=None, alias="maxMessageBatchSize", ge=1)
    max_batch_wait_time: str | None = Field(default=None, alias="maxBatchWaitTime")
    prefetch_count: int | None = Field(default=None, alias="prefetchCount", ge=0)
    message_handler_options: _MessageHandlerOptions | None = Field(
        default=None, alias="messageHandlerOptions"
    )
    batch_options: _BatchOptions | None = Field(default=None, alias="batchOptions")


class _HttpSection(_Loose):
    route_prefix: str | None = Field(default=None, alias="routePrefix")


class _Extensions(_Loose):
    http: _HttpSection | None = None
    service_bus: _ServiceBusSection | None = Field(default=None, alias="serviceBus")


class _HostJson(_Loose):
    version: str | None = None
    extensions: _Extensions | None = None


@dataclass(frozen=True)
class ServiceBusOptions:
    """Trigger tuning with the Service Bus extension's defaults."""

    max_concurrent_calls: int = 16
    auto_complete_messages: bool = True
    max_auto_lock_renewal_duration: timedelta = timedelta(minutes=5)
    max_message_batch_size: int = 1000
    max_batch_wait_time: timedelta = timedelta(seconds=30)
    prefetch_count: int = 0


@dataclass(frozen=True)
class HostConfig:
    """What the runner reads from host.json."""

    route_prefix: str = DEFAULT_ROUTE_PREFIX
    service_bus: ServiceBusOptions = field(default_factory=ServiceBusOptions)
    raw: dict[str, Any] = field(default_factory=dict)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _service_bus_options(section: _ServiceBusSection | None) -> ServiceBusOptions:
    defaults = ServiceBusOptions()
    if section is None:
        return defaults
    handler = section.message_handler_options or _MessageHandlerOptions()
    batch = section.batch_options or _BatchOptions()
    renewal = _first(section.max_auto_lock_renewal_duration, handler.max_auto_renew_duration)
    batch_wait = section.max_batch_wait_time
    try:
        return ServiceBusOptions(
            max_concurrent_calls=_first(
                section.max_concurrent_calls,
                handler.max_concurrent_calls,
                defaults.max_concurrent_calls,
            ),
            auto_complete_messages=_first(
                section.auto_complete_messages,
                handler.auto_complete,
                batch.auto_complete,
                defaults.auto_complete_messages,
            ),
            max_auto_lock_renewal_duration=(
                parse_timespan(renewal) if renewal else defaults.max_auto_lock_renewal_duration
            ),
            max_message_batch_size=_first(
                section.max_message_batch_size,
                batch.max_message_count,
                defaults.max_message_batch_size,
            ),
            max_batch_wait_time=(
                parse_timespan(batch_wait) if batch_wait else defaults.max_batch_wait_time
            ),
            prefetch_count=_first(section.prefetch_count, defaults.prefetch_count),
        )
    except ValueError as exc:
        raise HostConfigError(f"host.json extensions.serviceBus: {exc}") from exc


def parse_host_config(raw: dict[str, Any]) -> HostConfig:
    """Validate a host.json document and pick out what the runner needs."""
    try:
        parsed = _HostJson.model_validate(raw)
    except ValidationError as exc:
        raise HostConfigError(f"host.json is invalid: {exc}") from exc
    extensions = parsed.extensions or _Extensions()
    http = extensions.http or _HttpSection()
    prefix = DEFAULT_ROUTE_PREFIX if http.route_prefix is None else http.route_prefix
    return HostConfig(
        route_prefix=prefix.strip("/"),
        service_bus=_service_bus_options(extensions.service_bus),
        raw=raw,
    )


def load_host_config(path: Path | None) -> HostConfig:
    """host.json at `path`, or the defaults when there is none."""
    if path is None or not path.is_file():
        return HostConfig()
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise HostConfigError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise HostConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise HostConfigError(f"{path} must hold a JSON object")
    return parse_host_config(raw)
