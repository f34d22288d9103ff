"""The whole product app as Microsoft's Python worker sees it: indexed, described and loaded.

The worker indexes every function in one request; a single refusal leaves Azure's host with no
function at all, so this is the app's first gate. It runs through the runner's host side
(`WorkerBridge`), the same requests the host sends.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devtools.runner.indexing import SERVICE_BUS_TRIGGER, index_app
from devtools.runner.worker import WorkerBridge

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def indexed() -> list:  # type: ignore[type-arg]
    sys.modules.pop("function_app", None)
    bridge = WorkerBridge(ROOT, "function_app.py")
    try:
        return await bridge.start()
    finally:
        bridge.stop()
        sys.modules.pop("function_app", None)


async def test_the_worker_indexes_and_loads_every_function_of_the_app(indexed: list) -> None:  # type: ignore[type-arg]
    import function_app

    function_app.app.functions_bindings = None  # get_functions() remembers earlier indexing
    declared = {f.get_function_name() for f in function_app.app.get_functions()}
    assert {f.name for f in indexed} == declared
    specs = index_app(indexed)  # and the host's own rules accept it
    assert len(specs) == len(declared)


async def test_every_service_bus_trigger_settles_through_the_sdk_type_binding(
    indexed: list,  # type: ignore[type-arg]
) -> None:
    triggers = {
        f.name: b for f in indexed for b in f.bindings if b.get("type") == SERVICE_BUS_TRIGGER
    }
    assert set(triggers) >= {
        "inventory_events",
        "orders_book",
        "erp_notification_process",
        "selftest_consume",
    }
    for name, binding in triggers.items():
        assert binding.get("autoCompleteMessages") is False, name
        assert binding.get("properties", {}).get("SupportsDeferredBinding") is True, name
