"""The ``orders`` queue handler: book an accepted order in Business Central exactly once.

Safe to run twice, for any copy of any message, at any time:
- what to do is decided from the stored order alone (`decide`): a booked order is only
  settled, a stale or duplicate message is skipped;
- only one attempt talks to the ERP at a time: it first claims the order with an
  ETag-conditional write (a second instance gets 412, re-reads, sees the claim and defers);
- the ERP is the final check: ``create_sales_order_once`` looks the order up by its
  external document number (our order id) before creating whenever an earlier claim exists
  (``may_have_reached_erp``: the first attempt ever saves that request), and again after an
  ambiguous failure, so a crash after the create, a lost response or a timeout never makes
  a second ERP order;
- Business Central queues requests beyond 5 at once per principal and may commit a create
  minutes after we stopped waiting, and it does not enforce a unique external document
  number: so no new create is sent for an order until BC's own limit for the previous one
  (``ErpConfig.answer_limit_seconds``) has passed. The claim taken before talking to the
  ERP lasts at least that long (a crashed attempt's create is covered), and a retry after
  an ambiguous create is scheduled after it (its first step is the lookup);
- the post-booking work (hand the holds over, publish ``order-status``) is idempotent
  and marked done last, so a crash in the middle is finished by the next delivery.

Passing failures (ERP down, throttled, no answer) schedule a copy of the message for later
(backoff with jitter) and complete the original; after the retry budget the order is
``failed`` with the reason and the message is dead-lettered. The ERP refusing the order (a
business rule) fails it at once. Failed orders keep their stock and credit holds, so a
replay after the cause is fixed books exactly what the shopper was promised; an operator
cancel gives them back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.adapters.bus import BusSendFailed
from shared.adapters.erp.booking import CreateAttempt
from shared.adapters.erp.breaker import BreakerState
from shared.adapters.erp.errors import (
    ErpAmbiguousResult,
    ErpError,
    ErpRejected,
    ErpThrottled,
)
from shared.adapters.stores import order_outcomes
from shared.adapters.stores.orders import StoredOrder, change_order, load_order, save_order
from shared.adapters.tables import EntityChanged, EntityMissing
from shared.domain.orders import (
    BookingClaim,
    Disposition,
    InvalidTransition,
    Order,
    claim_booking,
    decide,
    mark_settled,
    record_booked,
    record_failed,
    release_claim,
    schedule_retry,
)
from shared.observability import metrics
from shared.observability.spans import internal_span
from shared.services.errors import NotFound
from shared.services.orders.context import OrderContext
from shared.services.orders.erp import sales_order_payload
from shared.services.orders.holds import release_holds
from shared.services.orders.lifecycle import track_booked
from shared.services.orders.messages import (
    OrderMessage,
    booking_message_id,
    publish_status,
    send_booking_message,
)

_log = logging.getLogger(__name__)
_LOOK_AGAIN_MARGIN = timedelta(seconds=1)
_MAX_CLAIM_RACES = 5


class UnknownOrder(NotFound):
    """No order with that id was ever stored (for a message: no retry can help)."""

    def __init__(self, order_id: str) -> None:
        super().__init__("Not found", f"no order {order_id}")
        self.order_id = order_id


class BookingFailed(Exception):
    """The order is ``failed``; dead-letter this message with `reason` and `description`."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason
        self.description = description


class Outcome(StrEnum):
    BOOKED = "booked"
    SETTLED = "settled"
    DEFERRED = "deferred"
    RETRY_SCHEDULED = "retry-scheduled"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class BookingReport:
    order_id: str
    outcome: Outcome
    detail: str
    erp_order_number: str | None = None


async def handle_booking_message(
    ctx: OrderContext, message: OrderMessage, delivery_count: int
) -> BookingReport:
    """Process one delivery; raises `UnknownOrder` / `BookingFailed` (dead-letter) or a
    transient error (abandon: the message comes back)."""
    with internal_span("book order", _span_attributes(message, delivery_count)) as span:
        try:
            report = await _handle(ctx, message, delivery_count)
        except (UnknownOrder, BookingFailed):
            raise
        except Exception as error:
            if delivery_count < ctx.settings.max_deliveries - 1:
                raise
            # The broker would dead-letter it next without a word: fail the order first, with
            # the reason, so it shows as failed and can be replayed.
            reason = f"booking kept failing: {_describe(error)}"
            await fail(ctx, message.order_id, reason)
            raise BookingFailed("BookingKeptFailing", reason) from error
        span.set_attribute("app.booking.outcome", str(report.outcome))
        return report


def _span_attributes(message: OrderMessage, delivery_count: int) -> dict[str, str | int]:
    return {
        "app.order_id": message.order_id,
        "app.booking.generation": message.generation,
        "app.booking.attempt": message.attempt,
        "messaging.servicebus.message.delivery_count": delivery_count,
    }


