"""The credit check through the session's runner against the shared ERP simulator.

Read-only on the shared stack (no faults: an outage would leave the shared app's circuit
breaker open for other modules); staleness and 503 are covered by the integration tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from devtools.erp_sim.testing import custom_api


@pytest.fixture(scope="module")
def api(runner_url: str, app_keys: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {"x-functions-key": app_keys["function"]}
    with httpx.Client(base_url=runner_url, headers=headers, timeout=30) as client:
        yield client


def _summary(erp_base_url: str, customer: str) -> dict[str, Any]:
    response = httpx.get(
        f"{custom_api(erp_base_url)}/customerCreditSummaries",
        params={"$filter": f"customerNumber eq '{customer}'"},
        timeout=10,
    )
    return dict(response.json()["value"][0])


def test_the_answer_carries_the_erps_figures_as_money_strings(
    api: httpx.Client, erp_base_url: str
) -> None:
    response = api.post(
        "/api/credit/check",
        json={"customerId": "C00001", "amount": "10.00"},
        headers={"x-correlation-id": "credit-e2e-1"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-correlation-id"] == "credit-e2e-1"
    body = response.json()
    summary = _summary(erp_base_url, "C00001")
    assert Decimal(body["creditLimit"]) == Decimal(str(summary["creditLimit"]))
    assert Decimal(body["balance"]) == Decimal(str(summary["balance"]))
    assert Decimal(body["openOrdersAmount"]) == Decimal(str(summary["outstandingOrdersAmount"]))
    for field in ("creditLimit", "balance", "openOrdersAmount", "pendingAmount", "availableCredit"):
        assert isinstance(body[field], str) and "." in body[field]
    expected = (
        Decimal(body["creditLimit"])
        - Decimal(body["balance"])
        - Decimal(body["openOrdersAmount"])
        - Decimal(body["pendingAmount"])
    )
    assert Decimal(body["availableCredit"]) == expected
    assert body["approved"] is (body["reasons"] == []) and body["stale"] is False
    assert body["customerId"] == "C00001" and body["asOf"].endswith("+00:00")


def test_reasons_for_blocked_over_limit_and_no_limit(api: httpx.Client) -> None:
    blocked = api.post("/api/credit/check", json={"customerId": "C00002", "amount": "1"}).json()
    assert "blocked" in blocked["reasons"] and blocked["approved"] is False
    over = api.post("/api/credit/check", json={"customerId": "C00005", "amount": "5000"}).json()
    assert "over-limit" in over["reasons"]
    unlimited = api.post("/api/credit/check", json={"customerId": "C00008", "amount": "1e9"})
    assert unlimited.json()["unlimitedCredit"] is True
    assert unlimited.json()["availableCredit"] is None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"customerId": "NO-SUCH", "amount": "1"}, 404),
        ({"customerId": "C00001", "amount": "-1"}, 422),
        ({"customerId": "C00001"}, 422),
        ({"customerId": "C00001", "amount": "1", "extra": True}, 422),
        ({"customerId": "C00001", "amount": "1", "currency": "XYZ"}, 422),
    ],
)
def test_bad_requests_are_problems(api: httpx.Client, body: dict[str, Any], status: int) -> None:
    response = api.post("/api/credit/check", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_route_needs_a_function_key(runner_url: str) -> None:
    response = httpx.post(
        f"{runner_url}/api/credit/check", json={"customerId": "C00001", "amount": "1"}, timeout=10
    )
    assert response.status_code == 401


def test_euro_amounts_are_converted_with_the_published_rate(
    api: httpx.Client, app_keys: dict[str, str]
) -> None:
    published = api.post(
        "/admin/functions/price_publish_full",
        json={"input": ""},
        headers={"x-functions-key": app_keys["admin"]},
    )
    assert published.status_code == 202
    deadline = time.monotonic() + 60
    while True:
        response = api.post(
            "/api/credit/check", json={"customerId": "C00001", "amount": "50", "currency": "EUR"}
        )
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.status_code == 200, response.text
    # The simulator's rate is 1.08 USD per EUR; the LCY amount is rounded to cents.
    assert response.json()["amountLcy"] == "54.00" and response.json()["currency"] == "EUR"
