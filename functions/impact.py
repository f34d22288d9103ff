"""``GET ops/impact``: the business impact report, order accuracy and booking surprises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions.http import http_endpoint, json_response, parse_query
from functions.openapi import Reply, documented
from shared.bootstrap import get_policy, get_services
from shared.services.operations import impact

bp = func.Blueprint()

# One table query per day: a quarter is plenty for a monthly estimate and stays cheap.
MAX_DAYS = 92


class ImpactQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    days: int = Field(30, ge=1, le=MAX_DAYS)
    surprises: int = Field(20, ge=0, le=500)


class ImpactAnswer(BaseModel):
    """The report, order accuracy over the same days, and the newest booking surprises."""

    model_config = ConfigDict(populate_by_name=True)

    impact: impact.ImpactReport
    accuracy: impact.AccuracyFigures
    booking_surprises: list[impact.BookingSurprise] = Field(alias="bookingSurprises")


@bp.function_name("ops_impact")
@bp.route(route="ops/impact", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Business impact: problems caught at intake vs problems that reached the ERP",
    tag="operations",
    params=ImpactQuery,
    replies={200: Reply("Per day and in total, with the monthly estimate.", ImpactAnswer)},
)
@http_endpoint
async def impact_report(req: func.HttpRequest) -> func.HttpResponse:
    query = parse_query(req, ImpactQuery)
    tables = get_services().tables
    now = datetime.now(UTC)
    report = await impact.impact_report(tables, get_policy(), query.days, now)
    since = datetime.combine(report.first_day, datetime.min.time(), UTC)
    figures = await impact.accuracy(tables, since, now + timedelta(seconds=1))
    surprises = await impact.booking_surprises(tables, since, query.surprises)
    answer = ImpactAnswer(impact=report, accuracy=figures, booking_surprises=surprises)
    return json_response(answer.model_dump(mode="json", by_alias=True))
