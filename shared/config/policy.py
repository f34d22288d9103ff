"""The declared sync policy: per domain, its pattern, its schedule and its freshness objective.

One JSON file shipped with the app (``shared/config/sync_policy.json``) says how each domain is kept
in step with the ERP; the app setting ``SYNC_POLICY`` may hold a JSON object that is deep-merged
over it, so an operator changes an interval or an objective in the portal without a release.
Timer schedules are derived from it at import (``policy_schedule``), and the staleness bounds
the services report are read from it, so what the product promises and what it does cannot
drift apart. Durations are ISO-8601 (``PT5M``), times of day ``HH:MM`` in UTC, money and
shares decimal strings. A malformed policy stops the app at start with the field named.
"""

from __future__ import annotations

import json
import re
from datetime import time, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shared.config import cron as policy_cron
from shared.config.cron import ScheduleDerivationError, describe

POLICY_FILE = Path(__file__).with_name("sync_policy.json")
OVERRIDE_SETTING = "SYNC_POLICY"
# Days, hours, minutes and seconds only: months and years have no fixed length.
_ISO_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


class PolicyError(RuntimeError):
    """The policy file or its override is malformed; the message names the field."""


class UnknownJob(KeyError):
    """No timer job of that name is declared by the policy."""


def _iso_duration_only(value: object) -> object:
    # Plain numbers would leave the unit to guesswork; the file says PT5M, not 300.
    if not isinstance(value, str) or not _ISO_DURATION.match(value):
        raise ValueError("must be an ISO-8601 duration such as PT30S, PT5M, PT1H or P1D")
    return value


Duration = Annotated[timedelta, BeforeValidator(_iso_duration_only)]
Share = Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False)]
Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, decimal_places=4)]


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


def _derivable(value: timedelta) -> timedelta:
    try:
        policy_cron.every(value)
    except ScheduleDerivationError as error:
        raise ValueError(str(error)) from None
    return value


def _daily(value: time) -> time:
    try:
        policy_cron.daily_at(value)
    except ScheduleDerivationError as error:
        raise ValueError(str(error)) from None
    return value


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class IntervalJob(_Section):
    """A housekeeping timer: every ``interval``, ``offset`` after the aligned boundary."""

    interval: Duration
    offset: Duration = timedelta(0)
    paused: bool = False

    @model_validator(mode="after")
    def _exact(self) -> IntervalJob:
        try:
            policy_cron.every(self.interval, self.offset)
        except ScheduleDerivationError as error:
            raise ValueError(str(error)) from None
        return self

    def schedule(self) -> str:
        return policy_cron.PAUSED if self.paused else policy_cron.every(self.interval, self.offset)


class PricesSync(_Section):
    """Published prices: a delta run every ``delta_interval``, a full run daily at ``full_at``;
    quotes say ``stale`` once the last publish is older than ``freshness_objective``."""

    pattern: Literal["published-delta"] = "published-delta"
    delta_interval: Duration
    full_at: time
    freshness_objective: Duration
    paused: bool = False

    _interval_exact = field_validator("delta_interval")(_derivable)
    _time_exact = field_validator("full_at")(_daily)

    @model_validator(mode="after")
    def _objective_reachable(self) -> PricesSync:
        if self.freshness_objective < self.delta_interval:
            raise ValueError(
                "freshnessObjective must be at least deltaInterval, or quotes turn stale "
                "between two healthy runs"
            )
        return self


class CreditSync(_Section):
    """Credit is read live; figures up to ``max_cached`` old may answer while the ERP is down.

    ``intake_cache`` (zero by default: every order reads live) lets order intake reuse a live
    reading of the same customer's figures up to that age, to save ERP requests; never more
    than ``max_cached``. Orders accepted or booked since the reading are counted on top of it
    as for any reading, and the credit check route always reads live.
    """

    pattern: Literal["live"] = "live"
    max_cached: Duration = Field(le=timedelta(days=1))
    intake_cache: Duration = timedelta(0)

    @model_validator(mode="after")
    def _intake_cache_within_bound(self) -> CreditSync:
        if self.intake_cache > self.max_cached:
            raise ValueError("intakeCache must not exceed maxCached")
        return self


class StockSync(_Section):
    """Stock follows ERP events; a reconciliation every ``reconcile_interval`` corrects drift.

    ``sell_expected_receipts`` names the channels whose available-to-sell includes receipts
    expected from open purchase orders (none by default: on hand only).
    """

    pattern: Literal["events"] = "events"
    freshness_objective: Duration
    reconcile_interval: Duration
    paused: bool = False
    sell_expected_receipts: frozenset[str] = frozenset()

    _objective_positive = field_validator("freshness_objective")(_positive)
    _interval_exact = field_validator("reconcile_interval")(_derivable)


