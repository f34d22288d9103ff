"""The runner's building blocks without a server: route templates, schedules, host.json,
settings files, output encoding and the dead-letter convention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devtools.runner import worker_messages as messages
from devtools.runner.errors import (
    AppIndexError,
    HostConfigError,
    SettingsError,
)
from devtools.runner.host_config import load_host_config, parse_host_config, parse_timespan
from devtools.runner.keys import Keys
from devtools.runner.routes import RouteTemplate
from devtools.runner.schedules import Schedule, ScheduleError
from devtools.runner.settings import (
    apply_settings,
    default_settings_path,
    read_settings_file,
    resolve_placeholders,
)
from devtools.runner.wire import output_bodies

# -- routes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("orders/{orderId}", "orders/o-17", {"orderId": "o-17"}),
        ("orders/{orderId}", "ORDERS/o-17/", {"orderId": "o-17"}),
        ("orders/{orderId}", "orders", None),
        ("orders/{orderId}", "orders/a/b", None),
        ("items/{sku}", "items/A%2FB", {"sku": "A/B"}),
        ("items/{id:int}", "items/12", {"id": "12"}),
        ("items/{id:int}", "items/12x", None),
        ("items/{id:int}", "items/99999999999", None),
        ("items/{id:long:min(1)}", "items/0", None),
        ("items/{id:range(1,5)}", "items/5", {"id": "5"}),
        ("items/{id:range(1,5)}", "items/6", None),
        ("items/{code:length(3)}", "items/abc", {"code": "abc"}),
        ("items/{code:alpha}", "items/ab1", None),
        (
            "items/{id:guid}",
            "items/7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20",
            {"id": "7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20"},
        ),
        ("items/{flag:bool}", "items/TRUE", {"flag": "TRUE"}),
        ("items/{amount:decimal}", "items/12.50", {"amount": "12.50"}),
        ("items/{code:regex(^[a-z]{{2}}\\d$)}", "items/ab1", {"code": "ab1"}),
        ("items/{code:regex(^[a-z]{{2}}\\d$)}", "items/abc", None),
        ("files/{name?}", "files", {}),
        ("files/{name?}", "files/a.txt", {"name": "a.txt"}),
        ("files/{name=index}", "files", {"name": "index"}),
        ("files/{name}.{ext}", "files/report.final.pdf", {"name": "report", "ext": "final.pdf"}),
        ("static/{*path}", "static/css/site.css", {"path": "css/site.css"}),
        ("static/{*path}", "static", {}),
        ("health", "health", {}),
    ],
)
def test_route_templates_match_like_the_host(
    template: str, path: str, expected: dict[str, str] | None
) -> None:
    assert RouteTemplate.parse(template).match(path) == expected


@pytest.mark.parametrize(
    "template",
    [
        "orders/{id}/{id}",
        "files/{name?}/more",
        "static/{*path}/more",
        "items/{id:nosuchconstraint}",
        "items/{id",
        "items/{id:regex([)}",
        "items/{bad-name}",
    ],
)
def test_malformed_route_templates_are_refused(template: str) -> None:
    with pytest.raises(AppIndexError):
        RouteTemplate.parse(template)


def test_route_precedence_puts_literals_before_parameters_before_catch_alls() -> None:
    templates = ["orders/{*rest}", "orders/{id}", "orders/search", "orders/{id:int}"]
    ordered = sorted(templates, key=lambda t: RouteTemplate.parse(t).precedence)
    assert ordered == ["orders/search", "orders/{id:int}", "orders/{id}", "orders/{*rest}"]


def test_route_shape_ignores_parameter_names_and_literal_case() -> None:
    assert RouteTemplate.parse("Orders/{orderId}").shape == RouteTemplate.parse("orders/{id}").shape
    assert RouteTemplate.parse("orders/{id:int}").shape != RouteTemplate.parse("orders/{id}").shape


# -- schedules -----------------------------------------------------------------------------

START = datetime(2026, 3, 2, 10, 0, 0, 500_000, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("expression", "expected_next"),
    [
        ("*/1 * * * * *", START.replace(second=1, microsecond=0)),
        ("0 */5 * * * *", START.replace(minute=5, microsecond=0)),
        ("0 30 9 * * *", (START + timedelta(days=1)).replace(hour=9, minute=30, microsecond=0)),
        # NCRONTAB needs both day fields when both are set: the 1st that is a Sunday.
        ("0 0 0 1 * Sun", datetime(2026, 11, 1, tzinfo=UTC)),
        ("*/5 * * * *", START.replace(minute=5, microsecond=0)),
    ],
)
def test_schedules_give_the_next_occurrence_in_utc(
    expression: str, expected_next: datetime
) -> None:
    assert Schedule.parse(expression).next_after(START) == expected_next


@pytest.mark.parametrize("expression", ["", "* * *", "61 * * * * *", "every minute", "00:00:00"])
def test_invalid_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        Schedule.parse(expression)


def test_timespan_schedules_are_refused_as_flex_consumption_does() -> None:
    with pytest.raises(ScheduleError, match="NCRONTAB expressions only"):
        Schedule.parse("00:00:30")


# -- host.json -----------------------------------------------------------------------------


def test_host_json_v4_shape() -> None:
    config = parse_host_config(
        {
            "version": "2.0",
            "extensions": {
                "http": {"routePrefix": "/v1/"},
                "serviceBus": {
                    "maxConcurrentCalls": 4,
                    "autoCompleteMessages": False,
                    "maxAutoLockRenewalDuration": "00:02:30",
                    "maxMessageBatchSize": 50,
                    "prefetchCount": 0,
                },
            },
        }
    )
    assert config.route_prefix == "v1"
    bus = config.service_bus
    assert (bus.max_concurrent_calls, bus.auto_complete_messages) == (4, False)
    assert bus.max_auto_lock_renewal_duration == timedelta(minutes=2, seconds=30)
    assert bus.max_message_batch_size == 50


def test_host_json_message_handler_options_shape() -> None:
    config = parse_host_config(
        {
            "extensions": {
                "serviceBus": {
                    "messageHandlerOptions": {
                        "maxConcurrentCalls": 3,
                        "autoComplete": False,
                        "maxAutoRenewDuration": "00:01:00",
                    },
                    "batchOptions": {"maxMessageCount": 7},
                }
            }
        }
    )
    bus = config.service_bus
    assert bus.max_concurrent_calls == 3
    assert bus.auto_complete_messages is False
    assert bus.max_auto_lock_renewal_duration == timedelta(minutes=1)
    assert bus.max_message_batch_size == 7


def test_host_json_defaults_and_empty_route_prefix(tmp_path: Path) -> None:
    defaults = load_host_config(tmp_path / "missing.json")
    assert defaults.route_prefix == "api"
    assert defaults.service_bus.max_concurrent_calls == 16
    assert defaults.service_bus.auto_complete_messages is True
    assert parse_host_config({"extensions": {"http": {"routePrefix": ""}}}).route_prefix == ""


@pytest.mark.parametrize(
    "document",
    [
        {"extensions": {"serviceBus": {"maxConcurrentCalls": 0}}},
        {"extensions": {"serviceBus": {"maxAutoLockRenewalDuration": "five minutes"}}},
        {"extensions": {"http": {"routePrefix": 3}}},
    ],
)
def test_bad_host_json_values_are_refused(document: dict[str, object]) -> None:
    with pytest.raises(HostConfigError):
        parse_host_config(document)


def test_timespans() -> None:
    assert parse_timespan("00:05:00") == timedelta(minutes=5)
    assert parse_timespan("1.02:00:00.5") == timedelta(days=1, hours=2, milliseconds=500)
    with pytest.raises(ValueError):
        parse_timespan("5m")


# -- settings ------------------------------------------------------------------------------


def test_settings_file_values_and_precedence(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"A": "1", "B": True, "C": 2.5}, "Host": {}}))
    environ = {"A": "from-env"}
    added = apply_settings(read_settings_file(path), environ)
    assert environ == {"A": "from-env", "B": "true", "C": "2.5"}
    assert sorted(added) == ["B", "C"]


def test_default_settings_file_prefers_local_over_sample(tmp_path: Path) -> None:
    assert default_settings_path(tmp_path) is None
    (tmp_path / "local.settings.sample.json").write_text("{}")
    assert default_settings_path(tmp_path) == tmp_path / "local.settings.sample.json"
    (tmp_path / "local.settings.json").write_text("{}")
    assert default_settings_path(tmp_path) == tmp_path / "local.settings.json"


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps({"Values": {"A": {"nested": 1}}}), json.dumps({"IsEncrypted": True})],
)
def test_unusable_settings_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(content)
    with pytest.raises(SettingsError):
        read_settings_file(path)


def test_placeholders_resolve_from_settings() -> None:
    environ = {"SCHEDULE": "0 */5 * * * *", "ENV": "dev"}
    assert resolve_placeholders("%SCHEDULE%", environ) == "0 */5 * * * *"
    assert resolve_placeholders("orders-%ENV%", environ) == "orders-dev"
    assert resolve_placeholders("no placeholders", environ) == "no placeholders"
    with pytest.raises(SettingsError, match="MISSING"):
        resolve_placeholders("%MISSING%", environ)


# -- keys, outputs, dead-letter convention ---------------------------------------------------


def test_key_levels() -> None:
    keys = Keys(function_key="fn", admin_key="ad")
    assert keys.allows("anonymous", None)
    assert keys.allows("function", "fn") and keys.allows("function", "ad")
    assert not keys.allows("function", None) and not keys.allows("function", "x")
    assert keys.allows("admin", "ad") and not keys.allows("admin", "fn")
    unset = Keys(function_key=None, admin_key=None)
    assert not unset.allows("function", "") and not unset.allows("admin", None)


def test_output_values_from_the_worker_become_one_message_each() -> None:
    assert output_bodies(messages.TypedData(string="é")) == ["é".encode()]
    assert output_bodies(messages.TypedData(bytes=b"\x00")) == [b"\x00"]
    assert output_bodies(messages.TypedData(json='["a", {"b": 1}]')) == [b"a", b'{"b": 1}']
    assert output_bodies(None) == []
    assert output_bodies(messages.TypedData()) == []
