"""``POST /api/orders``: accept an order only when the ERP is sure to accept it too.

Steps, each safe to repeat:
1. Claim the Idempotency-Key with a hash of the body (before any effect).
2. Gather facts at once: the ERP's credit figures (one read), the price book, the
   customer's pending credit, the stock positions of each item.
3. Evaluate every rule (``evaluate_order``); any violation: the order is stored
   ``rejected`` and the 422 listing all of them is the key's answer. Nothing was reserved.
   Unless the sync policy routes every broken rule to a person (``hold``): then the order
   goes on like an accepted one, holds its credit (beyond the limit) and the stock there is,
   and waits as ``pending-approval`` (see ``approvals``) instead of being booked. With
   ``insufficient-stock: backorder`` a short line of an item the policy names is no violation:
   it holds what there is and the rest is backordered (booked whole, credit for the whole).
4. Put the order in the outbox and store it ``pending`` with its lines, then take the holds
   (credit: one ETag-conditional row per customer; stock: one per sku and location).
   A concurrent order that got there first makes a hold fail: everything taken is given
   back and the order is evaluated again on fresh data (at most three rounds).
5. Mark it ``accepted`` (ETag), send the ``orders`` message, take it out of the outbox.
   If the send fails the order stays in the outbox and the sweeper sends it: still 202.

When the ERP is down, orders are accepted on the last known credit figures if they are
younger than the sync policy's ``credit.maxCached`` (the pending holds still guarantee no two orders
overrun them), else the answer is 503 and the key is released for a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.adapters.stores import idempotency_keys as keys
from shared.adapters.stores import order_outcomes
from shared.adapters.stores import stock as stock_store
from shared.adapters.stores.approvals import add_waiting
from shared.adapters.stores.credit_holds import load_pending
from shared.adapters.stores.orders import (
    StoredOrder,
    add_to_outbox,
    change_order,
    create_order,
    load_order,
    remove_from_outbox,
    save_order,
)
from shared.adapters.tables import EntityChanged, EntityExists
from shared.domain.credit import CreditRefused, PendingCredit
from shared.domain.orders import (
    ApprovalAction,
    Evaluation,
    InvalidTransition,
    Order,
    OrderFacts,
    OrderStatus,
    PricingData,
    RequestedLine,
    abandon,
    accept,
    approval_needed,
    evaluate_order,
    hold_for_approval,
    mark_holds_released,
    reject,
)
from shared.domain.stock import InsufficientStock, available_to_sell
from shared.services.credit.figures import FiguresReading
from shared.services.errors import Conflict, Unavailable, UnknownCustomer
from shared.services.http_contract import problem_body
from shared.services.orders.api import (
    OrderAccepted,
    OrderRequest,
    accepted_answer,
    rejection_problem,
)
from shared.services.orders.context import OrderContext
from shared.services.orders.holds import release_holds, take_holds
from shared.services.orders.messages import publish_status, send_booking_message

# The key table keeps the first answer as sent (status, type, body); rows are read back as
# outcomes by their status.
_ACCEPTED_STORED = (202, "application/json")
_REJECTED_STORED = (422, "application/problem+json")
_ROUNDS = 3
_log = logging.getLogger(__name__)


def _undecided(detail: str, retry_after_seconds: int) -> Unavailable:
    """The order cannot be decided now (ERP down without recent figures, contention)."""
    return Unavailable("Order cannot be decided now", detail, retry_after_seconds)


@dataclass(frozen=True)
class IntakeAccepted:
    """The order is accepted (holds taken, booking on its way); ``body`` is its wire answer."""

    body: str


@dataclass(frozen=True)
class IntakeRejected:
    """The order breaks rules; ``body`` is the problem document listing every violation."""

    body: str


@dataclass(frozen=True)
class IntakeReplayed:
    """A repeated Idempotency-Key: the first request's outcome, its body as first sent."""

    first: IntakeAccepted | IntakeRejected


IntakeOutcome = IntakeAccepted | IntakeRejected | IntakeReplayed


def _accepted(body: dict[str, Any]) -> IntakeAccepted:
    # Sent through the documented models, so the stored (and replayed) answer fits the contract.
    return IntakeAccepted(OrderAccepted.model_validate(body).wire_json())


def _rejected(body: dict[str, Any]) -> IntakeRejected:
    return IntakeRejected(problem_body(body))


