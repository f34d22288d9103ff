"""ErpClient against the Business Central simulator over real HTTP on a free loopback port."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest

from devtools.erp_sim.testing import running_simulator, standard_api
from shared.adapters.erp import (
    Api,
    BookingOutcome,
    BreakerState,
    ErpClient,
    ErpConfig,
    ErpUnavailable,
)
from shared.adapters.erp.clock import SystemClock
from shared.adapters.erp.models import PriceListLine, SalesOrderCreate, SalesOrderLineCreate
from shared.adapters.erp.odata import guid_key

COMPANY_ID = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")


class ShiftableClock(SystemClock):
    """Real time and real sleeps, plus a jump forward so a breaker period passes at once."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def config(base_url: str, **overrides: Any) -> ErpConfig:
    values: dict[str, Any] = {
        "base_url": base_url,
        "tenant": "local",
        "environment": "sandbox",
        "company_id": COMPANY_ID,
        "retry_base_backoff_seconds": 0.01,
        "retry_max_backoff_seconds": 0.05,
    }
    values.update(overrides)
    return ErpConfig(**values)


async def control(base_url: str, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        response = await http.request(method, f"/_sim/{path}", json=body)
        response.raise_for_status()
        return response.json()


async def orders_with_external_number(base_url: str, number: str) -> list[dict[str, Any]]:
    """Ask the simulator directly, not through the client under test."""
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(
            f"{standard_api(base_url)}/salesOrders",
            params={"$filter": f"externalDocumentNumber eq '{number}'"},
        )
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()["value"]
        return rows


async def item_numbers(base_url: str, count: int) -> list[str]:
    """Real item numbers (read directly), then the simulator's counters start from zero."""
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{standard_api(base_url)}/items", params={"$top": count})
        response.raise_for_status()
        numbers = [row["number"] for row in response.json()["value"]]
    await control(base_url, "POST", "stats/reset")
    return numbers


@pytest.fixture
def small_sim() -> Iterator[str]:
    with running_simulator(seed=42, items=200, customers=50) as base_url:
        yield base_url


@pytest.fixture
async def client(small_sim: str) -> AsyncIterator[ErpClient]:
    async with ErpClient(config(small_sim)) as erp:
        yield erp


@pytest.mark.slow
async def test_full_read_of_50k_price_lines_returns_every_row_exactly_once() -> None:
    # ~4 price list lines per item: 13,000 items give just over 50,000 lines.
    with running_simulator(seed=42, items=13_000, customers=50) as base_url:
        info = await control(base_url, "GET", "info")
        expected = info["counts"]["priceListLines"]
        assert expected >= 50_000
        seen: set[UUID] = set()
        rows = 0
        async with ErpClient(config(base_url, page_size=1000)) as erp:
            async for line in erp.iter_price_list_lines():
                assert line.id is not None
                seen.add(line.id)
                rows += 1
            sent = erp.counters().requests_sent
        stats = await control(base_url, "GET", "stats")
    assert rows == expected
    assert len(seen) == expected
    assert sent == math.ceil(expected / 1000)
    assert stats["requests"]["priceListLines"]["GET"] == {"200": sent}


async def test_delta_read_after_a_patch_returns_the_changed_row(client: ErpClient) -> None:
    full = [line async for line in client.iter_price_list_lines()]
    watermark = max(line.last_modified_date_time for line in full)
    target = full[len(full) // 2]
    assert target.id is not None
    new_price = target.unit_price + Decimal("1.23")

    # The ETag comes from a read of the row itself, as a product writer would do.
    current = await client.get_entity(
        "priceListLines", guid_key(target.id), PriceListLine, api=Api.CUSTOM
    )
    assert current.etag is not None
    patched = await client.patch(
        "priceListLines",
        guid_key(target.id),
        current.etag,
        {"unitPrice": new_price},
        PriceListLine,
        api=Api.CUSTOM,
    )
    assert patched.unit_price == new_price
    assert patched.etag != current.etag

    delta = [line async for line in client.iter_price_list_lines(modified_since=watermark)]
    changed = [line for line in delta if line.id == target.id]
    assert [line.unit_price for line in changed] == [new_price]
    assert len(delta) < len(full)


async def test_a_429_storm_is_ridden_out_without_hammering(small_sim: str) -> None:
    numbers = await item_numbers(small_sim, 24)
    # Setting limits also clears the simulator's window, so the read above does not count.
    await control(
        small_sim,
        "POST",
        "limits",
        {"maxConcurrent": 5, "requestsPerWindow": 8, "windowSeconds": 1},
    )
    # This client believes BC's default budget, so the simulator's low limit throttles it.
    async with ErpClient(config(small_sim)) as erp:
        found = await asyncio.gather(*(erp.get_item_by_number(n) for n in numbers))
        counters = erp.counters()
    stats = await control(small_sim, "GET", "stats")
    assert [item.number for item in found] == numbers
    assert stats["throttled"] > 0  # the storm happened
    assert stats["throttled"] == counters.throttled_responses
    # Retry-After pauses every caller: at most one burst of in-flight requests is refused
    # per window the work needs, not a retry loop.
    windows_needed = math.ceil(len(numbers) / 8)
    assert stats["throttled"] <= erp.config.max_concurrent * windows_needed
    assert stats["requests"]["items"]["GET"]["200"] == len(numbers)


async def test_a_client_that_knows_the_budget_is_never_throttled(small_sim: str) -> None:
    numbers = await item_numbers(small_sim, 20)
    # Setting limits also clears the simulator's window, so the read above does not count.
    await control(
        small_sim,
        "POST",
        "limits",
        {"maxConcurrent": 5, "requestsPerWindow": 8, "windowSeconds": 1},
    )
    async with ErpClient(config(small_sim, requests_per_window=8, window_seconds=1)) as erp:
        found = await asyncio.gather(*(erp.get_item_by_number(n) for n in numbers))
        counters = erp.counters()
    stats = await control(small_sim, "GET", "stats")
    assert len(found) == len(numbers)
    assert stats["throttled"] == 0
    assert stats["total"] == len(numbers)
    assert counters.budget_waits > 0  # the client did the pacing itself
    assert stats["inFlightMax"] <= 5


async def test_an_outage_opens_the_breaker_and_the_client_recovers(small_sim: str) -> None:
    clock = ShiftableClock()
    erp = ErpClient(
        config(
            small_sim,
            retry_max_attempts=2,
            breaker_failure_threshold=3,
            breaker_open_seconds=30,
        ),
        clock=clock,
    )
    async with erp:
        await control(small_sim, "POST", "faults", {"outage": True})
        for _ in range(20):
            with pytest.raises(ErpUnavailable):
                await erp.get_item_by_number("IT-000001")
        assert erp.counters().breaker_state is BreakerState.OPEN
        stats = await control(small_sim, "GET", "stats")
        # Three failures opened the circuit; the other calls never left the process.
        assert stats["outageRefusals"] == 3

        await control(small_sim, "POST", "faults", {"outage": False})
        clock.advance(30)
        item = await erp.get_item_by_number("IT-000001")
        counters = erp.counters()
    assert item.number == "IT-000001"
    assert counters.breaker_state is BreakerState.CLOSED
    assert counters.breaker_openings == 1


@pytest.mark.parametrize("drop_mode", ["500", "close"])
async def test_a_lost_create_response_does_not_produce_a_second_order(
    small_sim: str, client: ErpClient, drop_mode: str
) -> None:
    payload = SalesOrderCreate(
        customer_number="C00001",
        external_document_number=f"web-lost-{drop_mode}",
        sales_order_lines=[
            SalesOrderLineCreate(line_object_number="IT-000001", quantity=Decimal(1))
        ],
    )
    await control(
        small_sim, "POST", "faults", {"dropResponseAfterCommit": 1, "dropMode": drop_mode}
    )
    first = await client.create_sales_order_once(payload)
    again = await client.create_sales_order_once(payload)

    orders = await orders_with_external_number(small_sim, f"WEB-LOST-{drop_mode.upper()}")
    stats = await control(small_sim, "GET", "stats")
    assert first.outcome is BookingOutcome.FOUND_AFTER_AMBIGUOUS_CREATE
    assert again.outcome is BookingOutcome.ALREADY_EXISTED
    assert first.order.id == again.order.id
    assert len(orders) == 1
    assert stats["droppedResponses"] == 1
    assert sum(stats["requests"]["salesOrders"]["POST"].values()) == 1
