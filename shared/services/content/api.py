"""The content operations routes' queries and answers as wire models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.services.http_contract import Timestamp, WireModel

MAX_RUNS = 200
MAX_FAILURES = 5000


class RunsQuery(BaseModel):
    """``GET /api/ops/content/runs?limit=``."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(20, ge=1, le=MAX_RUNS)


class FailuresQuery(BaseModel):
    """``GET /api/ops/content/failures?channel=&limit=``."""

    model_config = ConfigDict(extra="ignore")

    # A channel name, or "erp" for rows that failed the content rules.
    channel: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9-]{0,39}$",
        description='A channel name, or "erp" for products that broke a content rule.',
    )
    limit: int = Field(500, ge=1, le=MAX_FAILURES)


class WatermarkAnswer(WireModel):
    """How far each ERP feed has been synced (empty for a run that recorded none)."""

    items: Timestamp | None = None
    content: Timestamp | None = None


class ChannelRunAnswer(WireModel):
    """One channel's share of a run (see ``ChannelStats``)."""

    model_config = ConfigDict(alias_generator=None)

    sent: int
    applied: int
    unchanged: int
    rejected: int
    deleted: int
    skipped: int
    not_sold: int
    failed: int
    deferred: int
    requests: int
    error: str | None


class RunAnswer(WireModel):
    """One recorded run; its counters (``read``, ``sent``...) are the extra integer fields."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, int] = Field(init=False)

    run_id: str | None
    mode: Literal["delta", "full"] | None
    pass_id: str | None
    outcome: str | None
    started_at: Timestamp | None
    ended_at: Timestamp | None
    seconds: float | None
    error: str | None
    resumed: bool
    stopped_by: str | None
    watermark: WatermarkAnswer
    channels: dict[str, ChannelRunAnswer]


class RunsAnswer(WireModel):
    """200 of ``GET /api/ops/content/runs``, newest first."""

    runs: list[RunAnswer]


class FailureAnswer(WireModel):
    scope: str
    channel: str | None
    sku: str
    stage: str
    error: str
    content_hash: str | None
    attempts: int
    first_failed_at: Timestamp
    last_failed_at: Timestamp
    run_id: str


class FailuresAnswer(WireModel):
    """200 of ``GET /api/ops/content/failures``, newest first."""

    failures: list[FailureAnswer]


class CheckpointAnswer(WireModel):
    mode: Literal["delta", "full"]
    pass_id: str
    started_at: Timestamp
    runs: int
    phase: str
    pages_done: int
    products_done: int
    last_run_id: str


class ChannelSettingsAnswer(WireModel):
    currency: str
    locale: str
    categories: Literal["*"] | list[str]
    catalog_webhook: bool = Field(description="Whether a catalog webhook is configured.")


class StatusAnswer(WireModel):
    """200 of ``GET /api/ops/content/status``."""

    watermark: WatermarkAnswer
    last_success_at: Timestamp | None = None
    freshness_objective: str | None = Field(
        None, description="ISO 8601 duration, e.g. PT15M.", examples=["PT15M"]
    )
    stale: bool | None = Field(
        None, description="No successful run within the freshness objective."
    )
    pass_in_progress: CheckpointAnswer | None
    full_pass_requested: bool
    channels: dict[str, ChannelSettingsAnswer]