def _stored(outcome: IntakeAccepted | IntakeRejected) -> keys.StoredResponse:
    status, content_type = (
        _ACCEPTED_STORED if isinstance(outcome, IntakeAccepted) else _REJECTED_STORED
    )
    return keys.StoredResponse(status, content_type, outcome.body)


def _replayed(stored: keys.StoredResponse) -> IntakeReplayed:
    if stored.status == _ACCEPTED_STORED[0]:
        return IntakeReplayed(IntakeAccepted(stored.body))
    return IntakeReplayed(IntakeRejected(stored.body))


async def submit_order(
    ctx: OrderContext,
    idempotency_key: str,
    raw_body: Any,
    request: OrderRequest,
    correlation_id: str | None,
) -> IntakeOutcome:
    """Decide an order once per Idempotency-Key; raises ``Conflict`` (key reused with another
    body, or its first request still running) or ``Unavailable`` (none of them stored as the
    key's answer)."""
    settings = ctx.settings
    try:
        claim = await keys.claim_key(
            ctx.tables,
            idempotency_key,
            keys.request_hash(raw_body),
            ctx.new_order_id(),
            ctx.clock,
            retention=settings.idempotency_retention,
            stale_after=settings.intake_timeout,
            wait=settings.duplicate_wait,
        )
    except keys.KeyReused:
        raise Conflict(
            "Idempotency-Key reused", "this Idempotency-Key was first used with a different body"
        ) from None
    except keys.KeyInProgress as busy:
        raise Conflict(
            "Request in progress",
            "the first request with this Idempotency-Key has not finished yet",
            busy.retry_after_seconds,
        ) from None
    if isinstance(claim, keys.StoredResponse):
        return _replayed(claim)
    try:
        answer = await _decide(ctx, claim, request, correlation_id)
    except Exception:
        await keys.drop_key(ctx.tables, claim)
        raise
    await keys.complete_key(ctx.tables, claim, _stored(answer))
    return answer


async def _decide(
    ctx: OrderContext, claim: keys.KeyClaim, request: OrderRequest, correlation_id: str | None
) -> IntakeAccepted | IntakeRejected:
    order_id = claim.order_id
    if claim.resumed:
        stored = await load_order(ctx.tables, order_id)
        if stored is not None and stored.order.status is not OrderStatus.PENDING:
            # The first request decided the order but died before storing its answer.
            return _answer_for(stored.order, credit_stale=False)
        if stored is not None:
            await abandon_intake(ctx, stored.order, "intake interrupted; decided again")
            order_id = ctx.new_order_id()
            claim.entity["orderId"] = order_id
    return await _intake(ctx, order_id, request, correlation_id)


def _answer_for(order: Order, *, credit_stale: bool) -> IntakeAccepted | IntakeRejected:
    if order.status is OrderStatus.PENDING_APPROVAL:
        return _accepted(accepted_answer(order, credit_stale=credit_stale))
    if order.status is OrderStatus.REJECTED and order.violations:
        return _rejected(rejection_problem(order.order_id, order.violations))
    if order.status is OrderStatus.REJECTED:
        return _rejected(
            {
                "type": "about:blank",
                "title": "Order rejected",
                "status": 422,
                "detail": "the order's intake was interrupted; submit it again",
                "orderId": order.order_id,
                "violations": [],
            }
        )
    return _accepted(accepted_answer(order, credit_stale=credit_stale))


async def _read_figures(
    ctx: OrderContext, customer_no: str, now: datetime
) -> FiguresReading | None:
    try:
        return await ctx.figures.read(
            ctx.erp, ctx.tables, customer_no, now, reuse_for=ctx.settings.credit_intake_cache
        )
    except UnknownCustomer:
        return None
    except Unavailable as unavailable:
        raise _undecided(
            f"credit cannot be verified: {unavailable.detail}", unavailable.retry_after_seconds
        ) from None


@dataclass(frozen=True)
class _Holdings:
    """What the holds look like now: stock available per sku and location, pending credit."""

    available: dict[str, dict[str, Decimal]]
    pending: PendingCredit


async def _holdings(ctx: OrderContext, request: OrderRequest) -> _Holdings:
    skus = sorted({line.sku for line in request.lines})
    found, stored = await asyncio.gather(
        asyncio.gather(*(stock_store.positions_of(ctx.tables, sku) for sku in skus)),
        load_pending(ctx.tables, request.customer_id),
    )
    with_expected = ctx.settings.sells_expected(request.channel)
    available = {
        sku: {
            s.position.location: available_to_sell(s.position, with_expected=with_expected)
            for s in positions
        }
        for sku, positions in zip(skus, found, strict=True)
    }
    return _Holdings(available, stored.pending)


