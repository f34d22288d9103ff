"""The credit check on real parts: live ERP figures, pending orders, staleness, currencies."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.domain.credit import CreditPolicy
from shared.services.credit.check import CreditCheckRequest, CurrencyNotConvertible, check_credit
from shared.services.errors import Unavailable, UnknownCustomer
from shared.services.orders.context import utc_now
from tests.support.orders_harness import Harness, credit_summary, set_faults


def _strict(harness: Harness) -> None:
    """Any overdue balance is a reason (the order tests tolerate it)."""
    harness.ctx.settings = replace(
        harness.ctx.settings, credit_policy=CreditPolicy(overdue_tolerance=Decimal(0))
    )


async def _check(harness: Harness, customer: str, amount: str, **extra: str) -> dict[str, Any]:
    request = CreditCheckRequest.model_validate({"customerId": customer, "amount": amount, **extra})
    return await check_credit(harness.ctx, request)


def _requests_to(sim: str, entity_set: str) -> int:
    stats = httpx.get(f"{sim}/_sim/stats", timeout=10).json()
    counts = stats["requests"].get(entity_set, {})
    return sum(sum(by_status.values()) for by_status in counts.values())


async def test_live_figures_plus_this_products_pending_orders(harness: Harness) -> None:
    _strict(harness)
    summary = credit_summary(harness.sim, "C00001")
    before = _requests_to(harness.sim, "customerCreditSummaries")
    answer = await _check(harness, "C00001", "10.00")
    assert _requests_to(harness.sim, "customerCreditSummaries") == before + 1  # one round trip
    assert answer["creditLimit"] == format(Decimal(str(summary["creditLimit"])), ".2f")
    assert answer["balance"] == format(Decimal(str(summary["balance"])), ".2f")
    assert answer["openOrdersAmount"] == format(
        Decimal(str(summary["outstandingOrdersAmount"])), ".2f"
    )
    assert answer["pendingAmount"] == "0.00" and answer["stale"] is False
    assert answer["approved"] is True and answer["reasons"] == []
    available = Decimal(answer["availableCredit"])
    # An accepted order that is not booked yet is this product's pending amount.
    await harness.stock("IT-000001", MAIN=5)
    order = await harness.submit(
        {
            "customerId": "C00001",
            "externalOrderId": "credit-1",
            "channel": "web",
            "lines": [{"sku": "IT-000001", "quantity": 2}],
        }
    )
    total = Decimal(json.loads(order.body)["totalAmount"])
    again = await _check(harness, "C00001", "10.00")
    assert Decimal(again["pendingAmount"]) == total
    assert Decimal(again["availableCredit"]) == available - total
    too_much = await _check(harness, "C00001", str(available - total + Decimal("0.01")))
    assert too_much["approved"] is False and too_much["reasons"] == ["over-limit"]


@pytest.mark.parametrize(
    ("customer", "blocked"),
    [("C00002", "All"), ("C00003", "Ship"), ("C00004", "Invoice"), ("C00009", "")],
)
async def test_blocked_and_overdue_customers(harness: Harness, customer: str, blocked: str) -> None:
    _strict(harness)
    answer = await _check(harness, customer, "1")
    assert answer["blocked"] == blocked
    # Business Central refuses orders for All and Ship; Invoice only stops invoicing.
    assert ("blocked" in answer["reasons"]) is (blocked in ("All", "Ship"))
    # With no tolerance, any overdue balance is a reason (C00009 is the overdue fixture).
    assert ("overdue" in answer["reasons"]) is (Decimal(answer["overdueAmount"]) > 0)
    if customer == "C00009":
        assert "overdue" in answer["reasons"] and answer["approved"] is False


async def test_a_zero_limit_means_unlimited_and_an_unknown_customer_is_not_found(
    harness: Harness,
) -> None:
    answer = await _check(harness, "C00008", "999999999")
    assert answer["unlimitedCredit"] is True and answer["availableCredit"] is None
    assert answer["creditLimit"] == "0.00" and "over-limit" not in answer["reasons"]
    with pytest.raises(UnknownCustomer):
        await _check(harness, "C99999", "1")


async def test_with_the_erp_down_only_recent_figures_are_used_and_said_to_be_stale(
    harness: Harness,
) -> None:
    live = await _check(harness, "C00001", "1")
    set_faults(harness.sim, outage=True)
    try:
        stale = await _check(harness, "C00001", "1")
        assert stale["stale"] is True and "ErpUnavailable" in stale["staleReason"]
        assert stale["asOf"] == live["asOf"] and stale["balance"] == live["balance"]
        with pytest.raises(Unavailable, match="no figures are known"):
            await _check(harness, "C00007", "1")
        harness.ctx.clock = lambda: utc_now() + timedelta(minutes=6)
        with pytest.raises(Unavailable, match="s old"):
            await _check(harness, "C00001", "1")
    finally:
        harness.ctx.clock = utc_now
        set_faults(harness.sim)
    assert (await _check(harness, "C00001", "1"))["stale"] is False


async def test_another_currency_is_converted_with_the_erps_published_rate(
    harness: Harness,
) -> None:
    answer = await _check(harness, "C00001", "100", currency="eur")
    # The simulator's EUR rate is 1.08 LCY per unit; BC rounds the LCY amount to cents.
    assert answer["currency"] == "EUR" and answer["amountLcy"] == "108.00"
    assert answer["localCurrency"] == "USD"
    with pytest.raises(CurrencyNotConvertible):
        await _check(harness, "C00001", "100", currency="GBP")


async def test_intake_reuses_a_live_reading_within_the_policys_bound_and_counts_pending_on_top(
    harness: Harness,
) -> None:
    """credit.intakeCache: a second order of the same customer within the bound makes no
    credit request, and the first order's hold is still counted against the reading."""
    harness.ctx.settings = replace(harness.ctx.settings, credit_intake_cache=timedelta(seconds=30))
    await harness.stock("IT-000001", MAIN=50)
    before = _requests_to(harness.sim, "customerCreditSummaries")

    async def order(n: int) -> Decimal:
        answer = await harness.submit(
            {
                "customerId": "C00001",
                "externalOrderId": f"cached-{n}",
                "channel": "web",
                "lines": [{"sku": "IT-000001", "quantity": 1}],
            }
        )
        assert answer.status == 202, answer.body
        return Decimal(json.loads(answer.body)["totalAmount"])

    first, second = await order(1), await order(2)
    assert _requests_to(harness.sim, "customerCreditSummaries") == before + 1
    # The credit check route always reads live, and sees both orders as pending.
    answer = await _check(harness, "C00001", "1.00")
    assert _requests_to(harness.sim, "customerCreditSummaries") == before + 2
    assert Decimal(answer["pendingAmount"]) == first + second


async def test_intake_never_reuses_a_reading_older_than_the_bound(harness: Harness) -> None:
    harness.ctx.settings = replace(harness.ctx.settings, credit_intake_cache=timedelta(seconds=30))
    await harness.stock("IT-000001", MAIN=50)
    body = {
        "customerId": "C00001",
        "channel": "web",
        "lines": [{"sku": "IT-000001", "quantity": 1}],
    }
    before = _requests_to(harness.sim, "customerCreditSummaries")
    assert (await harness.submit({**body, "externalOrderId": "old-1"})).status == 202
    # The kept reading is made older than the bound, as if 31 s had passed.
    live = harness.ctx.figures._live["C00001"]
    harness.ctx.figures._live["C00001"] = replace(live, as_of=live.as_of - timedelta(seconds=31))
    assert (await harness.submit({**body, "externalOrderId": "old-2"})).status == 202
    assert _requests_to(harness.sim, "customerCreditSummaries") == before + 2
