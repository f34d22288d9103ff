"""Order accuracy, booking surprises and the business impact report, from the outcome ledger.

"Validate now, not fix later" in numbers: how many problems intake caught (each one an order
that would otherwise have needed a manual correction in the ERP, or been oversold), how many
orders a person saved by approving them (held for approval instead of refused, then booked)
and how many held orders were rejected or expired, how many the sync policy's backorder saved
(accepted with backordered quantities instead of refused for insufficient stock, then
booked), how many still reached the ERP (repriced at booking, refused or failed there), and
what the caught ones are worth per month at the costs the sync policy declares.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, computed_field
from pydantic.alias_generators import to_camel

from shared.adapters.ports import TableStorage
from shared.adapters.stores.order_outcomes import OutcomeRow, outcomes_between
from shared.config.policy import SyncPolicy
from shared.domain.orders.outcomes import (
    OutcomeKind,
    ProblemCategory,
    is_stock_conflict,
    needs_manual_correction,
)

MONTH_DAYS = 30
_RATE_PLACES = Decimal("0.0001")
_CENTS = Decimal("0.01")


class _Figures(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class AccuracyFigures(_Figures):
    """Booked orders whose ERP total equals the total promised at intake."""

    since: datetime
    until: datetime
    booked: int
    repriced: int
    rejected_at_booking: int
    # None when nothing was booked: no orders is not 100 % accuracy.
    rate: Decimal | None


class BookingSurprise(_Figures):
    """An order accepted at intake that the ERP repriced or refused."""

    order_id: str
    customer: str
    day: date
    kind: str
    currency: str
    intake_total: Decimal
    erp_total: Decimal | None
    reason: str | None
    decided_at: datetime


def _empty_categories() -> dict[str, int]:
    return {str(category): 0 for category in ProblemCategory}


class DayImpact(_Figures):
    day: date
    caught: dict[str, int]
    caught_orders: int = 0
    booked: int = 0
    repriced: int = 0
    failed_at_booking: int = 0
    # Held for approval instead of refused, approved and booked (also counted in booked).
    saved_by_approval: int = 0
    # Accepted with backordered quantities instead of refused for insufficient stock, then
    # booked (also counted in booked; an approved one is counted in both).
    saved_by_backorder: int = 0
    rejected_at_approval: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reached_erp(self) -> int:
        """Problems intake did not catch: repriced or refused at booking."""
        return self.repriced + self.failed_at_booking


class ImpactTotals(_Figures):
    caught: dict[str, int]
    caught_orders: int
    caught_corrections: int
    caught_stock_conflicts: int
    booked: int
    repriced: int
    failed_at_booking: int
    reached_erp: int
    saved_by_approval: int
    saved_by_backorder: int
    rejected_at_approval: int


class ImpactReport(_Figures):
    currency: str
    days: int
    first_day: date
    last_day: date
    observed_days: int
    per_day: list[DayImpact]
    totals: ImpactTotals
    cost_per_manual_correction: Decimal
    cost_per_oversold_order: Decimal
    estimated_cost_avoided_per_month: Decimal
    formula: str


def _in_window(row: OutcomeRow, since: datetime, until: datetime) -> bool:
    return since <= row.created_at < until


async def _rows(tables: TableStorage, since: datetime, until: datetime) -> list[OutcomeRow]:
    found = []
    async for row in outcomes_between(tables, since.date(), until.date()):
        if _in_window(row, since, until):
            found.append(row)
    return found


async def accuracy(
    tables: TableStorage, since: datetime, until: datetime | None = None
) -> AccuracyFigures:
    """Of the orders taken in [since, until), how many booked at the promised total."""
    end = until or datetime.now(UTC)
    rows = await _rows(tables, since, end)
    booked = [row for row in rows if row.kind is OutcomeKind.BOOKED]
    repriced = sum(1 for row in booked if row.repriced)
    failed = sum(1 for row in rows if row.kind is OutcomeKind.FAILED_AT_BOOKING)
    rate = (
        (Decimal(len(booked) - repriced) / Decimal(len(booked))).quantize(_RATE_PLACES)
        if booked
        else None
    )
    return AccuracyFigures(
        since=since,
        until=end,
        booked=len(booked),
        repriced=repriced,
        rejected_at_booking=failed,
        rate=rate,
    )


def _surprise(row: OutcomeRow) -> BookingSurprise:
    return BookingSurprise(
        order_id=row.order_id,
        customer=row.customer,
        day=row.day,
        kind="repriced" if row.kind is OutcomeKind.BOOKED else "rejected-at-booking",
        currency=row.currency,
        intake_total=row.intake_total,
        erp_total=row.erp_total,
        reason=row.reason or None,
        decided_at=row.decided_at,
    )


async def booking_surprises(
    tables: TableStorage, since: datetime, limit: int
) -> list[BookingSurprise]:
    """Orders taken since ``since`` that intake accepted but booking repriced or refused,
    newest decision first, at most ``limit``."""
    rows = await _rows(tables, since, datetime.now(UTC) + timedelta(days=1))
    surprising = [row for row in rows if row.repriced or row.kind is OutcomeKind.FAILED_AT_BOOKING]
    surprising.sort(key=lambda row: row.decided_at, reverse=True)
    return [_surprise(row) for row in surprising[: max(limit, 0)]]


def _count(day: DayImpact, row: OutcomeRow) -> DayImpact:
    if row.kind is OutcomeKind.REJECTED_AT_INTAKE:
        caught = dict(day.caught)
        for category in row.categories:
            caught[str(category)] += 1
        return day.model_copy(update={"caught": caught, "caught_orders": day.caught_orders + 1})
    if row.kind is OutcomeKind.BOOKED:
        return day.model_copy(
            update={
                "booked": day.booked + 1,
                "repriced": day.repriced + int(row.repriced),
                "saved_by_approval": day.saved_by_approval + int(row.approved),
                "saved_by_backorder": day.saved_by_backorder + int(row.backordered),
            }
        )
    if row.kind is OutcomeKind.REJECTED_AT_APPROVAL:
        return day.model_copy(update={"rejected_at_approval": day.rejected_at_approval + 1})
    return day.model_copy(update={"failed_at_booking": day.failed_at_booking + 1})


async def impact_report(
    tables: TableStorage, policy: SyncPolicy, days: int = 30, now: datetime | None = None
) -> ImpactReport:
    """Problems caught at intake vs problems that reached the ERP, per day over the last
    ``days`` UTC days (today included), and the estimated cost avoided per month."""
    if days < 1:
        raise ValueError("days must be at least 1")
    moment = now or datetime.now(UTC)
    last_day = moment.date()
    first_day = last_day - timedelta(days=days - 1)
    since = datetime.combine(first_day, datetime.min.time(), UTC)
    rows = await _rows(tables, since, since + timedelta(days=days))
    per_day = {
        first_day + timedelta(days=n): DayImpact(
            day=first_day + timedelta(days=n), caught=_empty_categories()
        )
        for n in range(days)
    }
    for row in rows:
        per_day[row.day] = _count(per_day[row.day], row)
    caught_rows = [row for row in rows if row.kind is OutcomeKind.REJECTED_AT_INTAKE]
    corrections = sum(1 for row in caught_rows if needs_manual_correction(row.categories))
    stock_conflicts = sum(1 for row in caught_rows if is_stock_conflict(row.categories))
    totals = ImpactTotals(
        caught={
            name: sum(day.caught[name] for day in per_day.values()) for name in _empty_categories()
        },
        caught_orders=len(caught_rows),
        caught_corrections=corrections,
        caught_stock_conflicts=stock_conflicts,
        booked=sum(day.booked for day in per_day.values()),
        repriced=sum(day.repriced for day in per_day.values()),
        failed_at_booking=sum(day.failed_at_booking for day in per_day.values()),
        reached_erp=sum(day.reached_erp for day in per_day.values()),
        saved_by_approval=sum(day.saved_by_approval for day in per_day.values()),
        saved_by_backorder=sum(day.saved_by_backorder for day in per_day.values()),
        rejected_at_approval=sum(day.rejected_at_approval for day in per_day.values()),
    )
    # Observed from the first day with any outcome: days before the ledger existed are not
    # days without problems.
    observed = (last_day - min(row.day for row in rows)).days + 1 if rows else 0
    costs = policy.impact
    avoided = (
        corrections * costs.cost_per_manual_correction
        + stock_conflicts * costs.cost_per_oversold_order
    )
    monthly = (avoided * MONTH_DAYS / observed).quantize(_CENTS) if observed else Decimal("0.00")
    formula = (
        f"({corrections} caught corrections x {costs.cost_per_manual_correction} "
        f"+ {stock_conflicts} caught stock conflicts x {costs.cost_per_oversold_order}) "
        f"x {MONTH_DAYS} / {observed} observed days = {monthly} {costs.currency} per month"
        if observed
        else f"no order outcomes recorded in the last {days} days: 0.00 {costs.currency}"
    )
    return ImpactReport(
        currency=costs.currency,
        days=days,
        first_day=first_day,
        last_day=last_day,
        observed_days=observed,
        per_day=list(per_day.values()),
        totals=totals,
        cost_per_manual_correction=costs.cost_per_manual_correction,
        cost_per_oversold_order=costs.cost_per_oversold_order,
        estimated_cost_avoided_per_month=monthly,
        formula=formula,
    )