async def _handle(ctx: OrderContext, message: OrderMessage, delivery_count: int) -> BookingReport:
    for _ in range(_MAX_CLAIM_RACES):
        stored = await load_order(ctx.tables, message.order_id)
        if stored is None:
            raise UnknownOrder(message.order_id)
        now = ctx.clock()
        decision = decide(stored.order, message.generation, message.attempt, now)
        if decision.disposition is Disposition.SKIP:
            return BookingReport(message.order_id, Outcome.SKIPPED, decision.reason)
        if decision.disposition is Disposition.DEAD_LETTER:
            raise BookingFailed("BookingFailed", decision.reason)
        if decision.disposition is Disposition.SETTLE:
            await settle(ctx, stored.order)
            return BookingReport(message.order_id, Outcome.SETTLED, decision.reason)
        if decision.disposition is Disposition.DEFER:
            assert decision.defer_until is not None and stored.order.claim is not None
            await _look_again_later(ctx, message, stored.order, decision.defer_until)
            return BookingReport(message.order_id, Outcome.DEFERRED, decision.reason)
        token = uuid.uuid4().hex
        claim = BookingClaim(token, now + _claim_duration(ctx))
        claimed = claim_booking(
            stored.order,
            message.generation,
            message.attempt,
            claim,
            now,
            correlation_id=stored.order.correlation_id,
            delivery_count=delivery_count,
        )
        try:
            stored = await save_order(ctx.tables, stored, claimed)
        except (EntityChanged, EntityMissing):
            continue  # another instance moved the order first: decide again
        return await _book(ctx, stored, message, delivery_count, token)
    raise RuntimeError(f"order {message.order_id}: kept losing the claim race")


def may_have_reached_erp(order: Order) -> bool:
    """Could an earlier attempt have sent this order to the ERP? Asked of the order's own
    record after this attempt's claim was saved: ``claims`` counts every claim ever taken
    (saved before any ERP call, never given back), so 1 means this attempt is the first that
    was allowed to talk to the ERP, and a create without a look-up first cannot duplicate.
    Any earlier claim (a crash, a lost answer, a retry, a replay) means look first."""
    return order.claims != 1


def _claim_duration(ctx: OrderContext) -> timedelta:
    """Long enough to cover a create sent at the end of the attempt until BC has surely
    ended it: if this attempt dies, no other may create before a lookup can be trusted."""
    answer_limit = timedelta(seconds=ctx.erp.config.answer_limit_seconds)
    return max(ctx.settings.claim_duration, ctx.settings.booking_timeout + answer_limit)


async def _look_again_later(
    ctx: OrderContext, message: OrderMessage, order: Order, until: datetime
) -> None:
    """Another attempt holds the claim; if it died, its claim expires: check back then."""
    assert order.claim is not None
    base = booking_message_id(message.order_id, message.generation, message.attempt)
    await send_booking_message(
        ctx.bus,
        message.order_id,
        message.generation,
        message.attempt,
        order.correlation_id,
        scheduled_at=until + _LOOK_AGAIN_MARGIN,
        # One look-again per claim, however many copies defer to it.
        message_id=f"{base}~{order.claim.token[:12]}",
    )


async def _book(
    ctx: OrderContext,
    stored: StoredOrder,
    message: OrderMessage,
    delivery_count: int,
    token: str,
) -> BookingReport:
    order = stored.order
    attempt = message.attempt
    create = CreateAttempt()
    try:
        payload = await sales_order_payload(order, ctx.erp, ctx.locations)
        result = await asyncio.wait_for(
            ctx.erp.create_sales_order_once(
                payload,
                correlation_id=order.correlation_id,
                attempt=create,
                # Without the look-up, a create the ERP fails to answer is ambiguous and the
                # retry must wait out BC's answer limit; so skip it only while the ERP answers.
                look_first=may_have_reached_erp(order) or not ctx.erp.answering(),
            ),
            ctx.settings.booking_timeout.total_seconds(),
        )
    except ErpRejected as refused:
        reason = f"the ERP refused the order: {_erp_message(refused)}"
        await fail(ctx, order.order_id, reason)
        raise BookingFailed("ErpRejected", reason) from refused
    except (ErpError, TimeoutError) as error:
        return await _retry_later(
            ctx, order, token, attempt, delivery_count, error, _decided_by(ctx, error, create)
        )
    except Exception:
        # A bug or a storage failure: give the claim back so the redelivery can try at once.
        await change_order(
            ctx.tables, order.order_id, lambda o: release_claim(o, token, ctx.clock())
        )
        raise
    erp_order = result.order
    booked = await change_order(
        ctx.tables,
        order.order_id,
        lambda o: record_booked(
            o,
            erp_order.number,
            str(erp_order.id),
            erp_order.total_amount_excluding_tax,
            f"({result.outcome})",
            ctx.clock(),
        ),
    )
    assert booked is not None
    metrics.order_booked(
        booked.order.total_amount, booked.order.erp_total_amount, booked.order.currency
    )
    await settle(ctx, booked.order)
    return BookingReport(
        order.order_id, Outcome.BOOKED, str(result.outcome), erp_order_number=erp_order.number
    )


