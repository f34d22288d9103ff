"""Operations routes (admin): overview JSON, the HTML page, dead-letter listing and replay."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions import order_lifecycle
from functions.http import http_endpoint, json_response, parse_query
from functions.openapi import Reply, documented, problem
from functions.operations_page import render_page
from functions.timer_runs import RECORDED_TIMERS
from shared.adapters.ports import TableStorage
from shared.bootstrap import Services, get_policy, get_services
from shared.config.policy import SyncPolicy
from shared.services.operations import dead_letters
from shared.services.operations import overview as operations
from shared.services.operations import sections as operations_sections
from shared.services.operations.section_cache import SectionCache

bp = func.Blueprint()


async def erp_budget_section(tables: TableStorage, policy: SyncPolicy) -> operations.ExtraSection:
    """The ERP requests recorded in the budget window, per principal of this instance's ERP
    client (a few rows: read for every answer, like the sections an operator acts on)."""
    principals = get_services().erp.principal_counters()
    return await operations_sections.erp_budget_section(tables, principals)


# Other capabilities add titled key/value tables to the overview here (accuracy, impact).
EXTRA_SECTION_PROVIDERS: list[operations_sections.SectionProvider] = [
    *operations_sections.SECTIONS,
    order_lifecycle.ops_section,
    erp_budget_section,
]

_ENTITY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,259}(:[A-Za-z0-9][A-Za-z0-9._-]{0,49})?$"
_FORM = "application/x-www-form-urlencoded"
DASHBOARD_PEEK = 3
# Sums over days of the order-outcome ledger grow with the orders taken, and change over
# minutes: kept 5 s, refreshed behind the page, never older than 60 s (their age is shown).
# Sections an operator acts on (approvals, orders waiting) are read for every answer.
SECTION_CACHE = SectionCache(fresh_seconds=5.0, max_age_seconds=60.0)
CACHED_SECTIONS = frozenset(
    {operations_sections.accuracy_section, operations_sections.impact_section}
)


class _DeadLettersQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    peek: int = Field(10, ge=0, le=100, description="messages to list per entity")


class _ReplayQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    entity: str = Field(max_length=311, pattern=_ENTITY_PATTERN)
    limit: int = Field(100, ge=1, le=1000)


class _DashboardQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str | None = Field(None, max_length=200)
    replayed: str | None = Field(None, max_length=311, pattern=_ENTITY_PATTERN)
    moved: int | None = Field(None, ge=0, le=100_000)
    failed: int | None = Field(None, ge=0, le=100_000)


async def _extra_section(
    provider: operations_sections.SectionProvider, services: Services
) -> operations.ExtraSection:
    name = getattr(provider, "__name__", "extra section")
    try:
        if provider not in CACHED_SECTIONS:
            return await asyncio.wait_for(
                provider(services.tables, get_policy()), operations.SECTION_TIMEOUT_SECONDS
            )
        cached = await asyncio.wait_for(
            SECTION_CACHE.get(name, lambda: provider(services.tables, get_policy())),
            operations.SECTION_TIMEOUT_SECONDS,
        )
        section = cached.value
        assert isinstance(section, operations.ExtraSection)
        return section.model_copy(
            update={"checked_at": cached.checked_at, "age_ms": SECTION_CACHE.age_ms(cached)}
        )
    except Exception as error:  # a broken contribution must not take the page down
        return operations.ExtraSection(
            title=name, rows=[operations.KeyValue(key="error", value=type(error).__name__)]
        )


async def _overview(peek: int) -> operations.OperationsOverview:
    services = get_services()
    # The contributed sections are read at the same time as the overview's own.
    *extra, overview = await asyncio.gather(
        *(_extra_section(provider, services) for provider in EXTRA_SECTION_PROVIDERS),
        operations.build_overview(
            tables=services.tables,
            queues=services.dead_letters,
            erp_counters=services.erp.counters(),
            erp_principals=services.erp.principal_counters(),
            health_report=lambda: services.health.check(frozenset(services.health.probes)),
            timer_names=RECORDED_TIMERS,
            peek=peek,
        ),
    )
    assert isinstance(overview, operations.OperationsOverview)
    sections = [section for section in extra if isinstance(section, operations.ExtraSection)]
    return overview.model_copy(update={"extra_sections": sections})


@bp.function_name("ops_overview")
@bp.route(route="ops/overview", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Operations overview: timers, watermarks, dead letters, drift, ERP breaker, health",
    tag="operations",
    replies={
        200: Reply(
            "Every section; unreadable ones in sectionErrors.", operations.OperationsOverview
        )
    },
)
@http_endpoint
async def overview(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(await _overview(peek=0))


@bp.function_name("ops_dashboard")
@bp.route(route="ops/dashboard", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "The operations page (HTML, with Replay buttons)",
    tag="operations",
    params=_DashboardQuery,
    replies={
        200: Reply("The page.", media_type="text/html", schema={"type": "string"}),
        422: problem("A query parameter breaks the contract."),
    },
)
@http_endpoint
async def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    query = parse_query(req, _DashboardQuery)
    # The forms post back with the key the page was opened with (code= or the header).
    key = query.code or req.headers.get("x-functions-key")
    flash = ""
    if query.replayed:
        flash = f"Replayed {query.replayed}: {query.moved or 0} moved, {query.failed or 0} failed"
    page = render_page(await _overview(peek=DASHBOARD_PEEK), key, flash)
    return func.HttpResponse(
        page,
        status_code=200,
        mimetype="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; "
            "style-src 'unsafe-inline'; form-action 'self'; img-src 'self'",
        },
    )


@bp.function_name("ops_deadletters")
@bp.route(route="ops/deadletters", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Dead-lettered messages per queue and subscription (counted by peeking)",
    tag="operations",
    params=_DeadLettersQuery,
    replies={
        200: Reply("Counts, and the first messages of each.", dead_letters.DeadLetterCounts),
        422: problem("A query parameter breaks the contract."),
    },
)
@http_endpoint
async def list_dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    query = parse_query(req, _DeadLettersQuery)
    counts = await dead_letters.count_all(get_services().dead_letters, peek=query.peek)
    return json_response(counts)


@bp.function_name("ops_deadletters_replay")
@bp.route(
    route="ops/deadletters/{entity}/replay", methods=["POST"], auth_level=func.AuthLevel.ADMIN
)
@documented(
    "Move dead-lettered messages of one queue or subscription back to it",
    tag="operations",
    description="A form post (the page's Replay button) is answered 303 back to the page.",
    params=_ReplayQuery,
    body_required=False,
    json_only=False,
    replies={
        200: Reply("What moved and what failed.", dead_letters.ReplayResult),
        303: Reply("From the page's form: back to the page.", schema={"type": "string"}),
        404: problem("No such queue or subscription."),
        422: problem("A parameter breaks the contract."),
    },
)
@http_endpoint
async def replay_dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    query = parse_query(req, _ReplayQuery)
    result = await dead_letters.replay(get_services().dead_letters, query.entity, query.limit)
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == _FORM:
        # A browser form: back to the page (Post/Redirect/Get), which shows the outcome.
        back = {"replayed": result.entity, "moved": result.moved, "failed": result.failed}
        code = req.params.get("code")
        if code:
            back["code"] = code
        return func.HttpResponse(
            status_code=303, headers={"Location": f"../../dashboard?{urlencode(back)}"}
        )
    return json_response(result)
