"""Orders held for approval (issue 19) on real parts: ERP simulator, Service Bus stand-in,
Azurite. With a rule at ``hold`` the order waits with its holds, then is approved and booked
once, or rejected (by a person or the expiry) with every hold given back; with ``reject`` (the
default) intake answers 422 as before; racing decisions leave exactly one."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from shared.adapters.stores.credit_holds import load_pending
from shared.adapters.stores.orders import change_order, load_order
from shared.domain.orders import ApprovalAction, Decision, Order, OrderStatus, QuantityLimits
from shared.services.orders import approvals
from shared.services.orders.admin import AdminResult, NotAllowed
from shared.services.orders.api import order_view
from shared.services.orders.approvals import (
    NoLongerBookable,
    approve_order,
    expire_due,
    expire_one,
    list_waiting,
    reject_order,
)
from shared.services.orders.context import utc_now
from shared.services.orders.outbox import sweep
from tests.support.orders_harness import (
    Harness,
    credit_summary,
    drain,
    erp_orders,
    sim_post,
    sim_price,
)

CUSTOMER = "C00001"
SKU = "IT-000001"


def hold(harness: Harness, *rules: str, hold_for: timedelta = timedelta(hours=1)) -> None:
    """Put the given rules at ``hold`` (every other rule stays at the default, reject)."""
    harness.ctx.settings = replace(
        harness.ctx.settings,
        approval_actions=MappingProxyType({rule: ApprovalAction.HOLD for rule in rules}),
        approval_hold_for=hold_for,
    )


def order_body(lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "customerId": CUSTOMER,
        "externalOrderId": "shop-approval",
        "channel": "web",
        "lines": lines,
        **extra,
    }


async def held_everywhere(harness: Harness, order_id: str, customer: str = CUSTOMER) -> set[str]:
    """Where the order still holds something: 'credit' and/or the stock locations."""
    where = {
        location for location, held in (await harness.reservations(SKU)).items() if order_id in held
    }
    pending = await load_pending(harness.ctx.tables, customer)
    if order_id in pending.pending.holds:
        where.add("credit")
    return where


def settled(harness: Harness, order_id: str) -> Any:
    async def check() -> bool:
        stored = await load_order(harness.ctx.tables, order_id)
        return stored is not None and stored.order.settled

    return check


async def status_events(harness: Harness, order_id: str) -> list[dict[str, Any]]:
    events = await drain(harness.bus_connection, "order-status", "storefront")
    return [b for b in (json.loads(str(e)) for e in events) if b["orderId"] == order_id]


async def test_with_reject_at_every_rule_intake_refuses_as_today(harness: Harness) -> None:
    await harness.stock(SKU, MAIN=3)
    answer = await harness.submit(order_body([{"sku": SKU, "quantity": 5}]))
    assert answer.status == 422, answer.body
    problem = json.loads(answer.body)
    assert [v["rule"] for v in problem["violations"]] == ["insufficient-stock"]
    assert await held_everywhere(harness, problem["orderId"]) == set()
    assert await list_waiting(harness.ctx) == []


async def test_a_rule_at_hold_with_another_at_reject_still_rejects(harness: Harness) -> None:
    hold(harness, "insufficient-stock")
    await harness.stock(SKU, MAIN=3)
    price = sim_price(harness.sim, CUSTOMER, SKU, 5)
    body = order_body([{"sku": SKU, "quantity": 5, "expectedUnitPrice": str(price + 1)}])
    answer = await harness.submit(body)
    assert answer.status == 422, answer.body
    assert await held_everywhere(harness, json.loads(answer.body)["orderId"]) == set()


async def test_short_stock_at_hold_waits_then_is_approved_and_booked_once(
    harness: Harness,
) -> None:
    hold(harness, "insufficient-stock")
    await drain(harness.bus_connection, "order-status", "storefront")
    await harness.stock(SKU, MAIN=3)
    answer = await harness.submit(order_body([{"sku": SKU, "quantity": 5}]))
    assert answer.status == 202, answer.body
    body = json.loads(answer.body)
    order_id = body["orderId"]
    assert body["status"] == "pending-approval" and body["approvalUntil"]
    assert [(v["rule"], v["requested"], v["available"]) for v in body["violations"]] == [
        ("insufficient-stock", "5", "3")
    ]
    # Its holds are kept: the 3 units there are and the credit.
    assert (await harness.reservations(SKU))["MAIN"] == {order_id: Decimal(3)}
    assert await held_everywhere(harness, order_id) == {"MAIN", "credit"}
    waiting = await list_waiting(harness.ctx)
    assert [o.order_id for o in waiting] == [order_id]
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None and order_view(stored.order)["status"] == "pending-approval"
    # Nothing was issued for booking while it waits (attempt 1 is the first message).
    assert stored.order.attempt == 0 and stored.order.claims == 0

    result = await approve_order(harness.ctx, order_id, "Fran Finance", "backorder ok", "c-1")
    assert result.changed and result.order.status is OrderStatus.ACCEPTED
    again = await approve_order(harness.ctx, order_id, "Fran Finance", "twice", "c-2")
    assert not again.changed and "already approved" in again.detail
    await harness.deliver(until=settled(harness, order_id))
    erp = erp_orders(harness.sim, order_id)
    assert len(erp) == 1
    assert Decimal(str(erp[0]["totalAmountExcludingTax"])) == Decimal(body["totalAmount"])
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None and stored.order.status is OrderStatus.BOOKED
    decisions = [(d.decision, d.approver, d.reason) for d in stored.order.decisions]
    assert decisions == [(Decision.APPROVED, "Fran Finance", "backorder ok")]
    view = order_view(stored.order)
    assert view["decisions"][0]["approver"] == "Fran Finance"
    assert [h["event"] for h in view["history"]][:2] == ["held-for-approval", "approved"]
    assert await list_waiting(harness.ctx) == []
    assert [e["status"] for e in await status_events(harness, order_id)] == [
        "pending-approval",
        "accepted",
        "booked",
    ]


async def test_a_price_mismatch_at_hold_is_rejected_with_every_hold_released(
    harness: Harness,
) -> None:
    hold(harness, "price-mismatch")
    await drain(harness.bus_connection, "order-status", "storefront")
    await harness.stock(SKU, MAIN=10)
    price = sim_price(harness.sim, CUSTOMER, SKU, 2)
    body = order_body([{"sku": SKU, "quantity": 2, "expectedUnitPrice": str(price - 1)}])
    answer = await harness.submit(body)
    assert answer.status == 202, answer.body
    order_id = json.loads(answer.body)["orderId"]
    assert await held_everywhere(harness, order_id) == {"MAIN", "credit"}

    result = await reject_order(harness.ctx, order_id, "Pat Pricing", "wrong catalog", "c-3")
    assert result.changed and result.order.status is OrderStatus.REJECTED
    assert result.order.holds_released
    assert await held_everywhere(harness, order_id) == set()
    again = await reject_order(harness.ctx, order_id, "Pat Pricing", "twice", "c-4")
    assert not again.changed
    with pytest.raises(NotAllowed, match="rejected by Pat Pricing"):
        await approve_order(harness.ctx, order_id, "Late Larry", "too late", "c-5")
    events = await status_events(harness, order_id)
    assert [e["status"] for e in events] == ["pending-approval", "rejected"]
    assert events[-1]["reason"] == "wrong catalog"
    assert events[-1]["decision"]["approver"] == "Pat Pricing"
    assert erp_orders(harness.sim, order_id) == []


async def test_over_the_credit_limit_at_hold_holds_the_credit_and_rejects_cleanly(
    harness: Harness,
) -> None:
    customer = "C00005"
    hold(harness, "credit-over-limit")
    summary = credit_summary(harness.sim, customer)
    limit = Decimal(str(summary["creditLimit"]))
    price = sim_price(harness.sim, customer, SKU, 1)
    sim_post(
        harness.sim,
        f"/_sim/customers/{customer}/financials",
        {"balance": str(limit - price / 2), "outstandingOrdersAmount": "0", "overdueAmount": "0"},
    )
    await harness.stock(SKU, MAIN=10)
    try:
        answer = await harness.submit(
            order_body([{"sku": SKU, "quantity": 1}], customerId=customer)
        )
    finally:
        sim_post(
            harness.sim,
            f"/_sim/customers/{customer}/financials",
            {"balance": str(summary["balance"]), "outstandingOrdersAmount": "0"},
        )
    assert answer.status == 202, answer.body
    body = json.loads(answer.body)
    assert [v["rule"] for v in body["violations"]] == ["credit-over-limit"]
    order_id = body["orderId"]
    pending = await load_pending(harness.ctx.tables, customer)
    assert pending.pending.holds == {order_id: Decimal(body["totalAmount"])}
    await reject_order(harness.ctx, order_id, "Fran Finance", "limit stays", "c-6")
    assert await held_everywhere(harness, order_id, customer) == set()


async def test_a_blocked_customer_cannot_be_approved_while_the_erp_still_blocks_it(
    harness: Harness,
) -> None:
    customer = "C00003"  # Blocked = Ship: the ERP refuses its orders
    hold(harness, "customer-blocked")
    await harness.stock(SKU, MAIN=10)
    answer = await harness.submit(order_body([{"sku": SKU, "quantity": 1}], customerId=customer))
    assert answer.status == 202, answer.body
    order_id = json.loads(answer.body)["orderId"]
    with pytest.raises(NoLongerBookable, match=r"blocked \(Ship\)"):
        await approve_order(harness.ctx, order_id, "Fran Finance", "known customer", "c-7")
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None and stored.order.status is OrderStatus.PENDING_APPROVAL
    assert stored.order.decisions == ()
    assert erp_orders(harness.sim, order_id) == []


async def test_an_expired_approval_releases_its_holds_and_rejects_with_the_reason(
    harness: Harness,
) -> None:
    hold(harness, "insufficient-stock", hold_for=timedelta(minutes=10))
    await harness.stock(SKU, MAIN=2)
    answer = await harness.submit(order_body([{"sku": SKU, "quantity": 4}]))
    order_id = json.loads(answer.body)["orderId"]
    assert await held_everywhere(harness, order_id) == {"MAIN", "credit"}
    # Not yet due: the sweep leaves it waiting.
    assert (await sweep(harness.ctx)).approvals_expired == 0
    later = replace(harness.ctx, clock=lambda: utc_now() + timedelta(minutes=11))
    assert (await sweep(later)).approvals_expired == 1
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None and stored.order.status is OrderStatus.REJECTED
    assert stored.order.decisions[-1].decision is Decision.EXPIRED
    assert "approval expired" in stored.order.decisions[-1].reason
    assert await held_everywhere(harness, order_id) == set()
    assert await list_waiting(harness.ctx) == []
    with pytest.raises(NotAllowed, match="expired"):
        await approve_order(later, order_id, "Fran Finance", "too late", "c-8")


async def test_an_approval_after_the_deadline_expires_the_order_instead(harness: Harness) -> None:
    hold(harness, "insufficient-stock", hold_for=timedelta(minutes=10))
    await harness.stock(SKU, MAIN=2)
    order_id = json.loads((await harness.submit(order_body([{"sku": SKU, "quantity": 4}]))).body)[
        "orderId"
    ]
    later = replace(harness.ctx, clock=lambda: utc_now() + timedelta(minutes=11))
    with pytest.raises(NotAllowed, match="expired by system:approval-expiry") as late:
        await approve_order(later, order_id, "Fran Finance", "just in time?", "c-9")
    assert late.value.title == "Approval expired"
    assert await held_everywhere(harness, order_id) == set()


async def test_concurrent_approvals_and_rejections_leave_one_decision(harness: Harness) -> None:
    hold(harness, "insufficient-stock")
    await harness.stock(SKU, MAIN=3)
    order_ids = [
        json.loads(
            (
                await harness.submit(
                    order_body([{"sku": SKU, "quantity": 4}], externalOrderId=f"race-{n}")
                )
            ).body
        )["orderId"]
        for n in range(3)
    ]
    for order_id in order_ids:
        calls = [
            approve_order(harness.ctx, order_id, f"approver-{n}", "ok", None) for n in range(3)
        ] + [reject_order(harness.ctx, order_id, f"rejecter-{n}", "no", None) for n in range(3)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        changed = [r for r in results if not isinstance(r, BaseException) and r.changed]
        assert len(changed) == 1, results
        refused = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(r, NotAllowed) for r in refused), refused
        stored = await load_order(harness.ctx.tables, order_id)
        assert stored is not None and len(stored.order.decisions) == 1
        if stored.order.status is OrderStatus.REJECTED:
            assert await held_everywhere(harness, order_id) == set()
        else:
            assert stored.order.status is OrderStatus.ACCEPTED
            assert "credit" in await held_everywhere(harness, order_id)
    assert await list_waiting(harness.ctx) == []


class _ExpiryDuringRecheck:
    """The figures source of the approving context: once the approval's re-check has read
    the ERP, it starts the expiry (on a clock past the deadline) and lets the approval go on,
    so both decisions are in flight against the same order row at once."""

    def __init__(self, inner: Any, later: Any, order_id: str) -> None:
        self.inner, self.later, self.order_id = inner, later, order_id
        self.expiry: asyncio.Task[Any] | None = None

    async def read(self, *args: Any) -> Any:
        reading = await self.inner.read(*args)
        self.expiry = asyncio.create_task(expire_one(self.later, self.order_id))
        await asyncio.sleep(0)  # let the expiry start its read before the approval writes
        return reading


async def test_an_approval_racing_the_expiry_leaves_one_outcome(harness: Harness) -> None:
    hold(harness, "insufficient-stock", hold_for=timedelta(minutes=10))
    await harness.stock(SKU, MAIN=40)
    later = replace(harness.ctx, clock=lambda: utc_now() + timedelta(minutes=11))
    for n in range(6):
        answer = await harness.submit(
            order_body([{"sku": SKU, "quantity": 50}], externalOrderId=f"exp-{n}")
        )
        order_id = json.loads(answer.body)["orderId"]
        racing = _ExpiryDuringRecheck(harness.ctx.figures, later, order_id)
        approving = replace(harness.ctx, figures=racing)
        try:
            approval: Any = await approve_order(approving, order_id, "Fran Finance", "ok", None)
        except NotAllowed as refused:
            approval = refused
        assert racing.expiry is not None
        await racing.expiry
        stored = await load_order(harness.ctx.tables, order_id)
        assert stored is not None and len(stored.order.decisions) == 1, stored
        decision = stored.order.decisions[0].decision
        if decision is Decision.EXPIRED:
            assert isinstance(approval, NotAllowed), approval
            assert stored.order.status is OrderStatus.REJECTED
            assert await held_everywhere(harness, order_id) == set()
        else:
            assert isinstance(approval, AdminResult) and approval.changed
            assert stored.order.status is OrderStatus.ACCEPTED
            assert "credit" in await held_everywhere(harness, order_id)


async def test_rejecting_an_order_that_is_already_booking_is_refused(harness: Harness) -> None:
    hold(harness, "insufficient-stock")
    await harness.stock(SKU, MAIN=3)
    order_id = json.loads((await harness.submit(order_body([{"sku": SKU, "quantity": 4}]))).body)[
        "orderId"
    ]
    await approve_order(harness.ctx, order_id, "Fran Finance", "ok", None)
    with pytest.raises(NotAllowed, match="approved by Fran Finance"):
        await reject_order(harness.ctx, order_id, "Late Larry", "changed my mind", None)
    await harness.deliver(until=settled(harness, order_id))
    assert len(erp_orders(harness.sim, order_id)) == 1


async def test_an_approval_says_so_when_the_price_changed_since_acceptance(
    harness: Harness,
) -> None:
    hold(harness, "insufficient-stock")
    await harness.stock(SKU, MAIN=1)
    answer = await harness.submit(order_body([{"sku": SKU, "quantity": 2}]))
    order_id = json.loads(answer.body)["orderId"]
    price = sim_price(harness.sim, CUSTOMER, SKU, 2)

    # As if the price list moved after acceptance: the order was accepted 1.00 above it.
    def accepted_higher(order: Order) -> Order:
        line = order.lines[0]
        return replace(order, lines=(replace(line, unit_price=line.unit_price + 1),))

    await change_order(harness.ctx.tables, order_id, accepted_higher)
    with pytest.raises(NoLongerBookable, match="can no longer be booked as accepted") as refused:
        await approve_order(harness.ctx, order_id, "Fran Finance", "ok", None)
    assert f"the price is now {price}" in refused.value.detail
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None and stored.order.status is OrderStatus.PENDING_APPROVAL
    assert stored.order.decisions == ()
    assert await held_everywhere(harness, order_id) == {"MAIN", "credit"}
    assert stored.order.attempt == 0  # no booking message was issued


async def test_a_line_over_its_quantity_limit_is_refused_or_held_then_booked(
    harness: Harness,
) -> None:
    limits = QuantityLimits(customers={CUSTOMER: Decimal(4)}, items={SKU: Decimal(10)})
    harness.ctx.settings = replace(harness.ctx.settings, quantity_limits=limits)
    await harness.stock(SKU, MAIN=20)
    refused = await harness.submit(order_body([{"sku": SKU, "quantity": 5}]))
    assert refused.status == 422, refused.body
    problem = json.loads(refused.body)
    assert [
        (v["rule"], v["line"], v["quantity"], v["limit"], v["limitSource"])
        for v in problem["violations"]
    ] == [("quantity-over-threshold", 0, "5", "4", "customer")]
    assert await held_everywhere(harness, problem["orderId"]) == set()

    hold(harness, "quantity-over-threshold")
    harness.ctx.settings = replace(harness.ctx.settings, quantity_limits=limits)
    answer = await harness.submit(order_body([{"sku": SKU, "quantity": 5}]))
    assert answer.status == 202, answer.body
    order_id = json.loads(answer.body)["orderId"]
    assert (await harness.reservations(SKU))["MAIN"] == {order_id: Decimal(5)}
    await approve_order(harness.ctx, order_id, "Sam Sales", "a known big buyer", "c-q")
    await harness.deliver(until=settled(harness, order_id))
    assert len(erp_orders(harness.sim, order_id)) == 1


class _Crashed(Exception):
    """Stands for the process dying right after a decision's write."""