def _decided_by(ctx: OrderContext, error: BaseException, create: CreateAttempt) -> datetime | None:
    """When BC has surely ended a create whose outcome we do not know; None if none was sent
    or its outcome is known."""
    if isinstance(error, ErpAmbiguousResult):
        return error.decided_by  # None when BC answered (its lookups were conclusive)
    if create.sent_at is not None and isinstance(error, TimeoutError):
        # Our own booking timeout cut the create (or the lookups after it) short.
        return create.sent_at + timedelta(seconds=ctx.erp.config.answer_limit_seconds)
    return None


async def _retry_later(
    ctx: OrderContext,
    order: Order,
    token: str,
    attempt: int,
    delivery_count: int,
    error: BaseException,
    decided_by: datetime | None = None,
) -> BookingReport:
    reason = _describe(error, decided_by)
    policy = ctx.settings.retry
    # Give up one delivery before Service Bus would dead-letter the message without a reason.
    if policy.exhausted(attempt) or delivery_count >= ctx.settings.max_deliveries - 1:
        failure = f"booking gave up after attempt {attempt}: {reason}"
        await fail(ctx, order.order_id, failure)
        raise BookingFailed("BookingRetriesExhausted", failure) from error
    at_least = None
    now = ctx.clock()
    if isinstance(error, ErpThrottled) and error.retry_after_seconds:
        at_least = timedelta(seconds=error.retry_after_seconds)
    elif ctx.erp.counters().breaker_state is BreakerState.OPEN:
        # The breaker fails every call fast until it probes again; retrying sooner would
        # only spend the retry budget without asking the ERP.
        at_least = timedelta(seconds=ctx.erp.config.breaker_open_seconds)
    retry_at = now + policy.delay(attempt, ctx.random(), at_least)
    if decided_by is not None:
        # The create may still be waiting in BC's queue: the next attempt (whose first step
        # is the lookup) must not run before BC has surely ended it, whatever the backoff cap.
        retry_at = max(retry_at, decided_by + _LOOK_AGAIN_MARGIN)
    try:
        # The next attempt is sent before it is recorded: a recorded attempt with no message
        # would leave the order waiting forever, a message with no record is merely deferred.
        await send_booking_message(
            ctx.bus,
            order.order_id,
            order.generation,
            attempt + 1,
            order.correlation_id,
            scheduled_at=retry_at,
        )
    except BusSendFailed:
        await change_order(ctx.tables, order.order_id, lambda o: release_claim(o, token, now))
        raise
    await change_order(
        ctx.tables,
        order.order_id,
        lambda o: schedule_retry(o, token, attempt + 1, retry_at, reason, now),
    )
    _log.info(
        "order %s: attempt %s failed (%s); retry at %s", order.order_id, attempt, reason, retry_at
    )
    return BookingReport(order.order_id, Outcome.RETRY_SCHEDULED, reason)


async def fail(ctx: OrderContext, order_id: str, reason: str) -> None:
    """Mark the order failed (holds kept for a replay) and tell the storefronts."""
    now = ctx.clock()
    try:
        stored = await change_order(ctx.tables, order_id, lambda o: record_failed(o, reason, now))
    except InvalidTransition:
        return  # booked or rejected meanwhile: nothing to fail
    if stored is None:
        return
    await order_outcomes.record_failed_at_booking(ctx.tables, stored.order)
    try:
        await publish_status(ctx.bus, stored.order, now)
    except BusSendFailed:
        _log.warning("order %s failed; its status event could not be published", order_id)


async def settle(ctx: OrderContext, order: Order) -> None:
    """After booking: hand the stock holds over to booked demand (counted until an ERP read
    shows the order) and release the credit hold, publish ``order-status``, then mark the
    order settled. Safe to repeat."""
    now = ctx.clock()
    await order_outcomes.record_booked(ctx.tables, order)
    await release_holds(
        ctx.tables,
        order,
        booked=True,
        now=now,
        remember_for=ctx.settings.released_credit_memory,
    )
    await publish_status(ctx.bus, order, now)
    # From here on the ERP's changes to the order are followed (webhooks, poll, reconcile).
    await track_booked(ctx.tables, order, now)
    await change_order(ctx.tables, order.order_id, lambda o: mark_settled(o, now))


def _erp_message(error: ErpError) -> str:
    if isinstance(error, ErpRejected) and error.erp_message:
        return f"{error.erp_message} ({error.code})" if error.code else error.erp_message
    return error.message


# Written into the order's history when a create got no answer; a replay reads it back.
PENDING_CREATE_MARK = "the ERP may still commit the create until "


def pending_create_note(decided_by: datetime) -> str:
    return f"{PENDING_CREATE_MARK}{decided_by.isoformat()}"


def _describe(error: BaseException, decided_by: datetime | None = None) -> str:
    if isinstance(error, TimeoutError):
        text = "the ERP did not answer in time"
    elif isinstance(error, ErpError):
        text = f"{type(error).__name__}: {error.message}"
    else:
        text = f"{type(error).__name__}: {error}"
    return f"{text} ({pending_create_note(decided_by)})" if decided_by else text
