"""Integration audit admin routes: run it, read the latest report as JSON or as one HTML page."""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions.audit_cli import parse_layers
from functions.http import HttpProblem, http_endpoint, json_response, parse_query
from functions.openapi import Reply, documented, problem
from shared.bootstrap import audit_dependencies, get_services
from shared.services.operations.audit.html import render_html
from shared.services.operations.audit.models import LAYERS, AuditReport, Layer
from shared.services.operations.audit.service import AuditOptions, latest_with_history, run_audit

bp = func.Blueprint()
# An HTTP call must finish well inside the host's 230-second limit: the sample is bounded.
MAX_ROUTE_SAMPLE = 200
_LAYER = "(data|connectivity|logic)"
_LAYERS_PATTERN = f"^{_LAYER}(,{_LAYER})*$"
_NO_AUDIT = problem("No audit has run yet.")
_UNREADABLE = problem(
    "The latest stored report cannot be read by this version of the app (written by another "
    "version, e.g. before a rollback): run a new audit."
)


class AuditRunQuery(BaseModel):
    """Query of ``POST /api/ops/audit``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    layers: str = Field(
        ",".join(LAYERS),
        pattern=_LAYERS_PATTERN,
        max_length=40,
        description="Comma list of data, connectivity, logic.",
    )
    sample_size: Annotated[int, Field(ge=1, le=MAX_ROUTE_SAMPLE)] | None = Field(
        None, alias="sampleSize", description="Logic layer sample (default: the policy's)."
    )
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = Field(
        None, description="Logic layer seed (default: today's date)."
    )

    @property
    def layer_tuple(self) -> tuple[Layer, ...]:
        return parse_layers(self.layers)


@bp.function_name("audit_run")
@bp.route(route="ops/audit", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Run the integration audit (data, connectivity, logic) and store its report",
    tag="operations",
    description="Same code as `python -m functions.audit_cli`; `passed` is false "
    "when a layer misses its objective. Bounded: at most 200 sampled triples per call.",
    params=AuditRunQuery,
    body_required=False,
    replies={
        200: Reply("The report.", AuditReport),
        422: problem("Invalid layers, sample size or seed."),
    },
)
@http_endpoint
async def run(req: func.HttpRequest) -> func.HttpResponse:
    query = parse_query(req, AuditRunQuery)
    report = await run_audit(
        audit_dependencies(get_services()),
        AuditOptions(layers=query.layer_tuple, sample_size=query.sample_size, seed=query.seed),
    )
    return json_response(report)


@bp.function_name("audit_latest")
@bp.route(route="ops/audit", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "The latest audit report as JSON",
    tag="operations",
    replies={
        200: Reply("The report, with current history.", AuditReport),
        404: _NO_AUDIT,
        409: _UNREADABLE,
    },
)
@http_endpoint
async def latest(req: func.HttpRequest) -> func.HttpResponse:
    report = await latest_with_history(get_services().tables)
    if report is None:
        raise HttpProblem(404, "Not found", "no audit has run yet: POST /api/ops/audit")
    return json_response(report)


@bp.function_name("audit_report")
@bp.route(route="ops/audit/report", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "The latest audit report as one HTML page",
    tag="operations",
    replies={
        200: Reply("The page.", media_type="text/html", schema={"type": "string"}),
        404: _NO_AUDIT,
        409: _UNREADABLE,
    },
)
@http_endpoint
async def latest_html(req: func.HttpRequest) -> func.HttpResponse:
    report = await latest_with_history(get_services().tables)
    if report is None:
        raise HttpProblem(404, "Not found", "no audit has run yet: POST /api/ops/audit")
    return func.HttpResponse(render_html(report), status_code=200, mimetype="text/html")
