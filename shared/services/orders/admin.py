"""Operations on one order: replay a failed booking, cancel a failed order.

Both are idempotent. A replay moves a ``failed`` order back to ``accepted`` as a new
generation (ETag-conditional, so two concurrent replays make one) and sends its message;
replaying an order that is booked, or accepted and recently active, changes nothing. An
accepted order untouched for longer than any retry could take lost its message (expired or
dead-lettered by the broker itself) and is replayed the same way. The outbox entry is
written before the transition, so a crash between the transition and the send is finished
by the sweeper.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.bus import BusSendFailed
from shared.adapters.stores.orders import (
    add_to_outbox,
    change_order,
    load_order,
    remove_from_outbox,
)
from shared.domain.orders import (
    InvalidTransition,
    Order,
    OrderStatus,
    cancel,
    mark_holds_released,
    request_replay,
)
from shared.services.errors import Conflict
from shared.services.orders.booking import PENDING_CREATE_MARK, UnknownOrder, settle
from shared.services.orders.context import OrderContext
from shared.services.orders.holds import release_holds
from shared.services.orders.messages import publish_status, send_booking_message


class NotAllowed(Conflict):
    """The order's status does not allow the operation (``title`` names which)."""


@dataclass(frozen=True)
class AdminResult:
    order: Order
    changed: bool
    detail: str


async def replay_order(ctx: OrderContext, order_id: str, correlation_id: str | None) -> AdminResult:
    """Book a failed order again; raises `UnknownOrder` or `NotAllowed`."""
    stored = await load_order(ctx.tables, order_id)
    if stored is None:
        raise UnknownOrder(order_id)
    order = stored.order
    if order.status is OrderStatus.BOOKED:
        if not order.settled:
            await settle(ctx, order)
        return AdminResult(order, False, "already booked")
    now = ctx.clock()
    if order.status is OrderStatus.ACCEPTED and now - order.updated_at < ctx.settings.stuck_after:
        return AdminResult(order, False, "already queued for booking")
    if order.status not in (OrderStatus.FAILED, OrderStatus.ACCEPTED):
        raise NotAllowed("Not replayable", f"a {order.status} order cannot be replayed")
    await add_to_outbox(ctx.tables, order_id, now)
    try:
        replayed = await change_order(
            ctx.tables, order_id, lambda o: request_replay(o, now, correlation_id)
        )
    except InvalidTransition:
        # Replayed (or cancelled) concurrently: report what it is now.
        current = await load_order(ctx.tables, order_id)
        assert current is not None
        return AdminResult(current.order, False, f"already {current.order.status}")
    assert replayed is not None
    order = replayed.order
    # BC may still hold the last attempt's create in its queue and commit it; an attempt
    # before BC has surely ended it could find nothing and create a second ERP order.
    pending_until = _create_may_be_pending_until(ctx, stored.order)
    scheduled_at = pending_until if pending_until is not None and pending_until > now else None
    with contextlib.suppress(BusSendFailed):  # the outbox sends it later
        await send_booking_message(
            ctx.bus,
            order_id,
            order.generation,
            order.attempt,
            correlation_id or None,
            scheduled_at=scheduled_at,
        )
        await remove_from_outbox(ctx.tables, order_id)
    return AdminResult(order, True, f"queued for booking (generation {order.generation})")


async def cancel_order(
    ctx: OrderContext, order_id: str, reason: str, correlation_id: str | None
) -> AdminResult:
    """Give up on a failed order: rejected, its holds given back; raises `UnknownOrder` or
    `NotAllowed`."""
    stored = await load_order(ctx.tables, order_id)
    if stored is None:
        raise UnknownOrder(order_id)
    now = ctx.clock()
    order = stored.order
    changed = False
    if order.status is OrderStatus.FAILED:
        try:
            moved = await change_order(
                ctx.tables, order_id, lambda o: cancel(o, reason, now, correlation_id)
            )
        except InvalidTransition as error:
            raise NotAllowed("Not cancellable", str(error)) from None
        assert moved is not None
        order, changed = moved.order, True
    elif order.status is not OrderStatus.REJECTED:
        raise NotAllowed(
            "Not cancellable", f"a {order.status} order cannot be cancelled (only a failed one)"
        )
    if not order.holds_released:
        await release_holds(
            ctx.tables,
            order,
            booked=False,
            now=now,
            remember_for=ctx.settings.released_credit_memory,
        )
        done = await change_order(ctx.tables, order_id, lambda o: mark_holds_released(o, now))
        assert done is not None
        order = done.order
    if changed:
        with contextlib.suppress(BusSendFailed):
            await publish_status(ctx.bus, order, now)
    return AdminResult(order, changed, "cancelled" if changed else f"already {order.status}")


def _create_may_be_pending_until(ctx: OrderContext, order: Order) -> datetime | None:
    """When BC has surely ended the last attempt's unanswered create (None: none pending).

    Read from the history note the booking writes when a create got no answer.
    """
    for entry in reversed(order.history):
        if str(entry.event) == "booking-started":
            return None  # notes before the newest attempt's start are not about it
        _, mark, rest = entry.detail.partition(PENDING_CREATE_MARK)
        if mark:
            try:
                return datetime.fromisoformat(rest.split(")", 1)[0].strip())
            except ValueError:
                return None
    return None
