"""Content sync through the runner: timers started from the admin API, the ERP simulator,
the storefront simulator (which verifies every signature) and the operations routes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devtools.erp_sim.testing import standard_api

EU_CATEGORIES = {"CHAIR", "DESK", "LAMP", "STORAGE", "TABLE"}


@pytest.fixture(scope="module")
def ops(storefront_url: str, runner_url: str, app_keys: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {"x-functions-key": app_keys["admin"]}
    with httpx.Client(base_url=runner_url, headers=headers, timeout=20) as client:
        yield client


def _eventually(check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.3)


def _runs(ops: httpx.Client) -> list[dict[str, Any]]:
    response = ops.get("/api/ops/content/runs", params={"limit": 50})
    assert response.status_code == 200, response.text
    return list(response.json()["runs"])


def _start(ops: httpx.Client, function: str) -> None:
    response = ops.post(f"/admin/functions/{function}", json={"input": ""})
    assert response.status_code == 202, response.text


def _finished_run(ops: httpx.Client, after: set[str]) -> dict[str, Any]:
    """The next run that finished and was not among ``after``."""

    def newest() -> dict[str, Any] | None:
        fresh = [r for r in _runs(ops) if r["runId"] not in after and r["outcome"] == "succeeded"]
        return fresh[0] if fresh else None

    found: dict[str, Any] = _eventually(newest)
    return found


def _expected(erp_base_url: str) -> dict[str, set[str]]:
    info = httpx.get(f"{erp_base_url}/_sim/info", timeout=10).json()
    malformed = set(info["fixtures"]["malformedContent"])
    response = httpx.get(f"{standard_api(erp_base_url)}/items", timeout=30)
    items = [i for i in response.json()["value"] if not i["blocked"]]
    sellable = [i for i in items if i["number"] not in malformed]
    return {
        "web": {i["number"] for i in sellable},
        "b2b-eu": {i["number"] for i in sellable if i["itemCategoryCode"] in EU_CATEGORIES},
    }


def _catalog(storefront_url: str, channel: str) -> set[str]:
    response = httpx.get(f"{storefront_url}/channels/{channel}/catalog", timeout=10)
    return set(response.json()["items"])


def _webhook_stats(storefront_url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{storefront_url}/_sim/stats", timeout=10).json())


@pytest.fixture(scope="module")
def synced(ops: httpx.Client, storefront_url: str) -> dict[str, Any]:
    """The nightly full pass, started by hand through the admin API."""
    before = {r["runId"] for r in _runs(ops)}
    _start(ops, "content_sync_full")
    run = _finished_run(ops, before)
    assert run["mode"] == "full"
    return run


def test_the_full_pass_puts_every_sellable_product_on_the_channels_that_sell_it(
    synced: dict[str, Any], storefront_url: str, erp_base_url: str
) -> None:
    expected = _expected(erp_base_url)
    assert _catalog(storefront_url, "web") == expected["web"]
    assert _catalog(storefront_url, "b2b-eu") == expected["b2b-eu"]
    by_status = {
        status
        for channel in _webhook_stats(storefront_url)["channels"].values()
        for status in channel["byStatus"]
    }
    assert by_status == {"200"}  # every request's signature verified
    assert synced["channels"]["web"]["applied"] >= len(expected["web"])
    assert synced["watermark"]["items"] and synced["endedAt"]


def test_a_delta_run_without_erp_changes_sends_nothing(
    synced: dict[str, Any], ops: httpx.Client, storefront_url: str
) -> None:
    requests_before = _webhook_stats(storefront_url)["totalRequests"]
    before = {r["runId"] for r in _runs(ops)}
    _start(ops, "content_sync_delta")
    run = _finished_run(ops, before)
    assert run["mode"] == "delta" and run["sent"] == 0 and run["failed"] == 0
    assert _webhook_stats(storefront_url)["totalRequests"] == requests_before


def test_operations_see_failures_and_status(
    synced: dict[str, Any], ops: httpx.Client, erp_base_url: str
) -> None:
    info = httpx.get(f"{erp_base_url}/_sim/info", timeout=10).json()
    response = ops.get("/api/ops/content/failures", params={"channel": "erp"})
    assert response.status_code == 200, response.text
    failures = {f["sku"]: f for f in response.json()["failures"]}
    assert set(failures) == set(info["fixtures"]["malformedContent"])
    assert all(f["error"] and f["stage"] == "erp-invalid" for f in failures.values())

    status = ops.get("/api/ops/content/status").json()
    assert status["watermark"]["items"] and status["passInProgress"] is None
    assert set(status["channels"]) == {"web", "b2b-eu"}


def test_operations_routes_need_the_admin_key_and_valid_queries(
    ops: httpx.Client, app_keys: dict[str, str]
) -> None:
    response = ops.get("/api/ops/content/runs", headers={"x-functions-key": app_keys["function"]})
    assert response.status_code == 401
    bad = ops.get("/api/ops/content/runs", params={"limit": 0})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    unknown = ops.get("/api/ops/content/failures", params={"channel": "Not A Channel"})
    assert unknown.status_code == 422
