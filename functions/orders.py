"""Orders: intake and status (storefront), replay, cancel and approvals (admin), booking,
sweeper."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.http import (
    MAX_BODY_BYTES,
    HttpProblem,
    http_endpoint,
    model_response,
    parse_body,
    read_body,
    validate,
)
from functions.messages import (
    Received,
    Rejected,
    correlation_id_of,
    delivery_count_of,
    parse_message,
    settles_message,
)
from functions.openapi import Reply, documented, problem
from functions.timer_runs import recorded_timer
from functions.tracing import traced_message
from shared.adapters.stores import order_lifecycle
from shared.bootstrap import get_services, order_context, policy_schedule
from shared.domain.orders import OrderStatus, is_order_id
from shared.observability.correlation import correlation_scope, get_correlation_id
from shared.services.orders import admin as orders_admin
from shared.services.orders import approvals as orders_approvals
from shared.services.orders import booking as orders_booking
from shared.services.orders import outbox as orders_outbox
from shared.services.orders.api import (
    ApprovalDecisionRequest,
    ApprovalsAnswer,
    IdempotencyKeyHeader,
    OrderAccepted,
    OrderAdminAnswer,
    OrderIdPath,
    OrderRequest,
    OrderView,
    order_view,
    waiting_order,
)
from shared.services.orders.intake import (
    IntakeAccepted,
    IntakeOutcome,
    IntakeReplayed,
    submit_order,
)
from shared.services.orders.lifecycle_view import lifecycle_fields
from shared.services.orders.messages import ORDERS_QUEUE, OrderMessage
from shared.services.orders.queries import visible_order

bp = func.Blueprint()
_log = logging.getLogger(__name__)
IDEMPOTENCY_HEADER = "Idempotency-Key"


def _order_id(req: func.HttpRequest) -> str:
    order_id = str(req.route_params.get("orderId") or "")
    if not is_order_id(order_id):
        raise HttpProblem(404, "Not found", f"no order {order_id}")
    return order_id


@bp.function_name("orders_submit")
@bp.route(route="orders", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@documented(
    "Submit an order the ERP is sure to accept",
    tag="orders",
    description=(
        "Every ERP rule is checked now (customer, items, prices, credit, stock after "
        "reservations); accepted orders are booked in the ERP within seconds. The same "
        "Idempotency-Key with the same body returns the first answer."
    ),
    headers=IdempotencyKeyHeader,
    body=OrderRequest,
    replies={
        202: Reply(
            "Accepted: stock and credit are held until the ERP books it.",
            OrderAccepted,
            headers={"Idempotent-Replayed": "true when this is the key's first answer again"},
        ),
        400: problem("No Idempotency-Key header, or a body that is not JSON."),
        409: problem("The key was used with another body, or its first request is running."),
        422: problem(
            "Invalid request, or rejected: violations list every broken rule; nothing held.",
            **{"Idempotent-Replayed": "true when this is the key's first answer again"},
        ),
        503: problem("The order cannot be decided now (ERP down).", **{"Retry-After": "s"}),
    },
)
@http_endpoint
async def submit(req: func.HttpRequest) -> func.HttpResponse:
    key = req.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        raise HttpProblem(
            400,
            "Idempotency-Key required",
            "send an Idempotency-Key header so a retried submission cannot order twice",
        )
    header = validate({"Idempotency-Key": key}, IdempotencyKeyHeader)
    request = parse_body(req, OrderRequest)
    raw = read_body(req, MAX_BODY_BYTES)  # parse_body proved it reads within the limits
    answer = await submit_order(
        order_context(get_services()), header.key, raw, request, get_correlation_id()
    )
    return render_intake(answer)


def render_intake(outcome: IntakeOutcome) -> func.HttpResponse:
    """The HTTP form of an intake outcome: 202 accepted, 422 rejected; a replay is the first
    answer's bytes again, marked ``Idempotent-Replayed``."""
    replayed = isinstance(outcome, IntakeReplayed)
    first = outcome.first if isinstance(outcome, IntakeReplayed) else outcome
    if isinstance(first, IntakeAccepted):
        status, mimetype = 202, "application/json"
    else:
        status, mimetype = 422, "application/problem+json"
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return func.HttpResponse(first.body, status_code=status, mimetype=mimetype, headers=headers)


@bp.function_name("orders_get")
@bp.route(route="orders/{orderId}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@documented(
    "An order's status and history",
    tag="orders",
    params=OrderIdPath,
    replies={200: Reply("The order.", OrderView), 404: problem("No such order.")},
)
@http_endpoint
async def get_order(req: func.HttpRequest) -> func.HttpResponse:
    order_id = _order_id(req)
    tables = get_services().tables
    order = await visible_order(tables, order_id)
    body = order_view(order)
    if order.status is OrderStatus.BOOKED:
        # What the ERP did with it since (released, shipped, invoiced, changed, cancelled).
        record = await order_lifecycle.load(tables, order_id)
        body.update(lifecycle_fields(order, record))
    return model_response(OrderView, body)


def _admin_answer(result: orders_admin.AdminResult) -> func.HttpResponse:
    return model_response(
        OrderAdminAnswer,
        {
            "orderId": result.order.order_id,
            "status": str(result.order.status),
            "changed": result.changed,
            "detail": result.detail,
        },
        status=202 if result.changed else 200,
    )


@bp.function_name("orders_replay")
@bp.route(route="ops/orders/{orderId}/replay", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Send a failed or stuck order to booking again",
    tag="operations",
    params=OrderIdPath,
    replies={
        200: Reply("Nothing to do (already booked or queued).", OrderAdminAnswer),
        202: Reply("Sent to booking again.", OrderAdminAnswer),
        404: problem("No such order."),
        409: problem("The order's status does not allow a replay."),
    },
)
@http_endpoint
async def replay(req: func.HttpRequest) -> func.HttpResponse:
    order_id = _order_id(req)
    result = await orders_admin.replay_order(
        order_context(get_services()), order_id, get_correlation_id()
    )
    return _admin_answer(result)


