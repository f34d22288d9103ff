"""Bookings spread over several ERP principals, against the simulator over real HTTP.

Business Central counts its limits per user or service principal (6,000 requests per 5
minutes and 5 in flight each; see tests/integration/test_erp_simulator.py for the sources),
so a client with more booking principals books further, and exactly-once booking holds
whichever principal sends the create: the look-up by externalDocumentNumber reads the same
company data under any principal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from devtools.erp_sim.testing import running_simulator
from shared.adapters.erp import BookingOutcome, ErpClient
from shared.adapters.erp.config import BookingPrincipal
from shared.adapters.erp.models import SalesOrderCreate, SalesOrderLineCreate
from tests.integration.test_erp_client_sim import config, control, orders_with_external_number


@pytest.fixture
def sim() -> Iterator[str]:
    with running_simulator(seed=42, items=50, customers=10) as base_url:
        yield base_url


def two_principals(base_url: str, **overrides: Any) -> ErpClient:
    return ErpClient(
        config(
            base_url,
            auth_mode="static",
            static_token=SecretStr("booker-a"),
            booking_principals=(BookingPrincipal(static_token=SecretStr("booker-b")),),
            **overrides,
        )
    )


def order(number: str) -> SalesOrderCreate:
    return SalesOrderCreate(
        customer_number="C00001",
        external_document_number=number,
        sales_order_lines=[
            SalesOrderLineCreate(line_object_number="IT-000001", quantity=Decimal(1))
        ],
    )


async def test_bookings_spread_over_principals_each_within_its_own_budget(sim: str) -> None:
    # Each principal may send 3 requests a minute; 6 creates fit only when both are used.
    await control(sim, "POST", "limits", {"requestsPerWindow": 3, "windowSeconds": 60})
    await control(sim, "POST", "stats/reset")
    async with two_principals(sim, requests_per_window=3, window_seconds=60) as erp:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    erp.create_sales_order_once(order(f"spread-{n}"), look_first=False)
                    for n in range(6)
                )
            ),
            timeout=30,
        )
        sent = [counters.requests_sent for counters in erp.booking_counters()]
    stats = await control(sim, "GET", "stats")
    assert all(result.outcome is BookingOutcome.CREATED for result in results)
    assert sent == [3, 3]
    assert stats["throttled"] == 0
    assert sum(stats["requests"]["salesOrders"]["POST"].values()) == 6


async def test_one_principal_alone_waits_for_its_budget(sim: str) -> None:
    """The same workload through the default principal alone cannot finish in the window."""
    await control(sim, "POST", "limits", {"requestsPerWindow": 3, "windowSeconds": 60})
    async with ErpClient(
        config(
            sim,
            auth_mode="static",
            static_token=SecretStr("booker-a"),
            requests_per_window=3,
            window_seconds=60,
        )
    ) as erp:
        booked = [
            asyncio.ensure_future(
                erp.create_sales_order_once(order(f"alone-{n}"), look_first=False)
            )
            for n in range(6)
        ]
        done, pending = await asyncio.wait(booked, timeout=5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    assert len([task for task in done if task.exception() is None]) == 3


async def test_an_order_created_by_one_principal_is_found_by_another(sim: str) -> None:
    async with two_principals(sim) as erp:
        first = await erp.create_sales_order_once(order("web-two-principals"), look_first=False)
        again = await erp.create_sales_order_once(order("web-two-principals"))
        sent = [counters.requests_sent for counters in erp.booking_counters()]
    found = await orders_with_external_number(sim, "WEB-TWO-PRINCIPALS")
    assert first.outcome is BookingOutcome.CREATED
    assert again.outcome is BookingOutcome.ALREADY_EXISTED
    assert again.order.id == first.order.id
    assert len(found) == 1
    # One principal sent the create, the other the look-up.
    assert sorted(sent) == [1, 1]
