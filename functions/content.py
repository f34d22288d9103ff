"""Content sync timers (delta every 15 minutes, full pass nightly) and its operations routes."""

from __future__ import annotations

import logging
from typing import Literal

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions.http import http_endpoint, json_response, parse_query
from shared.bootstrap import Services, get_services
from shared.services import content
from shared.services.lease import LeaseHeld

bp = func.Blueprint()
_log = logging.getLogger(__name__)


async def _sync(services: Services, mode: Literal["delta", "full"]) -> None:
    try:
        await content.run_content_sync(
            services.erp,
            services.tables,
            content.channel_targets(services.settings, services.storefront_http),
            mode,
            content.sync_options(services.settings),
        )
    except LeaseHeld as held:
        # Another run is working; it continues the pass (and serves a full-pass request).
        _log.info("content sync (%s) skipped: %s", mode, held)


@bp.function_name("content_sync_delta")
@bp.timer_trigger(arg_name="timer", schedule="%CONTENT_DELTA_SCHEDULE%", run_on_startup=False)
async def sync_delta(timer: func.TimerRequest) -> None:
    await _sync(get_services(), "delta")


@bp.function_name("content_sync_full")
@bp.timer_trigger(arg_name="timer", schedule="%CONTENT_FULL_SCHEDULE%", run_on_startup=False)
async def sync_full(timer: func.TimerRequest) -> None:
    services = get_services()
    # Recorded first, so a night on which a delta run holds the lease still gets its full pass.
    await content.request_full_pass(services.tables)
    await _sync(services, "full")


class _RunsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(20, ge=1, le=200)


class _FailuresQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # A channel name, or "erp" for rows that failed the content rules.
    channel: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{0,39}$")
    limit: int = Field(500, ge=1, le=5000)


@bp.function_name("content_runs")
@bp.route(route="ops/content/runs", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@http_endpoint
async def runs(req: func.HttpRequest) -> func.HttpResponse:
    query = parse_query(req, _RunsQuery)
    return json_response({"runs": await content.recent_runs(get_services().tables, query.limit)})


@bp.function_name("content_failures")
@bp.route(route="ops/content/failures", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@http_endpoint
async def failures(req: func.HttpRequest) -> func.HttpResponse:
    query = parse_query(req, _FailuresQuery)
    found = await content.list_failures(get_services().tables, query.channel, query.limit)
    return json_response({"failures": [failure.as_json() for failure in found]})


@bp.function_name("content_status")
@bp.route(route="ops/content/status", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@http_endpoint
async def status(req: func.HttpRequest) -> func.HttpResponse:
    services = get_services()
    return json_response(await content.sync_status(services.tables, services.settings))
