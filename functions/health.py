"""GET /api/health: anonymous, lists each dependency's reachability and nothing secret."""

from __future__ import annotations

import azure.functions as func

from functions.http import http_endpoint, model_response
from functions.openapi import Reply, documented
from shared.bootstrap import get_services
from shared.services.operations import health

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@documented(
    "Can this instance reach its dependencies",
    tag="operations",
    description=(
        "Names and outcomes only; no connection strings, keys or settings. Each result is"
        " reused for up to 5 s (checkedAt, ageMs say how old it is); a probe waits at most 3 s."
    ),
    replies={
        200: Reply("ok, or degraded (an optional dependency is down).", health.HealthAnswer),
        503: Reply("down: a required dependency is unreachable.", health.HealthAnswer),
    },
)
@http_endpoint
async def health_check(req: func.HttpRequest) -> func.HttpResponse:
    report = await get_services().health.check(health.REQUIRED)
    return model_response(
        health.HealthAnswer, report.as_dict(), status=503 if report.status == "down" else 200
    )
