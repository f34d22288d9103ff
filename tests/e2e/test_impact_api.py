"""``GET /api/ops/impact`` through the session's runner: admin only, bounded, consistent.

The shared runner's ledger holds whatever other e2e modules' orders left, so the checks are
internal consistency of the answer (totals = sum of days, the formula's figures), not counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from shared.config.policy import load_policy


@pytest.fixture(scope="module")
def ops(runner_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=runner_url, timeout=30) as client:
        yield client


def test_the_report_is_admin_only_and_bounded(ops: httpx.Client, app_keys: dict[str, str]) -> None:
    assert (
        ops.get("/api/ops/impact", headers={"x-functions-key": app_keys["function"]}).status_code
        == 401
    )
    admin = {"x-functions-key": app_keys["admin"]}
    for days in ("0", "93", "many"):
        response = ops.get("/api/ops/impact", params={"days": days}, headers=admin)
        assert response.status_code == 422, days
        assert response.headers["content-type"].startswith("application/problem+json")


def test_the_report_adds_up(ops: httpx.Client, app_keys: dict[str, str]) -> None:
    response = ops.get(
        "/api/ops/impact", params={"days": "7"}, headers={"x-functions-key": app_keys["admin"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    report = body["impact"]
    assert len(report["perDay"]) == 7 and report["days"] == 7
    totals = report["totals"]
    assert totals["caughtOrders"] == sum(day["caughtOrders"] for day in report["perDay"])
    assert totals["reachedErp"] == sum(day["reachedErp"] for day in report["perDay"])
    costs = load_policy().impact
    assert report["currency"] == costs.currency
    monthly = Decimal(report["estimatedCostAvoidedPerMonth"])
    observed = report["observedDays"]
    expected = (
        (
            totals["caughtCorrections"] * costs.cost_per_manual_correction
            + totals["caughtStockConflicts"] * costs.cost_per_oversold_order
        )
        * 30
        / observed
        if observed
        else Decimal(0)
    )
    assert monthly == expected.quantize(Decimal("0.01"))
    assert str(monthly) in report["formula"]
    assert body["accuracy"]["booked"] >= body["accuracy"]["repriced"]
    assert isinstance(body["bookingSurprises"], list)
