"""Orders held for approval: list them, approve, reject, and expire the ones nobody decided.

Every decision is one ETag-conditional transition of the order row (``change_order``), so
whatever races (two approvals, an approval and the expiry, an approval and a rejection)
exactly one decision is recorded and the others find the order decided:
- approving an order already approved changes nothing and says so (200);
- approving a rejected or expired order, or rejecting an approved one (it is booking),
  is ``NotAllowed`` (409) naming the decision taken;
- the expiry only moves an order whose ``approvalUntil`` has passed, and an approval only
  one whose ``approvalUntil`` has not, so the two can never both win.
What follows a decision (the booking message, releasing the holds, the status event, the
list entry) is idempotent and done after it; a crash in between is finished by the next
call or sweep: the outbox entry (written before an approval) lets the sweeper send the
booking message; before a rejection the order's list entry is made due now (``mark_due``), so
the next expiry sweep finds it decided and gives back the holds (a rejected order keeps
``holdsReleased`` false until they are back), and says so in a status event. A rejected or
expired order leaves the list only after its status is published, so a crash after its holds
came back still leaves the outcome and the event to the next sweep.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.bus import BusSendFailed
from shared.adapters.stores import order_outcomes
from shared.adapters.stores.approvals import is_listed, mark_due, remove_waiting, waiting
from shared.adapters.stores.orders import (
    add_to_outbox,
    change_order,
    load_order,
    remove_from_outbox,
)
from shared.domain.orders import (
    Decision,
    InvalidTransition,
    Order,
    OrderStatus,
    PricingData,
    approve,
    expire_approval,
    mark_holds_released,
    price_changes,
    reject_held,
)
from shared.services.errors import Conflict, UnknownCustomer
from shared.services.orders.admin import AdminResult, NotAllowed
from shared.services.orders.booking import UnknownOrder
from shared.services.orders.context import OrderContext
from shared.services.orders.holds import release_holds
from shared.services.orders.messages import publish_status, send_booking_message

_log = logging.getLogger(__name__)


class NoLongerBookable(Conflict):
    """What the order was accepted on has changed (a price, a block): it cannot be booked as
    accepted. It stays waiting; reject it (or let it expire) and let the buyer order again."""


@dataclass(frozen=True)
class ExpiryReport:
    examined: int = 0
    expired: int = 0


async def list_waiting(ctx: OrderContext) -> list[Order]:
    """Every order waiting for approval, soonest expiry first."""
    found = []
    for entry in await waiting(ctx.tables):
        stored = await load_order(ctx.tables, entry.order_id)
        if stored is not None and stored.order.status is OrderStatus.PENDING_APPROVAL:
            found.append(stored.order)
    return found


def _last(order: Order) -> str:
    if not order.decisions:
        return f"it is {order.status}"
    last = order.decisions[-1]
    return f"it was {last.decision} by {last.approver} at {last.at.isoformat()}: {last.reason}"


async def approve_order(
    ctx: OrderContext, order_id: str, approver: str, reason: str, correlation_id: str | None
) -> AdminResult:
    """Approve a held order and queue it for booking exactly as accepted.

    Raises `UnknownOrder`, `NotAllowed` (decided otherwise, or expired), `NoLongerBookable`
    (a price or the customer's block changed) or `Unavailable` (the ERP cannot confirm).
    """
    stored = await load_order(ctx.tables, order_id)
    if stored is None:
        raise UnknownOrder(order_id)
    order = stored.order
    if order.status is not OrderStatus.PENDING_APPROVAL:
        return await _approved_before(ctx, order)
    now = ctx.clock()
    if order.approval_until is not None and now >= order.approval_until:
        expired = await expire_one(ctx, order_id)
        raise NotAllowed("Approval expired", _last(expired or order))
    await _recheck(ctx, order, now)
    await add_to_outbox(ctx.tables, order_id, now)
    try:
        moved = await change_order(
            ctx.tables,
            order_id,
            lambda o: approve(o, approver, reason, ctx.clock(), correlation_id),
        )
    except InvalidTransition:
        current = await load_order(ctx.tables, order_id)
        assert current is not None
        return await _approved_before(ctx, current.order)
    assert moved is not None
    approved = moved.order
    await _queue_for_booking(ctx, approved)
    await _announce(ctx, approved)
    return AdminResult(approved, True, f"approved by {approver}; queued for booking")


async def _queue_for_booking(ctx: OrderContext, order: Order) -> None:
    """Send the approved order's booking message and drop its outbox entry. Safe to repeat:
    the same MessageId is dropped by the broker's duplicate detection, and booking looks the
    order up before creating it again."""
    with contextlib.suppress(BusSendFailed):  # the outbox sends it later
        await send_booking_message(
            ctx.bus, order.order_id, order.generation, order.attempt, order.correlation_id
        )
        await remove_from_outbox(ctx.tables, order.order_id)


async def _approved_before(ctx: OrderContext, order: Order) -> AdminResult:
    """Approve called on an order decided before. If it was approved and still waits to be
    booked, the process that approved it may have died before sending the booking message:
    send it again now rather than leave it to the sweep."""
    answer = _already(order, Decision.APPROVED, "approved")
    if order.status is OrderStatus.ACCEPTED:
        await _queue_for_booking(ctx, order)
    return answer


async def reject_order(
    ctx: OrderContext, order_id: str, approver: str, reason: str, correlation_id: str | None
) -> AdminResult:
    """Reject a held order: every hold given back, the status published.

    Raises `UnknownOrder` or `NotAllowed` (approved meanwhile: it is booking).
    """
    now = ctx.clock()
    stored = await load_order(ctx.tables, order_id)
    if stored is None:
        raise UnknownOrder(order_id)
    if stored.order.status is OrderStatus.PENDING_APPROVAL:
        await mark_due(ctx.tables, order_id, now)
    try:
        moved = await change_order(
            ctx.tables, order_id, lambda o: reject_held(o, approver, reason, now, correlation_id)
        )
    except InvalidTransition:
        current = await load_order(ctx.tables, order_id)
        assert current is not None
        if current.order.status is OrderStatus.REJECTED:
            await _finish_rejection(ctx, current.order)  # what a crashed decision left
        return _already(current.order, Decision.REJECTED, "rejected")
    if moved is None:
        raise UnknownOrder(order_id)
    done = await _give_back(ctx, moved.order)
    await _announce(ctx, done)
    return AdminResult(done, True, f"rejected by {approver}; every hold released")


async def expire_one(ctx: OrderContext, order_id: str) -> Order | None:
    """Reject a held order whose approval ran out, with the reason; safe to repeat."""
    try:
        moved = await change_order(ctx.tables, order_id, lambda o: expire_approval(o, ctx.clock()))
    except InvalidTransition:
        current = await load_order(ctx.tables, order_id)
        if current is None:
            return None
        if current.order.status is OrderStatus.REJECTED:
            return await _finish_rejection(ctx, current.order)
        if current.order.status is not OrderStatus.PENDING_APPROVAL:
            await remove_waiting(ctx.tables, order_id)
        return current.order
    if moved is None:
        await remove_waiting(ctx.tables, order_id)
        return None
    done = await _give_back(ctx, moved.order)
    await _announce(ctx, done)
    return done


async def expire_due(ctx: OrderContext) -> ExpiryReport:
    """Expire every held order whose approval ran out (the sweeper calls this)."""
    now = ctx.clock()
    examined = expired = 0
    for entry in await waiting(ctx.tables):
        if entry.until > now:
            break  # sorted by expiry
        examined += 1
        order = await expire_one(ctx, entry.order_id)
        if order is not None and order.status is OrderStatus.REJECTED:
            expired += 1
    return ExpiryReport(examined, expired)


def _already(order: Order, wanted: Decision, verb: str) -> AdminResult:
    """The answer when the order was decided before this call (or is no held order at all)."""
    if order.decisions and order.decisions[-1].decision is wanted:
        return AdminResult(order, False, f"already {verb}: {_last(order)}")
    raise NotAllowed(f"Not {verb}", f"order {order.order_id} cannot be {verb}: {_last(order)}")


async def _give_back(ctx: OrderContext, order: Order) -> Order:
    """Release every hold of a rejected order and record the outcome (both idempotent), then
    mark the holds given back. It stays on the list until `_announce` has published."""
    if not order.holds_released:
        now = ctx.clock()
        await release_holds(
            ctx.tables,
            order,
            booked=False,
            now=now,
            remember_for=ctx.settings.released_credit_memory,
        )
        await order_outcomes.record_rejected_at_approval(ctx.tables, order)
        done = await change_order(ctx.tables, order.order_id, lambda o: mark_holds_released(o, now))
        assert done is not None
        order = done.order
    return order


async def _finish_rejection(ctx: OrderContext, order: Order) -> Order:
    """A rejection whose process died after the decision: give back the holds it did not, and
    publish the status it never did. Still on the list means not all done (the holds may be
    back and the status not published); off the list, it was finished before."""
    if order.holds_released and not await is_listed(ctx.tables, order.order_id):
        return order
    done = await _give_back(ctx, order)
    await _announce(ctx, done)
    return done


async def _announce(ctx: OrderContext, order: Order) -> None:
    """Publish the decided order's status, then take it off the list (its last step: a crash
    before it leaves the order listed for the next sweep)."""
    try:
        await publish_status(ctx.bus, order, ctx.clock())
    except BusSendFailed:
        _log.warning(
            "order %s is %s; its status event was not published", order.order_id, order.status
        )
    await remove_waiting(ctx.tables, order.order_id)


async def _recheck(ctx: OrderContext, order: Order, now: datetime) -> None:
    """What can have changed since the order was accepted: its prices and the customer's
    block. Raises `NoLongerBookable` naming each change (``Unavailable`` when the ERP cannot
    tell)."""
    await ctx.price_book.ensure_current()
    book = ctx.price_book
    pricing = PricingData(
        index=book.index,
        customer=book.customers.get(order.customer_no),
        items=book.items,
        currencies=book.currency_table(ctx.currencies),
        campaign_policy=ctx.campaign_policy,
        order_date=now.date(),
        lcy_per_unit=book.lcy_per_unit,
    )
    changes = [
        v.detail if v.sku is None else f"{v.sku}: {v.detail}" for v in price_changes(order, pricing)
    ]
    try:
        reading = await ctx.figures.read(ctx.erp, ctx.tables, order.customer_no, now)
    except UnknownCustomer:
        changes.append("the customer no longer exists in the ERP")
    else:
        if reading.figures.blocks_orders:
            changes.append(
                f"the customer is blocked ({reading.figures.blocked}); the ERP would refuse "
                "the order"
            )
    if changes:
        raise NoLongerBookable(
            "Cannot be booked as accepted",
            "the order can no longer be booked as accepted: " + "; ".join(changes),
        )
