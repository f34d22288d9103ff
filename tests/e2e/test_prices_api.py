"""Price routes through the runner: publish via the timer, quote over HTTP, compare with the ERP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote as urlquote

import httpx
import pytest

from devtools.erp_sim.testing import custom_api
from shared.adapters.stores import lease, sync_state
from shared.adapters.tables import TableStore
from shared.services.pricing import publisher as price_publisher


@pytest.fixture(scope="module")
def api(runner_url: str, app_keys: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {"x-functions-key": app_keys["function"]}
    with httpx.Client(base_url=runner_url, headers=headers, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def published(
    api: httpx.Client, app_keys: dict[str, str], erp_base_url: str, azurite_connection: str
) -> dict[str, Any]:
    """Run the full publish through the admin route; wait until no publish is running."""
    response = api.post(
        "/admin/functions/price_publish_full",
        json={"input": ""},
        headers={"x-functions-key": app_keys["admin"]},
    )
    assert response.status_code == 202
    deadline = time.monotonic() + 90
    while not asyncio.run(_publish_settled(azurite_connection)):
        assert time.monotonic() < deadline, "the price publish did not finish"
        time.sleep(0.5)
    return _customer_line(erp_base_url)


async def _publish_settled(connection: str) -> bool:
    """A full publish has succeeded and none holds the lease now (other tests start them too)."""
    store = TableStore.from_connection_string(connection, prefix="e2e")
    try:
        held = await store.get(lease.LEASES_TABLE, "lease", price_publisher.JOB)
        if held is not None and held.entity["expiresAt"] > datetime.now(UTC):
            return False
        runs = await sync_state.recent_runs(store, f"{price_publisher.JOB}-full", limit=5)
        return any(run["outcome"] == "succeeded" for run in runs)
    finally:
        await store.close()


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


# What a quote would have to read if it asked the ERP instead of the price book.
PRICING_SETS = (
    "customers",
    "customerPricingProfiles",
    "items",
    "itemUnitsOfMeasure",
    "priceListLines",
    "currencyExchangeRates",
    "salesQuotes",
)


def _pricing_reads(erp_base_url: str) -> int:
    """ERP requests on pricing entity sets so far (other timers of the shared stack may read
    other sets meanwhile; the session disables the price publisher's own schedules)."""
    requests = httpx.get(f"{erp_base_url}/_sim/stats", timeout=10).json()["requests"]
    return sum(
        count
        for entity_set in PRICING_SETS
        for statuses in requests.get(entity_set, {}).values()
        for count in statuses.values()
    )


def _quiet_pricing_reads(erp_base_url: str, quiet_for: float = 2.0) -> int:
    """The pricing read count once it has not moved for `quiet_for` seconds."""
    deadline = time.monotonic() + 120
    count, since = _pricing_reads(erp_base_url), time.monotonic()
    while time.monotonic() - since < quiet_for:
        assert time.monotonic() < deadline, "the ERP never went quiet"
        time.sleep(0.25)
        now = _pricing_reads(erp_base_url)
        if now != count:
            count, since = now, time.monotonic()
    return count


def test_a_quote_matches_the_erp_and_makes_no_erp_call(
    api: httpx.Client, published: dict[str, Any], erp_base_url: str
) -> None:
    # The session's stack is shared: wait until no other work reads pricing data from the ERP
    # (a publish started by an earlier module), so the count below is this test's alone.
    before = _quiet_pricing_reads(erp_base_url)
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
    after = _pricing_reads(erp_base_url)
    assert after == before, httpx.get(f"{erp_base_url}/_sim/stats", timeout=10).json()["requests"]


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