@bp.function_name("orders_cancel")
@bp.route(route="ops/orders/{orderId}/cancel", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Cancel an order the ERP has not booked, releasing its holds",
    tag="operations",
    params=OrderIdPath,
    replies={
        200: Reply("Nothing to do (already cancelled).", OrderAdminAnswer),
        202: Reply("Cancelled; its holds were released.", OrderAdminAnswer),
        404: problem("No such order."),
        409: problem("The order's status does not allow a cancel."),
    },
)
@http_endpoint
async def cancel(req: func.HttpRequest) -> func.HttpResponse:
    order_id = _order_id(req)
    result = await orders_admin.cancel_order(
        order_context(get_services()),
        order_id,
        "cancelled by an operator",
        get_correlation_id(),
    )
    return _admin_answer(result)


@bp.function_name("orders_approvals")
@bp.route(route="ops/approvals", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Orders waiting for approval",
    tag="operations",
    description=(
        "Orders the sync policy held for a person (orders.approvals): the rules each breaks "
        "with the figures behind them, and until when its stock and credit are held."
    ),
    replies={200: Reply("Every waiting order, soonest expiry first.", ApprovalsAnswer)},
)
@http_endpoint
async def approvals(req: func.HttpRequest) -> func.HttpResponse:
    waiting = await orders_approvals.list_waiting(order_context(get_services()))
    return model_response(ApprovalsAnswer, {"items": [waiting_order(o) for o in waiting]})


@bp.function_name("orders_approve")
@bp.route(route="ops/orders/{orderId}/approve", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Approve an order held for approval; it is booked exactly as accepted",
    tag="operations",
    params=OrderIdPath,
    body=ApprovalDecisionRequest,
    replies={
        200: Reply("Nothing to do (already approved).", OrderAdminAnswer),
        202: Reply("Approved and queued for booking.", OrderAdminAnswer),
        400: problem("A body that is not JSON."),
        422: problem("No approver or no reason (violations name the field)."),
        404: problem("No such order."),
        409: problem(
            "Decided otherwise or expired, or it can no longer be booked as accepted "
            "(a price or the customer's block changed)."
        ),
        503: problem("The ERP cannot confirm the customer now.", **{"Retry-After": "s"}),
    },
)
@http_endpoint
async def approve(req: func.HttpRequest) -> func.HttpResponse:
    order_id = _order_id(req)
    decision = parse_body(req, ApprovalDecisionRequest)
    result = await orders_approvals.approve_order(
        order_context(get_services()),
        order_id,
        decision.approver,
        decision.reason,
        get_correlation_id(),
    )
    return _admin_answer(result)


@bp.function_name("orders_reject")
@bp.route(route="ops/orders/{orderId}/reject", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Reject an order held for approval, releasing every hold",
    tag="operations",
    params=OrderIdPath,
    body=ApprovalDecisionRequest,
    replies={
        200: Reply("Nothing to do (already rejected).", OrderAdminAnswer),
        202: Reply("Rejected; its holds were released and its status published.", OrderAdminAnswer),
        400: problem("A body that is not JSON."),
        422: problem("No approver or no reason (violations name the field)."),
        404: problem("No such order."),
        409: problem("Approved meanwhile (it is booking) or expired."),
    },
)
@http_endpoint
async def reject(req: func.HttpRequest) -> func.HttpResponse:
    order_id = _order_id(req)
    decision = parse_body(req, ApprovalDecisionRequest)
    result = await orders_approvals.reject_order(
        order_context(get_services()),
        order_id,
        decision.approver,
        decision.reason,
        get_correlation_id(),
    )
    return _admin_answer(result)


@bp.function_name("orders_book")
@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name=ORDERS_QUEUE,
    connection="ServiceBusConnection",
    auto_complete_messages=False,
)
@settles_message(ORDERS_QUEUE)
@traced_message(ORDERS_QUEUE)
async def book(msg: Received) -> None:
    """Book one accepted order in the ERP (exactly once: see orders_booking)."""
    message = parse_message(msg, OrderMessage)
    with correlation_scope(correlation_id_of(msg) or message.order_id):
        try:
            report = await orders_booking.handle_booking_message(
                order_context(get_services()), message, delivery_count_of(msg)
            )
        except orders_booking.UnknownOrder:
            raise Rejected("UnknownOrder", f"no order {message.order_id}") from None
        except orders_booking.BookingFailed as failed:
            raise Rejected(failed.reason, failed.description) from None
    _log.info("order %s: %s (%s)", report.order_id, report.outcome, report.detail)


@bp.function_name("orders_sweep")
@bp.timer_trigger(arg_name="timer", schedule=policy_schedule("orders_sweep"), run_on_startup=False)
@recorded_timer("orders_sweep")
async def sweep(timer: func.TimerRequest) -> None:
    # LeaseHeld propagates to recorded_timer, which records the run as skipped.
    report = await orders_outbox.sweep(order_context(get_services()))
    _log.info("order sweep: %s", report)


@bp.function_name("orders_purge_keys")
@bp.timer_trigger(
    arg_name="timer", schedule=policy_schedule("orders_purge_keys"), run_on_startup=False
)
@recorded_timer("orders_purge_keys")
async def purge_keys(timer: func.TimerRequest) -> None:
    purged = await orders_outbox.purge_idempotency_keys(order_context(get_services()))
    _log.info("purged %s expired Idempotency-Keys", purged)
