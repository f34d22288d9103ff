"""The audit's report: one pydantic model for the JSON, the HTML page and the stored summary.

Money and rates are Decimals (written as decimal strings in JSON), times are UTC-aware, and
every list that could grow with the data is truncated to the policy's ``list_limit`` with its
total kept next to it, so a report stays small however wrong a stack is.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.services.operations.impact import BookingSurprise, ImpactReport

Layer = Literal["data", "connectivity", "logic"]
LAYERS: tuple[Layer, ...] = ("data", "connectivity", "logic")


class ReportModel(BaseModel):
    """camelCase on the wire, snake_case in code; unknown fields refused when read back."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Verdict(ReportModel):
    """A layer's result against its objectives: pass/fail and the reasons in words."""

    layer: Layer
    passed: bool
    reasons: list[str] = Field(default_factory=list)
    objectives: dict[str, str] = Field(default_factory=dict)


# ---- data baseline ----


class Digest(ReportModel):
    """Row count and order-independent checksum (sum of 64-bit row hashes mod 2**64)."""

    count: int
    checksum: str


class RowIssue(ReportModel):
    key: str
    age_seconds: int | None = None
    over_policy: bool


class IssueList(ReportModel):
    """The first N issues of one kind, with how many there are in all."""

    total: int
    rows: list[RowIssue]


class DatasetComparison(ReportModel):
    """One dataset: the ERP side against what the product published, projected or delivered."""

    name: str
    product_side: str
    erp: Digest
    product: Digest
    missing: IssueList
    extra: IssueList
    differing: IssueList
    over_policy: int
    objective_seconds: int
    excluded: int = 0
    in_sync: bool


class DataLayer(ReportModel):
    datasets: list[DatasetComparison]
    publisher_last_success: datetime | None = None
    erp_reads: int
    seconds: float
    verdict: Verdict


# ---- connectivity ----


class Latency(ReportModel):
    probes: int
    failures: int
    p50_ms: Decimal | None = None
    p99_ms: Decimal | None = None


class UsageFigures(ReportModel):
    """Recorded requests over the budget window (against ``budget``) and the last day."""

    window_requests: int
    budget: int
    budget_share: Decimal
    day_requests: int
    day_throttled: int
    day_retries: int
    day_breaker_openings: int


class PrincipalUsage(UsageFigures):
    """One principal's recorded requests: Business Central counts its budget per principal.

    ``principal`` is the non-secret label (client id or position, never a token);
    ``breakerState`` is this instance's breaker for it (None: not configured here, e.g. a
    principal removed since its rows were recorded)."""

    principal: str
    breaker_state: str | None = None


class Usage(UsageFigures):
    """ERP requests the product recorded (erp_usage) over the budget window and the last day.

    The top-level figures are the total over every principal, against the sum of their
    budgets (one principal: Business Central's 6,000 per 5 minutes); ``principals`` has each
    principal's own figures and share, the default one first, and they add up to the total.
    ``breakerState`` is the default principal's."""

    window_seconds: int
    breaker_state: str
    principals: list[PrincipalUsage] = Field(default_factory=list)


class QueueDepth(ReportModel):
    queue: str
    dead_letters: int
    dead_letters_capped: bool
    waiting: int
    waiting_capped: bool
    oldest_waiting_seconds: int | None = None
    oldest_dead_letter_seconds: int | None = None
    error: str | None = None


class SubscriptionState(ReportModel):
    resource: str
    subscription_id: str | None = None
    expires_at: datetime | None = None
    hours_left: Decimal | None = None
    ok: bool
    problem: str | None = None


class ConnectivityLayer(ReportModel):
    latency: Latency
    usage: Usage
    queues: list[QueueDepth]
    subscriptions: list[SubscriptionState]
    seconds: float
    verdict: Verdict


# ---- logic consistency ----


class WinningLine(ReportModel):
    """The price list line the product's quote used (type "List Price" = the item card)."""

    type: str
    price_list_code: str
    minimum_quantity: str


class QuoteCheck(ReportModel):
    customer: str
    item: str
    quantity: Decimal
    product_unit_price: Decimal | None = None
    erp_unit_price: Decimal | None = None
    product_discount_percent: Decimal | None = None
    erp_discount_percent: Decimal | None = None
    product_line_amount: Decimal | None = None
    erp_line_amount: Decimal | None = None
    winning_line: WinningLine | None = None
    agrees: bool
    problem: str | None = None


class LogicLayer(ReportModel):
    seed: int
    sample_size: int
    compared: int
    agreed: int
    accuracy: Decimal | None = None
    mismatches: list[QuoteCheck]
    mismatch_total: int
    errors: list[QuoteCheck]
    quotes_created: int
    quotes_deleted: int
    booking_surprises: list[BookingSurprise] = Field(default_factory=list)
    booking_surprises_since: datetime | None = None
    seconds: float
    verdict: Verdict


# ---- the whole report ----


class HistoryPoint(ReportModel):
    """One point of the chart: an audit's accuracy or a reconciliation's drift rate."""

    at: datetime
    accuracy: Decimal | None = None
    drift_rate: Decimal | None = None


class AuditReport(ReportModel):
    run_id: str
    started_at: datetime
    finished_at: datetime
    layers: list[Layer]
    passed: bool
    verdicts: list[Verdict]
    data: DataLayer | None = None
    connectivity: ConnectivityLayer | None = None
    logic: LogicLayer | None = None
    impact: ImpactReport | None = None
    history: list[HistoryPoint] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
