"""Request limits answered at the door: 413/422 problems naming what broke, before any I/O."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from functions import inventory, orders, prices
from functions.http import MAX_BODY_BYTES


def _post(url: str, body: bytes, **headers: str) -> func.HttpRequest:
    return func.HttpRequest(
        "POST", url, headers={"content-type": "application/json", **headers}, body=body
    )


def _problem(response: func.HttpResponse) -> dict[str, Any]:
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = json.loads(response.get_body())
    assert problem["status"] == response.status_code
    return problem


async def test_a_quote_body_over_the_limit_is_413() -> None:
    body = json.dumps({"customerId": "C1", "lines": [], "pad": "x" * MAX_BODY_BYTES}).encode()
    response = await prices.quote(_post("http://h/api/prices/quote", body))
    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in _problem(response)["detail"]


async def test_a_quote_with_too_many_lines_names_the_field() -> None:
    lines = [{"sku": f"S{i}", "quantity": 1} for i in range(501)]
    body = json.dumps({"customerId": "C1", "lines": lines}).encode()
    response = await prices.quote(_post("http://h/api/prices/quote", body))
    assert response.status_code == 422
    assert [v["field"] for v in _problem(response)["violations"]] == ["lines"]


async def test_an_order_with_a_huge_expected_price_is_refused() -> None:
    body = {
        "customerId": "C1",
        "externalOrderId": "web-1",
        "channel": "web",
        "lines": [{"sku": "S1", "quantity": 1, "expectedUnitPrice": "1000000000000"}],
    }
    request = _post("http://h/api/orders", json.dumps(body).encode(), **{"Idempotency-Key": "k1"})
    response = await orders.submit(request)
    assert response.status_code == 422
    violations = _problem(response)["violations"]
    assert [v["field"] for v in violations] == ["lines[0].expectedUnitPrice"]
    assert "at most" in violations[0]["detail"]


async def test_an_overlong_idempotency_key_is_refused() -> None:
    body = json.dumps({"customerId": "C1"}).encode()
    request = _post("http://h/api/orders", body, **{"Idempotency-Key": "k" * 256})
    response = await orders.submit(request)
    assert response.status_code == 422
    assert _problem(response)["violations"][0]["field"] == "Idempotency-Key"


async def test_an_overlong_channel_is_refused_before_any_lookup() -> None:
    request = func.HttpRequest(
        "GET", "http://h/api/availability", params={"skus": "A", "channel": "c" * 41}, body=b""
    )
    response = await inventory.answer_availability(request)
    assert response.status_code == 422
    assert _problem(response)["violations"][0]["field"] == "channel"