def _evaluate(
    ctx: OrderContext,
    request: OrderRequest,
    reading: FiguresReading | None,
    holdings: _Holdings,
    now: datetime,
) -> Evaluation:
    channel = ctx.settings.channels.get(request.channel)
    policy = ctx.settings.credit_policy
    pending = (
        holdings.pending.pending_for(reading.figures.as_of, policy)
        if reading is not None
        else Decimal(0)
    )
    book = ctx.price_book
    return evaluate_order(
        [
            RequestedLine(
                line.sku, line.quantity, line.unit_of_measure or "", line.expected_unit_price
            )
            for line in request.lines
        ],
        request.currency,
        PricingData(
            index=book.index,
            customer=book.customers.get(request.customer_id),
            items=book.items,
            currencies=book.currency_table(ctx.currencies),
            campaign_policy=ctx.campaign_policy,
            order_date=now.date(),
            lcy_per_unit=book.lcy_per_unit,
        ),
        OrderFacts(
            channel_known=channel is not None,
            sold_currencies=ctx.settings.sold_currencies,
            credit=reading.figures if reading is not None else None,
            pending_credit=pending,
            policy=policy,
            available=holdings.available,
            sells_from=channel.sells_from if channel is not None else (lambda _: False),
            partial_stock=ctx.settings.approval_actions.get("insufficient-stock")
            is ApprovalAction.HOLD,
            backorderable=_backorderable(ctx),
            quantity_limits=ctx.settings.quantity_limits,
        ),
    )


def _backorderable(ctx: OrderContext) -> Callable[[str], bool]:
    """Which items' short lines are backordered: the policy's items and item categories (the
    category as the published item data has it)."""
    backorders = ctx.settings.backorders
    if backorders is None:
        return lambda _: False
    items = ctx.price_book.items

    def allows(sku: str) -> bool:
        item = items.get(sku)
        return backorders.allows(sku, item.category if item is not None else "")

    return allows


def _order(
    order_id: str,
    request: OrderRequest,
    evaluation: Evaluation,
    now: datetime,
    correlation_id: str | None,
) -> Order:
    return Order(
        order_id=order_id,
        status=OrderStatus.PENDING,
        customer_no=request.customer_id,
        channel=request.channel,
        currency=evaluation.currency,
        external_order_id=request.external_order_id,
        created_at=now,
        updated_at=now,
        lines=evaluation.lines,
        total_amount=evaluation.total_amount,
        credit_amount=evaluation.credit_amount or Decimal(0),
        correlation_id=correlation_id,
        ship_to=request.ship_to.as_sales_header() if request.ship_to else {},
    )


async def _intake(
    ctx: OrderContext, order_id: str, request: OrderRequest, correlation_id: str | None
) -> IntakeAccepted | IntakeRejected:
    now = ctx.clock()
    # The ERP read is the slow part; the table reads run while it is in flight.
    reading, _, holdings = await asyncio.gather(
        _read_figures(ctx, request.customer_id, now),
        ctx.price_book.ensure_current(),
        _holdings(ctx, request),
    )
    stored: StoredOrder | None = None
    for round_number in range(_ROUNDS):
        if round_number:
            holdings = await _holdings(ctx, request)  # a concurrent order changed them
        evaluation = _evaluate(ctx, request, reading, holdings, now)
        order = _order(order_id, request, evaluation, now, correlation_id)
        held = approval_needed(evaluation.violations, ctx.settings.approval_actions)
        if not evaluation.acceptable and not held:
            return await _reject(ctx, stored, order, evaluation)
        assert reading is not None  # an acceptable (or holdable) evaluation had credit figures
        if stored is None:
            # Both before any hold: a crash after them leaves the outbox entry that lets the
            # sweeper find the pending order and give back whatever it held.
            _, created = await asyncio.gather(
                add_to_outbox(ctx.tables, order_id, now), create_order(ctx.tables, order)
            )
            stored = created
        try:
            await take_holds(
                ctx.tables,
                order,
                reading.figures,
                ctx.settings.credit_policy,
                with_expected=ctx.settings.sells_expected(order.channel),
                for_approval=held,
            )
        except (CreditRefused, InsufficientStock) as lost_race:
            _log.info(
                "order %s lost a race for its holds (%s); evaluating again", order_id, lost_race
            )
            continue
        if held:
            waiting = await _hold(ctx, stored, order, evaluation)
            return _accepted(accepted_answer(waiting, credit_stale=reading.stale))
        accepted = await _accept(ctx, stored, order)
        await _enqueue(ctx, accepted)
        prices_as_of = ctx.price_book.freshness.data_as_of
        return _accepted(
            accepted_answer(accepted, credit_stale=reading.stale, prices_as_of=prices_as_of)
        )
    if stored is not None:
        await abandon_intake(ctx, stored.order, "lost every round against concurrent orders")
    raise _undecided("too many concurrent orders for the same stock or credit", 1)