@pytest.mark.parametrize("decision", ["reject", "expire"])
async def test_a_decision_that_dies_after_its_write_is_finished_once_by_the_next_sweep(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, decision: str
) -> None:
    hold(harness, "insufficient-stock", hold_for=timedelta(minutes=10))
    await harness.stock(SKU, MAIN=2)
    answer = await harness.submit(order_body([{"sku": SKU, "quantity": 4}]))
    order_id = json.loads(answer.body)["orderId"]
    later = replace(harness.ctx, clock=lambda: utc_now() + timedelta(minutes=11))
    ctx = harness.ctx if decision == "reject" else later
    write = approvals.change_order

    async def write_then_die(*args: Any, **kwargs: Any) -> Any:
        await write(*args, **kwargs)
        raise _Crashed

    monkeypatch.setattr(approvals, "change_order", write_then_die)
    with pytest.raises(_Crashed):
        if decision == "reject":
            await reject_order(ctx, order_id, "Fran Finance", "no", "c-k")
        else:
            await expire_due(ctx)
    monkeypatch.setattr(approvals, "change_order", write)
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None and stored.order.status is OrderStatus.REJECTED
    assert not stored.order.holds_released
    assert await held_everywhere(harness, order_id) == {"MAIN", "credit"}  # nothing given back

    await drain(harness.bus_connection, "order-status", "storefront")
    await sweep(ctx)  # a rejection is due at once, not at approvalUntil
    assert await held_everywhere(harness, order_id) == set()
    assert await list_waiting(harness.ctx) == []
    stored = await load_order(harness.ctx.tables, order_id)
    assert stored is not None and stored.order.holds_released
    assert len(stored.order.decisions) == 1
    events = await status_events(harness, order_id)
    assert [e["status"] for e in events] == ["rejected"]  # what the dead process never said
    await sweep(ctx)  # again: nothing left to do, nothing published twice
    assert await status_events(harness, order_id) == []
