"""Stock: inventory events (batches), availability, the gap sweep, reconciliation."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import azure.functions as func

from functions.http import http_endpoint, model_response, validate
from functions.messages import (
    Received,
    Rejection,
    body_of,
    message_id_of,
    rejections_by_id,
    settles_batch,
)
from functions.openapi import Reply, documented, problem
from functions.timer_runs import recorded_timer
from functions.tracing import traced_batch
from shared.bootstrap import get_policy, get_services, policy_schedule
from shared.config.settings import get_settings
from shared.services.inventory import availability as inventory_availability
from shared.services.inventory import events as inventory_events
from shared.services.inventory import reconciliation as inventory_reconciliation
from shared.services.inventory.messages import INVENTORY_QUEUE
from shared.services.inventory.policy import StockPolicy

bp = func.Blueprint()
_log = logging.getLogger(__name__)


def _policy() -> StockPolicy:
    return get_services().stock_policy


async def apply_batch(msgs: list[Received]) -> Sequence[Rejection]:
    """Apply a batch of inventory events and ERP snapshots to the stock projection.

    Returns the messages no retry can fix (unparseable, unknown kind, negative count), each
    with its reason: they are dead-lettered at once and the rest of the batch is completed.
    Safe to run twice: the position row is the dedup record written atomically with the
    state, so a redelivered batch folds to duplicates and writes nothing; unpublished alerts
    are retried from the outbox with the same MessageId.
    """
    services = get_services()
    outcome = await inventory_events.apply_inventory_messages(
        services.tables,
        services.bus,
        [inventory_events.InboundMessage(message_id_of(msg), body_of(msg)) for msg in msgs],
        _policy(),
    )
    return rejections_by_id(
        msgs, {r.message_id: (r.reason, r.description) for r in outcome.rejected}
    )


@http_endpoint
async def answer_availability(req: func.HttpRequest) -> func.HttpResponse:
    """The availability answer (shared by the route below and the benchmark's app)."""
    query = validate(dict(req.params), inventory_availability.AvailabilityQuery)
    request = inventory_availability.resolve(query, _policy(), get_settings().availability_max_skus)
    answer = await inventory_availability.availability(get_services().tables, request, _policy())
    return model_response(inventory_availability.AvailabilityAnswer, answer)


@bp.function_name("inventory_events")
@bp.service_bus_queue_trigger(
    arg_name="msgs",
    queue_name=INVENTORY_QUEUE,
    connection="ServiceBusConnection",
    cardinality=func.Cardinality.MANY,
    auto_complete_messages=False,
)
@settles_batch(INVENTORY_QUEUE)
@traced_batch(INVENTORY_QUEUE)
async def on_inventory_events(msgs: list[Received]) -> Sequence[Rejection]:
    return await apply_batch(msgs)


@bp.function_name("availability")
@bp.route(route="availability", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@documented(
    "Available to sell per item for a channel",
    tag="stock",
    description="From the event-driven stock projection; no ERP call.",
    params=inventory_availability.AvailabilityQuery,
    replies={
        200: Reply("One entry per asked SKU.", inventory_availability.AvailabilityAnswer),
        422: problem("Invalid query, too many SKUs or an unknown channel."),
    },
)
async def availability(req: func.HttpRequest) -> func.HttpResponse:
    return await answer_availability(req)


@bp.function_name("inventory_sweep")
@bp.timer_trigger(
    arg_name="timer", schedule=policy_schedule("inventory_sweep"), run_on_startup=False
)
@recorded_timer("inventory_sweep")
async def sweep(timer: func.TimerRequest) -> None:
    services = get_services()
    await inventory_events.sweep(services.tables, services.bus, _policy())


@bp.function_name("stock_reconcile")
@bp.timer_trigger(
    arg_name="timer", schedule=policy_schedule("stock_reconcile"), run_on_startup=False
)
@recorded_timer("stock_reconcile")
async def reconcile(timer: func.TimerRequest) -> None:
    services = get_services()
    # LeaseHeld propagates to recorded_timer, which records the run as skipped.
    await inventory_reconciliation.reconcile_stock(
        services.erp,
        services.tables,
        services.bus,
        reconcile_interval=get_policy().stock.reconcile_interval,
    )
