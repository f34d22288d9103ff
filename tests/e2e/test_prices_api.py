"""Price routes through the runner: publish via the timer, quote over HTTP, compare with the ERP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote as urlquote

import httpx
import pytest

from devtools.erp_sim.testing import custom_api


@pytest.fixture(scope="module")
def api(runner_url: str, app_keys: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {"x-functions-key": app_keys["function"]}
    with httpx.Client(base_url=runner_url, headers=headers, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def published(api: httpx.Client, app_keys: dict[str, str], erp_base_url: str) -> dict[str, Any]:
    """Run the full publish through the admin route and wait until quotes answer."""
    response = api.post(
        "/admin/functions/price_publish_full",
        json={"input": ""},
        headers={"x-functions-key": app_keys["admin"]},
    )
    assert response.status_code == 202
    line = _customer_line(erp_base_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = api.post("/api/prices/quote", json=_body(line["sourceNo"], line["assetNo"], 1))
        if answer.status_code == 200:
            return line
        time.sleep(0.5)
    raise AssertionError(f"quotes never answered: {answer.status_code} {answer.text}")


def _customer_line(erp_base_url: str) -> dict[str, Any]:
    response = httpx.get(
        f"{custom_api(erp_base_url)}/priceListLines",
        params={"$filter": "sourceType eq 'Customer'"},
        timeout=10,
    )
    for line in response.json()["value"]:
        if line["currencyCode"] in ("", "USD") and line["unitOfMeasureCode"] in ("", "PCS"):
            return dict(line)
    raise AssertionError("no customer price line in the demo data")


def _body(customer: str, sku: str, qty: int, **extra: Any) -> dict[str, Any]:
    return {"customerId": customer, "lines": [{"sku": sku, "quantity": qty}], **extra}


def _sim_stats(erp_base_url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{erp_base_url}/_sim/stats", timeout=10).json())


def test_a_quote_matches_the_erp_and_makes_no_erp_call(
    api: httpx.Client, published: dict[str, Any], erp_base_url: str
) -> None:
    before = _sim_stats(erp_base_url)
    for qty in (1, 7, 25, 100):
        response = api.post(
            "/api/prices/quote", json=_body(published["sourceNo"], published["assetNo"], qty)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        line = body["lines"][0]
        theirs = httpx.get(
            f"{erp_base_url}/_sim/price",
            params={
                "customerNumber": published["sourceNo"],
                "itemNumber": published["assetNo"],
                "quantity": qty,
            },
            timeout=10,
        ).json()
        assert Decimal(line["unitPrice"]) == Decimal(theirs["unitPrice"])
        assert Decimal(line["lineAmount"]) == Decimal(theirs["lineAmount"])
        assert isinstance(line["unitPrice"], str) and isinstance(body["totalAmount"], str)
        assert set(line["priceSource"]) >= {"type", "priceListCode", "minimumQuantity"}
        assert body["stale"] is False and body["dataAsOf"]
    after = _sim_stats(erp_base_url)
    assert after["total"] == before["total"]  # control routes like /_sim/price are not counted


def test_single_price_route_answers_for_awkward_skus(
    api: httpx.Client, published: dict[str, Any]
) -> None:
    for sku in ("AB/12#3", "CD?45", "ÜBER-GRÖSSE-1"):
        response = api.get(
            f"/api/prices/{urlquote(sku, safe='')}",
            params={"customerId": published["sourceNo"], "quantity": 2},
        )
        assert response.status_code == 200, (sku, response.text)
        assert response.json()["sku"] == sku


@pytest.mark.parametrize(
    ("lines", "rule"),
    [
        ([{"sku": "NO-SUCH-SKU", "quantity": 1}], "unknown-item"),
        ([{"sku": "X", "quantity": 0}], "invalid-field"),
        ([{"sku": "X", "quantity": -2}], "invalid-field"),
        ([{"sku": "X", "quantity": 1.5}], "invalid-field"),
    ],
)
def test_bad_lines_are_422_naming_the_line(
    api: httpx.Client, published: dict[str, Any], lines: list[dict[str, Any]], rule: str
) -> None:
    response = api.post(
        "/api/prices/quote", json={"customerId": published["sourceNo"], "lines": lines}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    violation = response.json()["violations"][0]
    assert violation["rule"] == rule
    assert "lines[0]" in violation["field"]


def test_request_level_errors(api: httpx.Client, published: dict[str, Any]) -> None:
    customer, sku = published["sourceNo"], published["assetNo"]
    assert api.post("/api/prices/quote", json=_body("NO-SUCH-CUSTOMER", sku, 1)).status_code == 404
    too_many = {"customerId": customer, "lines": [{"sku": sku, "quantity": 1}] * 501}
    assert api.post("/api/prices/quote", json=too_many).status_code == 422
    assert (
        api.post("/api/prices/quote", json=_body(customer, sku, 1, currency="XYZ")).status_code
        == 422
    )
    assert (
        api.post(
            "/api/prices/quote", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    assert (
        api.post(
            "/api/prices/quote", content=b"x", headers={"content-type": "text/plain"}
        ).status_code
        == 415
    )
    huge = b'{"customerId": "' + b"x" * 300_000 + b'"}'
    assert (
        api.post(
            "/api/prices/quote", content=huge, headers={"content-type": "application/json"}
        ).status_code
        == 413
    )
    assert (
        api.post(
            "/api/prices/quote", json=_body(customer, sku, 1), headers={"x-functions-key": ""}
        ).status_code
        == 401
    )
