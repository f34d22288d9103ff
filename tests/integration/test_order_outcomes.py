"""The order-outcome ledger on real parts, and the accuracy / impact figures computed from it.

Orders go through the real intake and booking paths (private ERP simulator, Service Bus
stand-in, Azurite); the figures are checked against numbers worked out from the rows read
back, never against constants.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from devtools.erp_sim.testing import custom_api, standard_api
from shared.adapters.stores import order_outcomes
from shared.adapters.stores.orders import load_order
from shared.adapters.tables import TableStore
from shared.config.policy import load_policy
from shared.domain.orders import (
    LineAllocation,
    Order,
    OrderLine,
    OrderRule,
    OrderStatus,
    OrderViolation,
    approve,
    expire_approval,
    hold_for_approval,
    reject_held,
)
from shared.domain.orders.outcomes import OutcomeKind, ProblemCategory
from shared.services.operations import impact, sections
from shared.services.orders.booking import BookingFailed, handle_booking_message
from shared.services.orders.messages import OrderMessage
from tests.support.orders_harness import Harness

PLAIN = "IT-000001"
REPRICED = "IT-000021"


async def _ledger(tables: TableStore) -> list[order_outcomes.OutcomeRow]:
    today = datetime.now(UTC).date()
    return [
        row
        async for row in order_outcomes.outcomes_between(
            tables, today - timedelta(days=1), today + timedelta(days=1)
        )
    ]


def _order_body(customer: str, sku: str, quantity: int = 1, **line: Any) -> dict[str, Any]:
    return {
        "customerId": customer,
        "externalOrderId": f"shop-{sku}",
        "channel": "web",
        "lines": [{"sku": sku, "quantity": quantity, **line}],
    }


async def _accepted(harness: Harness, customer: str, sku: str) -> str:
    await harness.stock(sku, MAIN=50)
    answer = await harness.submit(_order_body(customer, sku))
    assert answer.status == 202, answer.body
    return str(json.loads(answer.body)["orderId"])


def _patch(url: str, body: dict[str, Any]) -> None:
    current = httpx.get(url, timeout=10).json()
    response = httpx.patch(url, json=body, headers={"If-Match": current["@odata.etag"]}, timeout=10)
    response.raise_for_status()


def _entity_url(sim: str, entity_set: str, number: str) -> str:
    base = f"{standard_api(sim)}/{entity_set}"
    found = httpx.get(base, params={"$filter": f"number eq '{number}'"}, timeout=10).json()
    return f"{base}({found['value'][0]['id']})"


def _lower_best_price(sim: str, customer: str, sku: str) -> None:
    """Cut the price list line the ERP prices this customer and item from (sim-private)."""
    best = httpx.get(
        f"{sim}/_sim/price",
        params={"customerNumber": customer, "itemNumber": sku, "quantity": 1},
        timeout=10,
    ).json()
    base = f"{custom_api(sim)}/priceListLines"
    lines = httpx.get(
        base,
        params={"$filter": f"assetNo eq '{sku}' and priceListCode eq '{best['priceListCode']}'"},
        timeout=10,
    ).json()["value"]
    assert lines
    for line in lines:
        _patch(f"{base}({line['id']})", {"unitPrice": 1.25})


async def test_intake_rejections_are_recorded_by_category_and_repeats_change_nothing(
    harness: Harness,
) -> None:
    await harness.stock(PLAIN, MAIN=2)
    wrong_price = await harness.submit(
        _order_body("C00001", PLAIN, expectedUnitPrice="0.01"), correlation_id="c1"
    )
    too_many = await harness.submit(_order_body("C00001", PLAIN, quantity=40))
    blocked = await harness.submit(_order_body("C00002", "IT-000015"))
    assert {wrong_price.status, too_many.status, blocked.status} == {422}
    rows = {row.order_id: row for row in await _ledger(harness.ctx.tables)}
    ids = [json.loads(a.body)["orderId"] for a in (wrong_price, too_many, blocked)]
    assert set(rows) == set(ids)
    assert all(row.kind is OutcomeKind.REJECTED_AT_INTAKE for row in rows.values())
    assert ProblemCategory.PRICE_MISMATCH in rows[ids[0]].categories
    assert rows[ids[1]].categories == (ProblemCategory.STOCK_CONFLICT,)
    assert {ProblemCategory.CUSTOMER, ProblemCategory.ITEM} <= set(rows[ids[2]].categories)
    assert "price-mismatch" in rows[ids[0]].rules

    stored = await load_order(harness.ctx.tables, ids[0])
    assert stored is not None and stored.order.status is OrderStatus.REJECTED
    await order_outcomes.record_rejected_at_intake(
        harness.ctx.tables, stored.order, stored.order.violations
    )
    again = {row.order_id: row for row in await _ledger(harness.ctx.tables)}
    assert again == rows


async def test_booking_outcomes_give_accuracy_and_surprises(harness: Harness) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    exact = await _accepted(harness, "C00001", PLAIN)
    repriced = await _accepted(harness, "C00001", REPRICED)
    refused = await _accepted(harness, "C00008", PLAIN)
    # After intake: the ERP's best price for one item drops below what was promised, and one
    # customer gets blocked, so booking reprices one order and refuses another.
    _lower_best_price(harness.sim, "C00001", REPRICED)
    customer_url = _entity_url(harness.sim, "customers", "C00008")
    _patch(customer_url, {"blocked": "All"})
    try:
        await handle_booking_message(harness.ctx, OrderMessage(order_id=exact), 1)
        await handle_booking_message(harness.ctx, OrderMessage(order_id=repriced), 1)
        with pytest.raises(BookingFailed):
            await handle_booking_message(harness.ctx, OrderMessage(order_id=refused), 1)
    finally:
        _patch(customer_url, {"blocked": " "})
    # A redelivery settles the booked order again: the ledger row is written again, unchanged.
    await handle_booking_message(harness.ctx, OrderMessage(order_id=exact), 2)

    rows = {row.order_id: row for row in await _ledger(harness.ctx.tables)}
    assert len(rows) == 3
    booked = [row for row in rows.values() if row.kind is OutcomeKind.BOOKED]
    for row in booked:
        stored = await load_order(harness.ctx.tables, row.order_id)
        assert stored is not None
        assert row.intake_total == stored.order.total_amount
        assert row.erp_total == stored.order.erp_total_amount
    assert rows[repriced].repriced and not rows[exact].repriced
    assert rows[refused].kind is OutcomeKind.FAILED_AT_BOOKING
    assert "blocked" in rows[refused].reason

    figures = await impact.accuracy(harness.ctx.tables, since)
    assert (figures.booked, figures.repriced, figures.rejected_at_booking) == (2, 1, 1)
    assert figures.rate == Decimal(1) / Decimal(2)

    surprises = await impact.booking_surprises(harness.ctx.tables, since, limit=10)
    assert {s.order_id: s.kind for s in surprises} == {
        repriced: "repriced",
        refused: "rejected-at-booking",
    }
    by_id = {s.order_id: s for s in surprises}
    assert by_id[repriced].erp_total == rows[repriced].erp_total != by_id[repriced].intake_total
    assert by_id[refused].reason == rows[refused].reason
    assert len(await impact.booking_surprises(harness.ctx.tables, since, limit=1)) == 1
    later = await impact.accuracy(harness.ctx.tables, datetime.now(UTC) + timedelta(seconds=1))
    assert later.booked == 0 and later.rate is None


def _ledger_order(order_id: str, created: datetime, total: str) -> Order:
    return Order(
        order_id=order_id,
        status=OrderStatus.PENDING,
        customer_no="C00001",
        channel="web",
        currency="USD",
        external_order_id=f"shop-{order_id}",
        created_at=created,
        updated_at=created,
        total_amount=Decimal(total),
    )


async def test_the_impact_formula_follows_the_recorded_rows(table_store: TableStore) -> None:
    policy = load_policy(
        '{"impact": {"costPerManualCorrection": "12.50", "costPerOversoldOrder": "80"}}'
    )
    now = datetime(2025, 6, 10, 15, 0, tzinfo=UTC)

    def violation(rule: OrderRule) -> OrderViolation:
        return OrderViolation(rule, "test")

    recorded = [
        ("o1", 0, [OrderRule.PRICE_MISMATCH]),
        ("o2", 0, [OrderRule.INSUFFICIENT_STOCK]),
        ("o3", 2, [OrderRule.INSUFFICIENT_STOCK, OrderRule.CREDIT_OVER_LIMIT]),
        ("o4", 3, [OrderRule.UNKNOWN_CHANNEL]),
        ("o5", 40, [OrderRule.PRICE_MISMATCH]),  # outside a 30-day window
    ]
    for order_id, days_ago, rules in recorded:
        order = _ledger_order(order_id, now - timedelta(days=days_ago), "100")
        await order_outcomes.record_rejected_at_intake(
            table_store, order, [violation(rule) for rule in rules]
        )
    booked = replace(
        _ledger_order("b1", now - timedelta(days=1), "100"), erp_total_amount=Decimal("90")
    )
    await order_outcomes.record_booked(table_store, booked)
    failed = replace(_ledger_order("f1", now, "50"), failure_reason="the ERP refused")
    await order_outcomes.record_failed_at_booking(table_store, failed)

    report = await impact.impact_report(table_store, policy, days=30, now=now)

    # Worked out from the rows inside the window (o1-o4, b1, f1), first one 3 days ago.
    in_window = [row for row in recorded if row[1] < 30]
    corrections = sum(
        1 for _, _, rules in in_window if any(r is not OrderRule.INSUFFICIENT_STOCK for r in rules)
    )
    oversold = sum(1 for _, _, rules in in_window if OrderRule.INSUFFICIENT_STOCK in rules)
    observed = max(days for _, days, _ in in_window) + 1
    expected = (
        (corrections * Decimal("12.50") + oversold * Decimal("80")) * 30 / observed
    ).quantize(Decimal("0.01"))
    assert (report.totals.caught_corrections, report.totals.caught_stock_conflicts) == (
        corrections,
        oversold,
    )
    assert report.observed_days == observed
    assert report.estimated_cost_avoided_per_month == expected
    assert str(expected) in report.formula and "12.50" in report.formula
    assert report.totals.caught["stock-conflict"] == oversold
    assert report.totals.caught_orders == len(in_window)
    assert (report.totals.repriced, report.totals.failed_at_booking) == (1, 1)
    assert report.totals.reached_erp == 2
    assert len(report.per_day) == 30 and report.per_day[-1].day == now.date()
    today = report.per_day[-1]
    assert (today.caught_orders, today.failed_at_booking, today.reached_erp) == (2, 1, 1)

    # Recording everything again changes no figure.
    for order_id, days_ago, rules in recorded:
        order = _ledger_order(order_id, now - timedelta(days=days_ago), "100")
        await order_outcomes.record_rejected_at_intake(
            table_store, order, [violation(rule) for rule in rules]
        )
    await order_outcomes.record_booked(table_store, booked)
    assert await impact.impact_report(table_store, policy, days=30, now=now) == report


async def test_an_empty_ledger_reports_nothing_avoided(table_store: TableStore) -> None:
    report = await impact.impact_report(table_store, load_policy(), days=7)
    assert report.observed_days == 0
    assert report.estimated_cost_avoided_per_month == Decimal("0.00")
    assert len(report.per_day) == 7


def _line(line: int, quantity: str, held: str, backordered: str, per_unit: str = "1") -> OrderLine:
    return OrderLine(
        line=line,
        sku=PLAIN,
        quantity=Decimal(quantity),
        unit_of_measure="PCS" if per_unit == "1" else "BOX",
        qty_per_unit=Decimal(per_unit),
        unit_price=Decimal("10"),
        line_discount_percent=Decimal(0),
        line_amount=Decimal(quantity) * 10,
        allocations=(LineAllocation("MAIN", Decimal(held)),) if Decimal(held) else (),
        backordered=Decimal(backordered),
    )


async def test_orders_saved_by_backorder_are_counted_next_to_those_saved_by_approval(
    table_store: TableStore,
) -> None:
    now = datetime(2025, 6, 10, 15, 0, tzinfo=UTC)
    yesterday = now - timedelta(days=1)

    def booked(order_id: str, created: datetime, *lines: OrderLine) -> Order:
        return replace(
            _ledger_order(order_id, created, "100"),
            status=OrderStatus.BOOKED,
            lines=lines,
            erp_total_amount=Decimal("100"),
        )

    # Short lines accepted by the policy's backorder: 6 of 10 pieces, and 2 boxes of 12 with
    # nothing held; the ordinary orders were held whole.
    saved = booked("k1", now, _line(1, "10", "4", "6"), _line(2, "2", "0", "2", per_unit="12"))
    saved_before = booked("k2", yesterday, _line(1, "3", "1", "2"))
    ordinary = booked("n1", now, _line(1, "5", "5", "0"))
    for order in (saved, saved_before, ordinary):
        await order_outcomes.record_booked(table_store, order)
    # A row written before the ledger knew backorders: no field, read as not backordered.
    await table_store.upsert(
        order_outcomes.TABLE,
        {
            "PartitionKey": now.date().isoformat(),
            "RowKey": "old1",
            "kind": str(OutcomeKind.BOOKED),
            "customer": "C00001",
            "currency": "USD",
            "createdAt": now,
            "decidedAt": now,
            "intakeTotal": "100",
            "erpTotal": "100",
            "repriced": False,
            "approved": False,
        },
    )

    rows = {
        row.order_id: row
        async for row in order_outcomes.outcomes_between(table_store, yesterday.date(), now.date())
    }
    expected_units = {
        order.order_id: sum(
            (line.backordered * line.qty_per_unit for line in order.lines), Decimal(0)
        )
        for order in (saved, saved_before, ordinary)
    }
    assert rows["k1"].backordered and rows["k1"].backordered_units == expected_units["k1"] == 30
    assert rows["k2"].backordered and rows["k2"].backordered_units == expected_units["k2"]
    assert not rows["n1"].backordered and rows["n1"].backordered_units == 0
    assert not rows["old1"].backordered and rows["old1"].backordered_units == 0

    report = await impact.impact_report(table_store, load_policy(), days=2, now=now)
    by_day = {day.day: day for day in report.per_day}
    backordered_on = {
        day: sum(1 for row in rows.values() if row.day == day and row.backordered) for day in by_day
    }
    assert {day: figures.saved_by_backorder for day, figures in by_day.items()} == backordered_on
    assert by_day[now.date()].saved_by_backorder == 1
    assert by_day[now.date()].booked == 3
    assert report.totals.saved_by_backorder == 2
    assert report.totals.booked == len(rows)
    assert report.totals.saved_by_approval == 0
    assert report.model_dump(by_alias=True)["totals"]["savedByBackorder"] == 2

    # Recording them again changes no figure.
    for order in (saved, saved_before, ordinary):
        await order_outcomes.record_booked(table_store, order)
    assert await impact.impact_report(table_store, load_policy(), days=2, now=now) == report

    # The operations page shows the figure next to the orders saved by approval.
    taken = datetime.now(UTC)
    live = replace(saved, order_id="k-now", created_at=taken, updated_at=taken)
    await order_outcomes.record_booked(table_store, live)
    shown = {
        row.key: row.value
        for row in (await sections.impact_section(table_store, load_policy())).rows
    }
    keys = list(shown)
    assert keys.index("orders saved by backorder") == keys.index("orders saved by approval") + 1
    assert shown["orders saved by backorder"] == "1"
    assert shown["orders saved by approval"] == "0"


async def test_orders_saved_by_approval_are_counted_next_to_those_caught_at_intake(
    table_store: TableStore,
) -> None:
    policy = load_policy()
    now = datetime(2025, 6, 10, 15, 0, tzinfo=UTC)
    short = OrderViolation(OrderRule.INSUFFICIENT_STOCK, "short")
    until = now + timedelta(hours=1)

    def held(order_id: str) -> Order:
        pending = replace(_ledger_order(order_id, now, "100"), status=OrderStatus.PENDING)
        return hold_for_approval(pending, (short,), until, now)

    saved = replace(
        approve(held("a1"), "Fran", "ok", now),
        status=OrderStatus.BOOKED,
        erp_total_amount=Decimal("100"),
    )
    await order_outcomes.record_booked(table_store, saved)
    await order_outcomes.record_rejected_at_approval(
        table_store, reject_held(held("a2"), "Pat", "no", now)
    )
    await order_outcomes.record_rejected_at_approval(
        table_store, expire_approval(held("a3"), until)
    )
    await order_outcomes.record_rejected_at_intake(
        table_store, _ledger_order("r1", now, "9"), [short]
    )
    await order_outcomes.record_booked(table_store, _ledger_order("b1", now, "9"))

    report = await impact.impact_report(table_store, policy, days=1, now=now)
    totals = report.totals
    assert (totals.saved_by_approval, totals.rejected_at_approval) == (1, 2)
    assert (totals.caught_orders, totals.booked, totals.failed_at_booking) == (1, 2, 0)
    rows = {
        row.order_id: row
        async for row in order_outcomes.outcomes_between(table_store, now.date(), now.date())
    }
    assert rows["a1"].approved and not rows["b1"].approved
    assert rows["a2"].kind is OutcomeKind.REJECTED_AT_APPROVAL
    assert rows["a3"].reason.startswith("expired by system:approval-expiry")
