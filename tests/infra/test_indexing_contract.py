"""The indexing contract: what the Functions host sees when it indexes function_app.app.

Unique function names, every %SETTING% a trigger names is a known setting, connection names
resolve to a setting, and the HTTP surface keeps its security levels: storefront routes at
function level, operations routes (ops/...) at admin level, and only the health route and the
Business Central webhook (which proves itself with clientState) anonymous.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from shared.config.settings import Settings
from tests.infra.app_index import all_bindings, indexed_functions
from tests.infra.bicep import ROOT

PLACEHOLDER = re.compile(r"%([^%]+)%")


def _setting_names() -> set[str]:
    return {
        str(choice)
        for field in Settings.model_fields.values()
        for choice in getattr(field.validation_alias, "choices", [])
    }


def _http_triggers() -> list[tuple[str, str, str]]:
    """(function, route, auth level) of every HTTP-triggered function."""
    return [
        (name, binding["route"], binding["authLevel"])
        for name, binding in all_bindings()
        if binding["type"] == "httpTrigger"
    ]


def may_be_anonymous(route: str) -> bool:
    # Health is for probes and holds nothing secret, nor does the generated API contract;
    # Business Central cannot send a function key, so its webhook checks clientState instead.
    return (
        route in ("health", "openapi.json") or route.startswith("erp/") or "notifications" in route
    )


def test_function_names_are_unique() -> None:
    names = [name for name, _ in indexed_functions()]
    assert len(names) >= 10
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    assert duplicates == []


def test_every_placeholder_names_a_setting_the_app_knows() -> None:
    sample = set(json.loads((ROOT / "local.settings.sample.json").read_text())["Values"])
    known = _setting_names()
    found = []
    for name, binding in all_bindings():
        for key, value in binding.items():
            for setting in PLACEHOLDER.findall(str(value)):
                found.append(setting)
                assert setting in known, (
                    f"{name}.{key} names %{setting}%, not in shared/config/settings.py"
                )
                assert setting in sample, f"{name}.{key}: %{setting}% is missing from the sample"
    # Timer schedules are literals derived from the sync policy (checked in
    # test_app_settings.py), so there may be no placeholder left; any that appears is checked.
    assert all(setting in known for setting in found)


def test_every_connection_resolves_to_a_setting() -> None:
    known = _setting_names()
    connections = {b["connection"] for _, b in all_bindings() if "connection" in b}
    assert connections
    for connection in connections:
        # Either the connection string itself or its identity-based form (X__...).
        assert any(s == connection or s.startswith(connection + "__") for s in known), connection


def test_only_health_and_the_erp_webhook_are_anonymous() -> None:
    anonymous = {route for _, route, level in _http_triggers() if level == "ANONYMOUS"}
    assert "health" in anonymous
    assert {route for route in anonymous if not may_be_anonymous(route)} == set()


def test_operations_routes_need_the_admin_key() -> None:
    ops = [(name, level) for name, route, level in _http_triggers() if route.startswith("ops/")]
    assert ops, "no operations route found"
    assert [(name, level) for name, level in ops if level != "ADMIN"] == []


def test_storefront_routes_need_a_function_key() -> None:
    storefront = [
        (name, route, level)
        for name, route, level in _http_triggers()
        if not route.startswith("ops/") and not may_be_anonymous(route)
    ]
    assert storefront
    assert [item for item in storefront if item[2] != "FUNCTION"] == []


def test_anonymous_rule_is_not_vacuous() -> None:
    # The predicate must refuse an ordinary storefront route, or the test above proves nothing.
    assert not may_be_anonymous("prices/quote")
    assert not may_be_anonymous("ops/selftest")
    assert may_be_anonymous("erp/notifications")