async def _reject(
    ctx: OrderContext, stored: StoredOrder | None, order: Order, evaluation: Evaluation
) -> IntakeAccepted | IntakeRejected:
    """Store the rejection (holds of earlier rounds were already given back) and answer 422."""
    now = order.updated_at
    if stored is None:
        with contextlib.suppress(EntityExists):  # a resumed intake stored it already
            await create_order(ctx.tables, reject(order, evaluation.violations, now))
    else:

        def rejected(current: Order) -> Order:
            fresh = replace(current, lines=order.lines, total_amount=order.total_amount)
            return reject(fresh, evaluation.violations, now)

        with contextlib.suppress(InvalidTransition):  # abandoned meanwhile: rejected anyway
            await change_order(ctx.tables, order.order_id, rejected)
        await remove_from_outbox(ctx.tables, order.order_id)
    await order_outcomes.record_rejected_at_intake(ctx.tables, order, evaluation.violations)
    return _rejected(rejection_problem(order.order_id, evaluation.violations))


async def _accept(
    ctx: OrderContext, stored: StoredOrder, order: Order, moved: Order | None = None
) -> Order:
    accepted = moved or accept(order, ctx.clock())
    try:
        return (await save_order(ctx.tables, stored, accepted)).order
    except EntityChanged:
        # Someone moved the pending order (the sweeper thought the intake had died).
        current = await change_order(ctx.tables, order.order_id, lambda o: o)
        if current is not None and current.order.status is accepted.status:
            return current.order
        await release_holds(
            ctx.tables,
            order,
            booked=False,
            now=ctx.clock(),
            remember_for=ctx.settings.released_credit_memory,
        )
        raise _undecided("the order was abandoned while it was being accepted", 1) from None


async def _hold(
    ctx: OrderContext, stored: StoredOrder, order: Order, evaluation: Evaluation
) -> Order:
    """Park the order for a person's decision, its holds taken; listed before it turns
    ``pending-approval`` so no waiting order is ever missing from the list."""
    now = ctx.clock()
    until = now + ctx.settings.approval_hold_for
    await add_waiting(ctx.tables, order.order_id, until)
    waiting = await _accept(
        ctx, stored, order, hold_for_approval(order, evaluation.violations, until, now)
    )
    await remove_from_outbox(ctx.tables, order.order_id)
    try:
        await publish_status(ctx.bus, waiting, now)
    except Exception:  # the answer and GET /api/orders say it too; the order stands
        _log.warning("order %s held; its status event was not published", order.order_id)
    return waiting


async def _enqueue(ctx: OrderContext, order: Order) -> None:
    """Send the first booking message and clear the outbox entry.

    The order is accepted already: whatever fails here must not turn the answer into an
    error (a retry with the same key would then find the key dropped and order twice), so a
    failure only leaves the outbox entry for the sweeper.
    """
    try:
        await send_booking_message(
            ctx.bus, order.order_id, order.generation, order.attempt, order.correlation_id
        )
        await remove_from_outbox(ctx.tables, order.order_id)
    except Exception:  # the sweeper finishes the job; the shopper's order stands
        _log.warning(
            "order %s accepted, not enqueued; the outbox will send it",
            order.order_id,
            exc_info=True,
        )


async def abandon_intake(ctx: OrderContext, order: Order, reason: str) -> Order | None:
    """Reject a pending order whose intake never finished and give back all it holds.

    Safe to repeat and to race with a late intake: the transition from ``pending`` is
    ETag-conditional, and releasing holds that are already gone changes nothing.
    """
    now = ctx.clock()
    try:
        stored = await change_order(ctx.tables, order.order_id, lambda o: abandon(o, reason, now))
    except InvalidTransition:
        return None
    if stored is None:
        return None
    await release_holds(
        ctx.tables,
        stored.order,
        booked=False,
        now=now,
        remember_for=ctx.settings.released_credit_memory,
    )
    done = await change_order(ctx.tables, order.order_id, lambda o: mark_holds_released(o, now))
    return done.order if done else None
