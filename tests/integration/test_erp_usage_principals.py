"""Recorded ERP usage per principal, against the simulator over real HTTP and Azurite tables.

Business Central counts its 6,000 requests per 5 minutes per user or service principal (see
tests/integration/test_erp_simulator.py for the sources), so the usage the product records and
reports must keep each booking principal's requests apart: each one's share of its own budget,
and the total. Rows recorded before principals were recorded carry none: the default's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from devtools.erp_sim.testing import running_simulator
from shared.adapters.erp import BookingOutcome
from shared.adapters.erp.models import Item
from shared.adapters.stores import erp_usage
from shared.adapters.tables import TableStore
from shared.services.operations.audit.connectivity import usage_figures
from shared.services.operations.sections import erp_budget_section
from tests.integration.test_erp_booking_principals import order, two_principals


@pytest.fixture
def sim() -> Iterator[str]:
    with running_simulator(seed=7, items=20, customers=5) as base_url:
        yield base_url


async def _old_row(tables: TableStore, now: datetime) -> None:
    """A row as the recorder wrote it before principals were recorded (no ``principal``)."""
    await tables.upsert(
        erp_usage.USAGE_TABLE,
        {
            "PartitionKey": erp_usage.bucket_of(now),
            "RowKey": "older-instance-1-abc123",
            "requests_sent": 7,
            "throttled_responses": 1,
            "retries": 2,
            "failures": 0,
            "ambiguous_results": 0,
            "budget_waits": 0,
            "breaker_openings": 0,
            "breakerState": "closed",
        },
    )


async def test_each_principal_is_recorded_and_reported_on_its_own(
    sim: str, table_store: TableStore
) -> None:
    now = datetime.now(UTC)
    await _old_row(table_store, now)
    async with two_principals(sim) as erp:
        # Bookings go round both principals; a read goes through the default one only.
        results = [
            await erp.create_sales_order_once(order(f"usage-{n}"), look_first=False)
            for n in range(5)
        ]
        await erp.find_first("items", Item, "number ne ''")
        sent = [counters.requests_sent for counters in erp.booking_counters()]
        usage = await usage_figures(erp, table_store, datetime.now(UTC))
        section = await erp_budget_section(table_store, erp.principal_counters())

    assert all(result.outcome is BookingOutcome.CREATED for result in results)
    assert all(count >= 1 for count in sent) and sum(sent) == 6
    by_name = {p.principal: p for p in usage.principals}
    assert list(by_name) == ["default", "principal-1"]
    default, other = by_name["default"], by_name["principal-1"]
    # The old row counts under the default principal, never under another one.
    assert default.window_requests == sent[0] + 7
    assert other.window_requests == sent[1]
    assert (default.day_throttled, default.day_retries) == (1, 2)
    assert (other.day_throttled, other.day_retries) == (0, 0)
    # Each principal against its own 6,000; the total against the sum of both budgets.
    assert default.budget == other.budget == 6000
    assert default.budget_share == (Decimal(sent[0] + 7) / 6000).quantize(Decimal("0.0001"))
    assert usage.window_requests == default.window_requests + other.window_requests
    assert usage.day_requests == default.day_requests + other.day_requests == sum(sent) + 7
    assert usage.day_throttled == 1
    assert usage.budget == 12000
    assert usage.budget_share == (Decimal(sum(sent) + 7) / 12000).quantize(Decimal("0.0001"))
    assert default.breaker_state == other.breaker_state == usage.breaker_state == "closed"

    # The stored rows name each principal by its label, never by its token.
    stored = [
        row.entity
        async for row in table_store.query(
            erp_usage.USAGE_TABLE, "PartitionKey ge @low", {"low": erp_usage.bucket_of(now)}
        )
    ]
    assert sorted(str(row.get("principal")) for row in stored) == [
        "None",
        "default",
        "principal-1",
    ]
    assert not any("booker-" in str(value) for row in stored for value in row.values())

    # The operations page's section says the same per principal and in total.
    rows = {row.key: row.value for row in section.rows}
    assert section.title == "ERP budget (last 5 min, recorded by every instance)"
    share = (Decimal(sent[0] + 7) / 60).quantize(Decimal("0.01"))
    assert (
        rows["principal default"] == f"{sent[0] + 7} of 6000 requests ({share} %); breaker closed"
    )
    assert rows["principal principal-1"].startswith(f"{sent[1]} of 6000 requests (")
    assert rows["total"] == f"{sum(sent) + 7} of 12000 requests (0.11 %)"


async def test_recording_twice_adds_only_what_changed_per_principal(
    sim: str, table_store: TableStore
) -> None:
    async with two_principals(sim) as erp:
        recorder = erp_usage.UsageRecorder(erp.principal_counters)
        await erp.create_sales_order_once(order("twice-1"), look_first=False)
        await erp.create_sales_order_once(order("twice-2"), look_first=False)
        first = await recorder.record(table_store)
        unchanged = await recorder.record(table_store)
        await erp.create_sales_order_once(order("twice-3"), look_first=False)
        second = await recorder.record(table_store)
        sent = [counters.requests_sent for counters in erp.booking_counters()]
    now = datetime.now(UTC)
    rows = await erp_usage.rows_between(table_store, now - erp_usage.BUDGET_WINDOW, now)
    totals = erp_usage.by_principal(rows, "default")
    assert (first.requests_sent, unchanged.requests_sent, second.requests_sent) == (2, 0, 1)
    assert {name: t.requests_sent for name, t in totals.items()} == {
        name: count for name, count in zip(("default", "principal-1"), sent, strict=True) if count
    }
    assert sum(t.requests_sent for t in totals.values()) == 3
