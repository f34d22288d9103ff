"""Price quotes (storefront, function key) and the price publisher timers."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.http import HttpProblem, http_endpoint, model_response, parse_body, validate
from functions.openapi import Reply, documented, problem
from functions.timer_runs import recorded_timer
from shared.bootstrap import Services, get_services, policy_schedule
from shared.domain.pricing import QuoteRejected
from shared.services.pricing import publisher as price_publisher
from shared.services.pricing import quotes
from shared.services.pricing.api import QuoteAnswer, SinglePriceAnswer

bp = func.Blueprint()
_log = logging.getLogger(__name__)


async def _quote(services: Services, request: quotes.QuoteRequest) -> dict[str, object]:
    try:
        return await quotes.quote_prices(
            services.price_book,
            request,
            services.currencies,
            services.settings.sold_currency_set,
            services.campaign_policy,
        )
    except QuoteRejected as rejected:
        raise HttpProblem(
            422,
            "Quote rejected",
            "one or more lines cannot be priced",
            violations=quotes.violations_of(rejected),
        ) from None


@bp.function_name("prices_quote")
@bp.route(route="prices/quote", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@documented(
    "Customer prices for up to 500 lines, from published data",
    tag="prices",
    description="No ERP call: `stale` and `dataAsOf` say how current the published data is.",
    body=quotes.QuoteRequest,
    replies={
        200: Reply("The priced lines and total.", QuoteAnswer),
        404: problem("No such customer."),
        422: problem("Invalid request, or lines that cannot be priced (violations name them)."),
    },
)
@http_endpoint
async def quote(req: func.HttpRequest) -> func.HttpResponse:
    request = parse_body(req, quotes.QuoteRequest)
    return model_response(QuoteAnswer, await _quote(get_services(), request))


@bp.function_name("prices_single")
@bp.route(route="prices/{sku}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@documented(
    "One customer price",
    tag="prices",
    params=quotes.SingleQuoteQuery,
    replies={
        200: Reply("The quote's fields and its one line.", SinglePriceAnswer),
        404: problem("No such customer."),
        422: problem("Invalid request, or the item cannot be priced."),
    },
)
@http_endpoint
async def single_price(req: func.HttpRequest) -> func.HttpResponse:
    query = validate({**dict(req.params), **dict(req.route_params)}, quotes.SingleQuoteQuery)
    request = quotes.QuoteRequest(
        customer_id=query.customer_id,
        currency=query.currency,
        order_date=query.order_date,
        lines=[
            quotes.QuoteLineIn(
                sku=query.sku, quantity=query.quantity, unit_of_measure=query.unit_of_measure
            )
        ],
    )
    answer = await _quote(get_services(), request)
    line = answer.pop("lines")[0]
    return model_response(SinglePriceAnswer, {**answer, **line})


async def _publish(mode: price_publisher.Mode) -> None:
    services = get_services()
    # LeaseHeld (another run is working: nothing to do, not a failure) propagates to
    # recorded_timer, which records the run as skipped.
    await price_publisher.publish(
        services.erp, services.tables, mode, snapshots=services.price_snapshots
    )


@bp.function_name("price_publish_delta")
@bp.timer_trigger(
    arg_name="timer", schedule=policy_schedule("price_publish_delta"), run_on_startup=False
)
@recorded_timer("price_publish_delta")
async def publish_delta(timer: func.TimerRequest) -> None:
    await _publish("delta")


@bp.function_name("price_publish_full")
@bp.timer_trigger(
    arg_name="timer", schedule=policy_schedule("price_publish_full"), run_on_startup=False
)
@recorded_timer("price_publish_full")
async def publish_full(timer: func.TimerRequest) -> None:
    await _publish("full")
