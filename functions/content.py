"""Content sync timers (delta every 15 minutes, full pass nightly) and its operations routes."""

from __future__ import annotations

import logging
from typing import Literal

import azure.functions as func

from functions.http import http_endpoint, model_response, parse_query
from functions.openapi import Reply, documented
from functions.timer_runs import recorded_timer
from shared import bootstrap
from shared.bootstrap import Services, get_services, policy_schedule
from shared.services import content
from shared.services.content import api

bp = func.Blueprint()
_log = logging.getLogger(__name__)


async def _sync(services: Services, mode: Literal["delta", "full"]) -> None:
    # LeaseHeld (another run is working; it continues the pass and serves a full-pass request)
    # propagates to recorded_timer, which records the run as skipped.
    await content.run_content_sync(
        services.erp,
        services.tables,
        bootstrap.channel_targets(services.settings, services.storefront_http),
        mode,
        bootstrap.sync_options(services.settings),
    )


@bp.function_name("content_sync_delta")
@bp.timer_trigger(
    arg_name="timer", schedule=policy_schedule("content_sync_delta"), run_on_startup=False
)
@recorded_timer("content_sync_delta")
async def sync_delta(timer: func.TimerRequest) -> None:
    await _sync(get_services(), "delta")


@bp.function_name("content_sync_full")
@bp.timer_trigger(
    arg_name="timer", schedule=policy_schedule("content_sync_full"), run_on_startup=False
)
@recorded_timer("content_sync_full")
async def sync_full(timer: func.TimerRequest) -> None:
    services = get_services()
    # Recorded first, so a night on which a delta run holds the lease still gets its full pass.
    await content.request_full_pass(services.tables)
    await _sync(services, "full")


@bp.function_name("content_runs")
@bp.route(route="ops/content/runs", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Recent content sync runs",
    tag="operations",
    params=api.RunsQuery,
    replies={200: Reply("Newest first.", api.RunsAnswer)},
)
@http_endpoint
async def runs(req: func.HttpRequest) -> func.HttpResponse:
    query = parse_query(req, api.RunsQuery)
    found = await content.recent_runs(get_services().tables, query.limit)
    return model_response(api.RunsAnswer, {"runs": found})


@bp.function_name("content_failures")
@bp.route(route="ops/content/failures", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Products a channel or a content rule refused, to be retried",
    tag="operations",
    params=api.FailuresQuery,
    replies={200: Reply("Newest first.", api.FailuresAnswer)},
)
@http_endpoint
async def failures(req: func.HttpRequest) -> func.HttpResponse:
    query = parse_query(req, api.FailuresQuery)
    found = await content.list_failures(get_services().tables, query.channel, query.limit)
    return model_response(api.FailuresAnswer, {"failures": [f.as_json() for f in found]})


@bp.function_name("content_status")
@bp.route(route="ops/content/status", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Content sync watermarks, the pass under way and the channels",
    tag="operations",
    replies={200: Reply("The sync state.", api.StatusAnswer)},
)
@http_endpoint
async def status(req: func.HttpRequest) -> func.HttpResponse:
    services = get_services()
    answer = await content.sync_status(services.tables, services.settings)
    return model_response(api.StatusAnswer, answer)