# The rules intake may route to a person instead of refusing (names as in violations).
ApprovableRule = Literal[
    "credit-over-limit",
    "credit-overdue",
    "price-mismatch",
    "insufficient-stock",
    "customer-blocked",
    "quantity-over-threshold",
]
LineQuantity = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class QuantityLimits(_Section):
    """The largest quantity one order line may carry (rule ``quantity-over-threshold``), in the
    item's base unit of measure: per customer number, per item number, and ``default`` for the
    lines neither names. The lower of a line's customer and item limit applies. Nothing set
    (the default): no limit."""

    customers: dict[str, LineQuantity] = Field(default_factory=dict)
    items: dict[str, LineQuantity] = Field(default_factory=dict)
    default: LineQuantity | None = None


ItemCode = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^\S+$")]


class Backorders(_Section):
    """Which items ``insufficient-stock: backorder`` may sell beyond the stock there is.

    Business Central's APIV2 ``items`` page exposes ``itemCategoryCode`` but not the item's
    "Prevent Negative Inventory" or the setup's "Stockout Warning", so the ERP cannot tell us
    whether an item may be backordered: the policy names the item categories and items that
    may (``item_categories``, ``items``). A short line of any other item falls back to
    ``otherwise`` (``reject`` or ``hold``), as if the rule said that.
    """

    item_categories: frozenset[ItemCode] = frozenset()
    items: frozenset[ItemCode] = frozenset()
    otherwise: Literal["reject", "hold"] = "reject"


class OrderApprovals(_Section):
    """Per broken rule, what intake does: ``reject`` (422, nothing held; the default for every
    rule) or ``hold`` (accepted as ``pending-approval``, its stock and credit holds kept for
    ``hold_for`` while a person decides; then it is rejected with the reason); for
    ``insufficient-stock`` also ``backorder`` (accepted: the stock there is held, the rest of
    each short line backordered, for the items ``backorder`` names).
    ``quantity_limits`` sets the thresholds of the ``quantity-over-threshold`` rule."""

    hold_for: Duration = timedelta(hours=24)
    rules: dict[ApprovableRule, Literal["reject", "hold", "backorder"]] = Field(
        default_factory=dict
    )
    backorder: Backorders = Field(default_factory=Backorders)
    quantity_limits: QuantityLimits = Field(default_factory=QuantityLimits)

    _hold_positive = field_validator("hold_for")(_positive)

    @model_validator(mode="after")
    def _backorder_only_for_stock(self) -> OrderApprovals:
        for rule, action in self.rules.items():
            if action == "backorder" and rule != "insufficient-stock":
                raise ValueError(f"rules.{rule}: backorder applies to insufficient-stock only")
        wanted = self.rules.get("insufficient-stock") == "backorder"
        if wanted and not (self.backorder.item_categories or self.backorder.items):
            raise ValueError(
                "rules.insufficient-stock is backorder but backorder names no itemCategories "
                "or items"
            )
        return self

    def actions(self) -> dict[str, Literal["reject", "hold"]]:
        """Per named rule, reject or hold (``backorder`` stands for its ``otherwise`` here: the
        action for the short lines of items that may not be backordered)."""
        return {
            rule: self.backorder.otherwise if action == "backorder" else action
            for rule, action in self.rules.items()
        }

    @property
    def backorders(self) -> bool:
        """Whether short lines of the named items are backordered instead."""
        return self.rules.get("insufficient-stock") == "backorder"


class OrdersSync(_Section):
    """Orders are validated live at intake and booked in the ERP within ``booking_objective``;
    after booking, the ERP's changes reach the storefronts within ``lifecycle_objective``
    (webhooks), with a delta poll every ``lifecycle_poll`` as the safety net; B2B history reads
    are cached for ``history_cache``."""

    pattern: Literal["live-intake"] = "live-intake"
    booking_objective: Duration
    lifecycle_objective: Duration = timedelta(minutes=1)
    lifecycle_poll: Duration = timedelta(minutes=5)
    lifecycle_paused: bool = False
    history_cache: Duration = timedelta(seconds=30)
    approvals: OrderApprovals = Field(default_factory=OrderApprovals)

    _objective_positive = field_validator("booking_objective", "lifecycle_objective")(_positive)
    _poll_exact = field_validator("lifecycle_poll")(_derivable)


class ContentSync(_Section):
    """Content reaches the storefronts by a delta run every ``delta_interval`` and a daily full
    pass at ``full_at``, within ``freshness_objective``."""

    pattern: Literal["batch"] = "batch"
    delta_interval: Duration
    full_at: time
    freshness_objective: Duration
    paused: bool = False

    _interval_exact = field_validator("delta_interval")(_derivable)
    _time_exact = field_validator("full_at")(_daily)

    @model_validator(mode="after")
    def _objective_reachable(self) -> ContentSync:
        if self.freshness_objective < self.delta_interval:
            raise ValueError("freshnessObjective must be at least deltaInterval")
        return self


class Housekeeping(_Section):
    heartbeat: IntervalJob
    stock_sweep: IntervalJob
    order_sweep: IntervalJob
    order_purge: IntervalJob
    erp_subscriptions: IntervalJob


class AuditObjectives(_Section):
    """What an integration audit holds the running product to."""

    accuracy_objective: Share
    sample_size: int = Field(ge=1, le=10_000)
    erp_latency_p99_objective: Duration
    erp_budget_share_objective: Share
    max_dead_letters: int = Field(ge=0)
    list_limit: int = Field(ge=1, le=5000)

    _latency_positive = field_validator("erp_latency_p99_objective")(_positive)


