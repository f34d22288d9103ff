"""B2B history against the ERP simulator over real HTTP: paging within the ERP's budget,
overdue-first invoices, filters, continuation tokens bound to their query, cache and staleness."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devtools.erp_sim.testing import running_simulator
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.services.errors import UnknownCustomer
from shared.services.orders import history

COMPANY_ID = "7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20"
CUSTOMER = "C00003"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running_simulator(seed=42, items=40, customers=12) as url:
        httpx.post(
            f"{url}/_sim/customers/{CUSTOMER}/history",
            json={"invoices": 10_000, "shipments": 120, "orders": 30, "paidShare": 0.5},
            timeout=120,
        ).raise_for_status()
        yield url


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _deps(base_url: str, clock: Clock, cache_for: timedelta = timedelta(seconds=30)) -> Any:
    config = ErpConfig(
        base_url=base_url,
        tenant="local",
        environment="sandbox",
        company_id=COMPANY_ID,
        retry_base_backoff_seconds=0.01,
        retry_max_backoff_seconds=0.05,
    )
    return history.HistoryDeps(ErpClient(config), history.HistoryCache(), cache_for, clock)


def _stats(base_url: str, entity_set: str) -> int:
    stats = httpx.get(f"{base_url}/_sim/stats", timeout=10).json()["requests"]
    return sum(stats.get(entity_set, {}).get("GET", {}).values())


async def test_10000_invoices_page_within_the_budget_overdue_first(base_url: str) -> None:
    deps = _deps(base_url, Clock())
    before = _stats(base_url, "salesInvoices")
    numbers: list[str] = []
    overdue_flags: list[bool] = []
    remaining_zero: list[bool] = []
    continuation: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"customerId": CUSTOMER, "pageSize": 500}
        if continuation:
            params["continuation"] = continuation
        answer = await history.history_page(
            deps, "invoices", history.HistoryQuery.model_validate(params)
        )
        pages += 1
        numbers.extend(item["number"] for item in answer["items"])
        overdue_flags.extend(item["overdue"] for item in answer["items"])
        remaining_zero.extend(item["remainingAmount"] == "0" for item in answer["items"])
        continuation = answer["page"]["continuation"]
        if continuation is None:
            break
    await deps.erp.aclose()
    requests = _stats(base_url, "salesInvoices") - before
    assert len(numbers) == len(set(numbers)) == 10_000
    # 20 full pages plus at most one extra read per section boundary (3 sections).
    assert requests <= 10_000 // 500 + 3, requests
    assert pages <= 10_000 // 500 + 1
    # Overdue first, then open, then paid: once a flag flips it never flips back.
    first_not_overdue = overdue_flags.index(False)
    assert not any(overdue_flags[first_not_overdue:])
    first_paid = remaining_zero.index(True)
    assert all(remaining_zero[first_paid:]) and not any(remaining_zero[:first_paid])
    assert first_not_overdue > 0 and first_paid > first_not_overdue


async def test_filters_cache_and_tokens(base_url: str) -> None:
    clock = Clock()
    deps = _deps(base_url, clock)
    query = history.HistoryQuery.model_validate(
        {"customerId": CUSTOMER, "pageSize": 50, "status": "paid"}
    )
    first = await history.history_page(deps, "invoices", query)
    assert {item["status"] for item in first["items"]} == {"Paid"}
    assert first["stale"] is False and first["page"]["continuation"]
    # Cached within the bound: no ERP request.
    before = _stats(base_url, "salesInvoices")
    again = await history.history_page(deps, "invoices", query)
    assert again["dataAsOf"] == first["dataAsOf"] and _stats(base_url, "salesInvoices") == before
    # ERP down after the bound: the cached answer, marked stale.
    clock.now += timedelta(seconds=31)
    httpx.post(f"{base_url}/_sim/faults", json={"outage": True}, timeout=10).raise_for_status()
    try:
        stale = await history.history_page(deps, "invoices", query)
        assert stale["stale"] is True and stale["items"] == first["items"]
        other = history.HistoryQuery.model_validate({"customerId": CUSTOMER, "pageSize": 7})
        with pytest.raises(history.HistoryUnavailable):
            await history.history_page(deps, "invoices", other)
    finally:
        httpx.post(f"{base_url}/_sim/faults", json={}, timeout=10).raise_for_status()
    await deps.erp.aclose()
    # A fresh client (the outage opened this one's circuit breaker), same answers.
    deps = _deps(base_url, Clock())
    # A continuation from one query is refused for another.
    foreign = history.HistoryQuery.model_validate(
        {"customerId": CUSTOMER, "pageSize": 50, "continuation": first["page"]["continuation"]}
    )
    with pytest.raises(history.BadContinuation):
        await history.history_page(deps, "invoices", foreign)
    shipments = await history.history_page(
        deps,
        "shipments",
        history.HistoryQuery.model_validate({"customerId": CUSTOMER, "pageSize": 500}),
    )
    assert len(shipments["items"]) == 120 and shipments["page"]["continuation"] is None
    orders = await history.history_page(
        deps,
        "orders",
        history.HistoryQuery.model_validate(
            {"customerId": CUSTOMER, "status": "released", "pageSize": 100}
        ),
    )
    assert len(orders["items"]) == 30 and {o["status"] for o in orders["items"]} == {"released"}
    assert all(o["orderId"] is None for o in orders["items"])  # placed by EDI, not here
    with pytest.raises(UnknownCustomer):
        await history.history_page(
            deps, "orders", history.HistoryQuery.model_validate({"customerId": "NOPE"})
        )
    await deps.erp.aclose()
