"""Business Central webhooks: notification endpoint, processor, subscription timer."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.http import HttpProblem, http_endpoint, model_response, read_body, validate
from functions.messages import Received, parse_message, settles_message
from functions.openapi import TEXT, Reply, documented, problem
from functions.timer_runs import recorded_timer
from functions.tracing import traced_message
from shared.adapters.bus import BusSendFailed
from shared.adapters.stores import erp_subscriptions as erp_subscription_registry
from shared.bootstrap import get_services, lifecycle_deps, policy_schedule
from shared.config.settings import get_settings
from shared.observability import metrics
from shared.services.inventory import subscriptions as inventory_subscriptions
from shared.services.inventory import webhooks as inventory_webhooks
from shared.services.orders import lifecycle

bp = func.Blueprint()
_log = logging.getLogger(__name__)
_MAX_TOKEN_LENGTH = inventory_webhooks.MAX_VALIDATION_TOKEN_LENGTH
# Up to 1,000 notifications of a few hundred bytes each: far above the storefront body limit.
_MAX_NOTIFICATION_BYTES = 4 * 1024 * 1024


def _notifications(req: func.HttpRequest) -> inventory_webhooks.ErpNotificationBatch:
    data = read_body(req, _MAX_NOTIFICATION_BYTES)
    entries = data.get("value") if isinstance(data, dict) else None
    if isinstance(entries, list):
        naive = sum(1 for entry in entries if inventory_webhooks.has_naive_time(entry))
        if naive:
            # Read as UTC rather than refused: a 4xx would make BC delete the subscription.
            _log.warning("%s ERP notifications carry a time without an offset", naive)
            metrics.erp_notifications("naive-time", naive)
    return validate(data, inventory_webhooks.ErpNotificationBatch)


async def _is_ours(subscription_id: str) -> bool:
    return await erp_subscription_registry.is_ours(get_services().tables, subscription_id)


@bp.function_name("erp_notifications")
@bp.route(route="erp/notifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@documented(
    "Business Central webhook: the validation handshake, or change notifications",
    tag="erp",
    description=(
        "Handshake: Business Central POSTs with `?validationToken=...` and no body; the token "
        'is echoed as text/plain within 5 seconds. Notifications: `{"value": [...]}`, each '
        "carrying the subscription's clientState; they are queued and answered 202 at once. "
        "Business Central retries on 408, 429 and 5xx only and deletes the subscription on any "
        "other 4xx, so a retryable failure is a 503, and a notification for a subscription this "
        "environment does not hold (another environment's secret) is answered 202 and dropped."
    ),
    params=inventory_webhooks.ValidationHandshake,
    body=inventory_webhooks.ErpNotificationBatch,
    body_required=False,
    body_bytes=_MAX_NOTIFICATION_BYTES,
    json_only=False,
    replies={
        200: Reply(
            "The validationToken, echoed.",
            media_type=TEXT,
            schema={"type": "string", "maxLength": inventory_webhooks.MAX_VALIDATION_TOKEN_LENGTH},
        ),
        202: Reply("The notifications were queued.", inventory_webhooks.NotificationsQueued),
        400: problem("A malformed validation token, or a body that is not JSON."),
        401: problem("A notification for one of our subscriptions has a wrong clientState."),
        422: problem("The body is not a notification batch."),
        503: problem("The notifications could not be queued; retry.", **{"Retry-After": "s"}),
    },
)
@http_endpoint
async def receive(req: func.HttpRequest) -> func.HttpResponse:
    """Answer the validation handshake, or queue the notifications and answer at once.

    Anonymous at the Functions level (Business Central cannot send a function key); every
    notification must carry our ``clientState``. Business Central retries only on 408, 429
    and 5xx and drops the subscription on any other 4xx, so a failure we want retried is a
    503, and only input that cannot be ours gets a 4xx.
    """
    token = req.params.get("validationToken")
    if token is not None:
        if not token or len(token) > _MAX_TOKEN_LENGTH or not token.isprintable():
            raise HttpProblem(400, "Bad validation token", "the token is empty or malformed")
        return func.HttpResponse(token, status_code=200, mimetype="text/plain")
    batch = _notifications(req)
    settings = get_settings()
    try:
        sorted_ = await inventory_webhooks.sort_notifications(
            batch, settings.erp_webhook_client_state.get_secret_value(), _is_ours
        )
    except inventory_webhooks.ClientStateMismatch as error:
        _log.warning("refused ERP notification: %s", error)
        metrics.erp_notifications("refused", len(batch.value))
        raise HttpProblem(401, "Unauthorized", "clientState does not match") from None
    except Exception as error:  # the registry could not be read: BC retries a 503
        _log.warning("ERP notifications not checked, asking for a retry: %s", error)
        raise HttpProblem(
            503, "Try again", "notifications could not be checked", headers={"Retry-After": "5"}
        ) from None
    if sorted_.foreign:
        _log.warning(
            "dropped %s ERP notifications for subscriptions this environment does not hold (%s)",
            len(sorted_.foreign),
            ", ".join(sorted({n.subscription_id for n in sorted_.foreign})),
        )
        metrics.erp_notifications("foreign", len(sorted_.foreign))
    if sorted_.unregistered:
        _log.info("%s ERP notifications for an unregistered subscription", sorted_.unregistered)
        metrics.erp_notifications("unregistered", sorted_.unregistered)
    try:
        queued = await inventory_webhooks.enqueue_notifications(
            get_services().bus, sorted_.accepted
        )
        metrics.erp_notifications("queued", queued)
    except BusSendFailed as error:
        _log.warning("ERP notifications not queued, asking for a retry: %s", error)
        raise HttpProblem(
            503, "Try again", "notifications could not be queued", headers={"Retry-After": "5"}
        ) from None
    return model_response(inventory_webhooks.NotificationsQueued, {"queued": queued}, status=202)


@bp.function_name("erp_notification_process")
@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name=inventory_webhooks.NOTIFICATIONS_QUEUE,
    connection="ServiceBusConnection",
    auto_complete_messages=False,
)
@settles_message(inventory_webhooks.NOTIFICATIONS_QUEUE)
@traced_message(inventory_webhooks.NOTIFICATIONS_QUEUE)
async def process(msg: Received) -> None:
    """Read the changed records back and route them (stock -> snapshots, prices -> delta).

    Safe to run twice: the read-back is absolute and the snapshot it emits is applied as a
    correction that never overwrites newer events; a price delta run is idempotent.
    """
    notification = parse_message(msg, inventory_webhooks.ErpNotification)
    services = get_services()
    ref = inventory_webhooks.parse_resource(notification.resource)
    if ref is not None and ref.entity_set in lifecycle.LIFECYCLE_SETS:
        # Sales documents: the order lifecycle reads them back and publishes order-status.
        await lifecycle.on_notification(
            lifecycle_deps(services),
            ref.entity_set,
            ref.key,
            notification.change_type,
            ref.modified_after or notification.last_modified_date_time,
        )
        return
    await inventory_webhooks.process_notification(
        services.erp, services.bus, services.tables, notification
    )


@bp.function_name("erp_subscriptions")
@bp.timer_trigger(
    arg_name="timer", schedule=policy_schedule("erp_subscriptions"), run_on_startup=False
)
@recorded_timer("erp_subscriptions")
async def maintain(timer: func.TimerRequest) -> None:
    settings = get_settings()
    services = get_services()
    # LeaseHeld propagates to recorded_timer, which records the run as skipped.
    await inventory_subscriptions.maintain_subscriptions(
        services.erp,
        services.tables,
        settings.erp_webhook_url,
        settings.erp_webhook_client_state.get_secret_value(),
        settings.erp_webhook_resource_list,
        # A set BC refused is reported as a failed run, after the others were subscribed.
        raise_on_refusal=True,
    )