class ImpactCosts(_Section):
    """What one avoided problem is worth, for the business impact report."""

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    cost_per_manual_correction: Money
    cost_per_oversold_order: Money


class DomainRow(NamedTuple):
    """One line of a report: the domain, its sync pattern and its objective in words."""

    name: str
    pattern: str
    objective: str


class SyncPolicy(_Section):
    """The whole policy; read it with ``get_policy()``."""

    prices: PricesSync
    credit: CreditSync
    stock: StockSync
    orders: OrdersSync
    content: ContentSync
    housekeeping: Housekeeping
    audit: AuditObjectives
    impact: ImpactCosts

    def schedules(self) -> dict[str, str]:
        """Timer function name -> six-field NCRONTAB (paused jobs get ``PAUSED``)."""

        def batch(paused: bool, cron: str) -> str:
            return policy_cron.PAUSED if paused else cron

        prices, content, chores = self.prices, self.content, self.housekeeping
        return {
            "price_publish_delta": batch(prices.paused, policy_cron.every(prices.delta_interval)),
            "price_publish_full": batch(prices.paused, policy_cron.daily_at(prices.full_at)),
            "content_sync_delta": batch(content.paused, policy_cron.every(content.delta_interval)),
            "content_sync_full": batch(content.paused, policy_cron.daily_at(content.full_at)),
            "stock_reconcile": batch(
                self.stock.paused, policy_cron.every(self.stock.reconcile_interval)
            ),
            "heartbeat": chores.heartbeat.schedule(),
            "inventory_sweep": chores.stock_sweep.schedule(),
            "orders_sweep": chores.order_sweep.schedule(),
            "order_lifecycle_poll": batch(
                self.orders.lifecycle_paused, policy_cron.every(self.orders.lifecycle_poll)
            ),
            "orders_purge_keys": chores.order_purge.schedule(),
            "erp_subscriptions": chores.erp_subscriptions.schedule(),
        }

    def schedule(self, job: str) -> str:
        try:
            return self.schedules()[job]
        except KeyError:
            raise UnknownJob(f"the sync policy declares no timer job {job!r}") from None

    def domains(self) -> list[DomainRow]:
        """Each domain's pattern and objective, for reports and the audit."""

        def runs(paused: bool, interval: timedelta, at: time) -> str:
            if paused:
                return "paused"
            return f"delta every {describe(interval)}, full daily at {at:%H:%M} UTC"

        prices, content, stock = self.prices, self.content, self.stock
        reconcile = "paused" if stock.paused else f"every {describe(stock.reconcile_interval)}"
        return [
            DomainRow(
                "prices",
                prices.pattern,
                f"quotes stale after {describe(prices.freshness_objective)} "
                f"({runs(prices.paused, prices.delta_interval, prices.full_at)})",
            ),
            DomainRow(
                "credit",
                self.credit.pattern,
                f"live ERP read; cached figures answer for at most "
                f"{describe(self.credit.max_cached)}",
            ),
            DomainRow(
                "stock",
                stock.pattern,
                f"projection within {describe(stock.freshness_objective)} of the event "
                f"(reconciled {reconcile})",
            ),
            DomainRow(
                "orders",
                self.orders.pattern,
                f"booked in the ERP within {describe(self.orders.booking_objective)} of acceptance;"
                f" ERP changes on storefronts within "
                f"{describe(self.orders.lifecycle_objective)} (poll every "
                f"{describe(self.orders.lifecycle_poll)})",
            ),
            DomainRow(
                "content",
                content.pattern,
                f"storefronts within {describe(content.freshness_objective)} "
                f"({runs(content.paused, content.delta_interval, content.full_at)})",
            ),
        ]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: objects merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError, source: str) -> str:
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "policy"
        problems.append(f"{name}: {item['msg']}")
    return f"invalid sync policy ({source}): " + "; ".join(problems)


def _json_object(text: str, source: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyError(f"invalid sync policy ({source}): not JSON: {error}") from None
    if not isinstance(document, dict):
        raise PolicyError(f"invalid sync policy ({source}): must be a JSON object")
    return document


def load_policy(override: str | None = None, path: Path = POLICY_FILE) -> SyncPolicy:
    """The shipped policy with ``override`` (JSON text, blank = none) deep-merged over it."""
    document = _json_object(path.read_text(encoding="utf-8"), path.name)
    source = path.name
    if override and override.strip():
        document = deep_merge(document, _json_object(override, OVERRIDE_SETTING))
        source = f"{path.name} + {OVERRIDE_SETTING}"
    try:
        return SyncPolicy.model_validate(document)
    except ValidationError as error:
        raise PolicyError(_describe(error, source)) from None


@lru_cache(maxsize=8)
def policy_for(override: str) -> SyncPolicy:
    """The policy for one ``SYNC_POLICY`` value, parsed once (settings never change)."""
    return load_policy(override)
