"""Pure parts of the integration audit: checksums, comparison, truncation, percentiles,
sampling, verdicts, usage deltas, subscription expiry and the HTML page."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.audit_cli import UsageError, parse_layers
from shared.adapters.erp.breaker import BreakerState
from shared.adapters.erp.models import Subscription
from shared.adapters.erp.request_pipeline import ErpCounters
from shared.adapters.stores.erp_usage import delta
from shared.services.operations.audit.checksums import (
    Accumulator,
    RowState,
    compare_rows,
    row_hash,
    truncated,
)
from shared.services.operations.audit.connectivity import subscription_states
from shared.services.operations.audit.html import render_html
from shared.services.operations.audit.models import (
    AuditReport,
    ConnectivityLayer,
    Latency,
    LogicLayer,
    PrincipalUsage,
    QuoteCheck,
    RowIssue,
    Usage,
)
from shared.services.operations.audit.sampling import sample_triples
from shared.services.operations.audit.stats import NoSamples, budget_share, percentile
from shared.services.operations.audit.verdicts import connectivity_verdict, logic_verdict
from shared.services.operations.impact import DayImpact, ImpactReport, ImpactTotals

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _digest(rows: list[tuple[str, list[object]]]) -> str:
    total = Accumulator()
    for key, fields in rows:
        total.add(row_hash(key, fields))
    return total.digest().checksum


@given(st.lists(st.tuples(st.text(max_size=8), st.integers()), max_size=30), st.randoms())
def test_checksum_ignores_row_order(rows: list[tuple[str, int]], rnd: random.Random) -> None:
    as_rows = [(key, [value]) for key, value in rows]
    shuffled = list(as_rows)
    rnd.shuffle(shuffled)
    assert _digest(as_rows) == _digest(shuffled)


def test_checksum_sees_a_changed_field_a_duplicate_and_decimal_spelling() -> None:
    base = [("A", [Decimal("10.50"), "PCS"]), ("B", [Decimal(1), "BOX"])]
    assert _digest(base) != _digest([("A", [Decimal("10.51"), "PCS"]), base[1]])
    # A repeated row must not cancel out (it would with XOR).
    assert _digest([*base, base[0], base[0]]) != _digest(base)
    # The same quantity written two ways is the same row.
    assert row_hash("A", [Decimal("10.50")]) == row_hash("A", [Decimal("10.5000")])


def test_truncation_keeps_the_first_n_by_key_and_the_total() -> None:
    issues = [RowIssue(key=f"K{n:03d}", over_policy=True) for n in (5, 1, 9, 3, 7)]
    listing = truncated(issues, 3)
    assert listing.total == 5
    assert [row.key for row in listing.rows] == ["K001", "K003", "K005"]
    assert truncated(issues, 0).rows == []


def test_compare_classifies_missing_extra_and_differing_against_the_objective() -> None:
    old, recent = NOW - 2 * HOUR, NOW - timedelta(minutes=5)
    erp = {
        "same": RowState(1, old),
        "changed-old": RowState(2, old),
        "changed-new": RowState(3, recent),
        "new": RowState(4, recent),
        "unknown-age": RowState(5, None),
    }
    product = {
        "same": RowState(1, old),
        "changed-old": RowState(20, old),
        "changed-new": RowState(30, old),
        "gone": RowState(6, old),
    }
    result = compare_rows(
        "x", "y", erp, product, now=NOW, objective=timedelta(minutes=15), limit=10
    )
    assert [r.key for r in result.missing.rows] == ["new", "unknown-age"]
    assert {r.key: r.over_policy for r in result.missing.rows} == {
        "new": False,
        "unknown-age": True,
    }
    assert {r.key: r.over_policy for r in result.differing.rows} == {
        "changed-new": False,
        "changed-old": True,
    }
    assert [r.key for r in result.extra.rows] == ["gone"] and result.extra.rows[0].over_policy
    assert result.over_policy == 3
    assert not result.in_sync and result.erp.count == 5 and result.product.count == 4


def test_compare_of_equal_sides_is_in_sync() -> None:
    rows = {"a": RowState(7, None), "b": RowState(8, NOW)}
    result = compare_rows("x", "y", rows, dict(rows), now=NOW, objective=HOUR, limit=5)
    assert result.in_sync and result.over_policy == 0 and result.erp == result.product


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [float(v) for v in range(10, 110, 10)]  # 10 .. 100
    assert percentile(values, 0.5) == pytest.approx(55.0)
    assert percentile(values, 0.99) == pytest.approx(99.1)
    assert percentile(list(reversed(values)), 0.0) == 10.0
    assert percentile([42.0], 0.99) == 42.0
    with pytest.raises(NoSamples):
        percentile([], 0.5)


def test_budget_share_is_a_decimal_fraction() -> None:
    assert budget_share(1500, 6000) == Decimal("0.2500")
    assert budget_share(1, 6000) == Decimal("0.0002")
    with pytest.raises(ValueError):
        budget_share(1, 0)


def test_sampling_is_deterministic_distinct_and_mixes_quantity_breaks() -> None:
    customers = [f"C{n}" for n in range(8)]
    items = [f"I{n}" for n in range(30)]
    breaks = {"I3": [Decimal(10)], "I7": [Decimal(25), Decimal(50)]}
    first = sample_triples(customers, items, breaks, 20, seed=9)
    assert first == sample_triples(list(reversed(customers)), items, breaks, 20, seed=9)
    assert first != sample_triples(customers, items, breaks, 20, seed=10)
    assert len(first) == len(set(first)) == 20
    on_breaks = [
        t
        for t in first
        if t.item in breaks and t.quantity in {q for b in breaks[t.item] for q in (b, b - 1)}
    ]
    # Every other triple is drawn on a break (or one below it), the rest are everyday sizes.
    assert len(on_breaks) >= len(first) // 2
    assert sample_triples([], items, breaks, 5, seed=1) == []


def test_logic_verdict_against_the_accuracy_objective() -> None:
    assert logic_verdict(50, Decimal("0.99"), 0, Decimal("0.99")).passed
    failed = logic_verdict(50, Decimal("0.98"), 0, Decimal("0.99"))
    assert not failed.passed and "98.00 %" in failed.reasons[0]
    assert not logic_verdict(0, None, 0, Decimal("0.99")).passed
    assert not logic_verdict(50, Decimal(1), 2, Decimal("0.99")).passed


def _counters(sent: int, throttled: int = 0, openings: int = 0) -> ErpCounters:
    return ErpCounters(sent, throttled, 0, 0, 0, 0, 0, openings, BreakerState.CLOSED, 0)


def test_usage_delta_between_snapshots_and_after_a_restart() -> None:
    assert delta(None, _counters(5, 1)).requests_sent == 5
    change = delta(_counters(5, 1), _counters(12, 3, 1))
    assert (change.requests_sent, change.throttled_responses, change.breaker_openings) == (7, 2, 1)
    # A new client restarts at zero: what it has counted is all new.
    assert delta(_counters(500), _counters(3)).requests_sent == 3


def _subscription(resource: str, expires: datetime | None, url: str = "http://me") -> Subscription:
    return Subscription(
        subscription_id=f"s-{resource}",
        notification_url=url,
        resource=f"api/v2.0/companies(1)/{resource}",
        expiration_date_time=expires,
    )


def test_subscriptions_need_one_per_resource_expiring_in_more_than_a_day() -> None:
    found = subscription_states(
        [
            _subscription("items", NOW + timedelta(days=2)),
            _subscription("priceListLines", NOW + timedelta(hours=20)),
            _subscription("itemAvailabilityByLocation", NOW + timedelta(days=2), "http://other"),
        ],
        "http://me",
        ["items", "priceListLines", "itemAvailabilityByLocation"],
        NOW,
    )
    assert [(s.resource, s.ok) for s in found] == [
        ("items", True),
        ("priceListLines", False),
        ("itemAvailabilityByLocation", False),
    ]
    assert found[0].hours_left == Decimal("48.0")
    assert "within a day" in (found[1].problem or "")
    assert found[2].problem == "no subscription"


def test_layers_argument() -> None:
    assert parse_layers("logic,data") == ("data", "logic")
    for bad in ("", "data,everything"):
        with pytest.raises(UsageError):
            parse_layers(bad)


class _Tables(HTMLParser):
    """The page's tables as rows of cell texts, so a test reads figures, not markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _page_tables(page: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def _impact(days: list[DayImpact]) -> ImpactReport:
    def total(field: str) -> int:
        return sum(getattr(day, field) for day in days)

    categories = {"stock": 0}
    return ImpactReport(
        currency="USD",
        days=len(days),
        first_day=days[0].day,
        last_day=days[-1].day,
        observed_days=len(days),
        per_day=days,
        totals=ImpactTotals(
            caught=categories,
            caught_orders=total("caught_orders"),
            caught_corrections=0,
            caught_stock_conflicts=0,
            booked=total("booked"),
            repriced=total("repriced"),
            failed_at_booking=total("failed_at_booking"),
            reached_erp=total("reached_erp"),
            saved_by_approval=total("saved_by_approval"),
            saved_by_backorder=total("saved_by_backorder"),
            rejected_at_approval=total("rejected_at_approval"),
        ),
        cost_per_manual_correction=Decimal("25"),
        cost_per_oversold_order=Decimal("40"),
        estimated_cost_avoided_per_month=Decimal("0.00"),
        formula="<b>0</b> caught corrections & more",
    )


def test_html_escapes_erp_values_and_shows_both_prices_and_the_impact_counts() -> None:
    check = QuoteCheck(
        customer="C<1>",
        item="R&D+1 <script>",
        quantity=Decimal(3),
        product_unit_price=Decimal("10.00"),
        erp_unit_price=Decimal("17.00"),
        agrees=False,
    )
    logic = LogicLayer(
        seed=1,
        sample_size=1,
        compared=1,
        agreed=0,
        accuracy=Decimal(0),
        mismatches=[check],
        mismatch_total=1,
        errors=[],
        quotes_created=1,
        quotes_deleted=1,
        seconds=0.1,
        verdict=logic_verdict(1, Decimal(0), 0, Decimal("0.99")),
    )
    report = AuditReport(
        run_id="r1",
        started_at=NOW,
        finished_at=NOW,
        layers=["logic"],
        passed=False,
        verdicts=[logic.verdict],
        logic=logic,
    )
    # Three days: orders saved by approval and by backorder, a quiet day, and a day with only
    # held orders rejected or expired. The figures differ so a swapped column would show.
    first = date(2026, 2, 27)
    days = [
        DayImpact(
            day=first,
            caught={"stock": 0},
            booked=9,
            repriced=1,
            saved_by_approval=3,
            saved_by_backorder=5,
            rejected_at_approval=2,
        ),
        DayImpact(day=first + timedelta(days=1), caught={"stock": 0}),
        DayImpact(day=first + timedelta(days=2), caught={"stock": 0}, rejected_at_approval=4),
    ]
    report = report.model_copy(update={"impact": _impact(days)})
    page = render_html(report)
    assert "<script>" not in page and "R&amp;D+1 &lt;script&gt;" in page
    assert "10.00" in page and "17.00" in page and "logic: FAIL" in page
    assert "<b>0</b>" not in page and "&lt;b&gt;0&lt;/b&gt; caught corrections &amp; more" in page

    tables = _page_tables(page)
    totals = dict(next(t for t in tables if t[0] == ["figure", "count"])[1:])
    assert totals["orders saved by approval (booked)"] == "3"
    assert totals["orders saved by backorder (booked)"] == "5"
    assert totals["held orders rejected or expired"] == "6"
    per_day = next(t for t in tables if t[0][0] == "day")
    by_day = [dict(zip(per_day[0], row, strict=True)) for row in per_day[1:]]
    shown = [
        (
            row["day"],
            row["saved by approval"],
            row["saved by backorder"],
            row["rejected or expired at approval"],
        )
        for row in by_day
    ]
    assert shown == [("2026-02-27", "3", "5", "2"), ("2026-03-01", "0", "0", "4")]


def _usage(*principals: tuple[str, int, str]) -> Usage:
    """Usage of principals (label, window requests, breaker state), the default one first."""
    each = [
        PrincipalUsage(
            principal=name,
            window_requests=sent,
            budget=6000,
            budget_share=budget_share(sent, 6000),
            day_requests=sent,
            day_throttled=0,
            day_retries=0,
            day_breaker_openings=0,
            breaker_state=state,
        )
        for name, sent, state in principals
    ]
    total = sum(p.window_requests for p in each)
    return Usage(
        window_seconds=300,
        window_requests=total,
        budget=6000 * len(each),
        budget_share=budget_share(total, 6000 * len(each)),
        day_requests=total,
        day_throttled=0,
        day_retries=0,
        day_breaker_openings=0,
        breaker_state=each[0].breaker_state or "closed",
        principals=each,
    )


def _connectivity(usage: Usage) -> ConnectivityLayer:
    verdict = connectivity_verdict(
        Latency(probes=1, failures=0, p50_ms=Decimal(5), p99_ms=Decimal(5)),
        usage,
        [],
        [],
        p99_objective=timedelta(seconds=1),
        budget_share_objective=Decimal("0.5"),
        max_dead_letters=0,
    )
    return ConnectivityLayer(
        latency=Latency(probes=1, failures=0),
        usage=usage,
        queues=[],
        subscriptions=[],
        seconds=0.1,
        verdict=verdict,
    )


def test_budget_verdict_looks_at_each_principal_since_the_erp_throttles_each_on_its_own() -> None:
    # 3,500 + 100 is 30 % of both budgets, but the default principal alone is at 58 %.
    over = _connectivity(_usage(("default", 3500, "closed"), ("app-b", 100, "open")))
    assert not over.verdict.passed
    assert any("principal default: 58.33 % of 6000" in r for r in over.verdict.reasons)
    assert not any("principal app-b: " in r and "budget" in r for r in over.verdict.reasons)
    assert "ERP circuit breaker of principal app-b is open" in over.verdict.reasons
    fine = _connectivity(_usage(("default", 2000, "closed"), ("app-b", 2900, "closed")))
    assert fine.verdict.passed
    # One principal: the reason reads as before, on the total.
    alone = _connectivity(_usage(("default", 3100, "closed")))
    assert alone.verdict.reasons == [
        "ERP budget: 51.67 % of 6000 requests used in the last 5 min > objective 50.00 %"
    ]


def test_html_lists_each_principal_and_the_total() -> None:
    layer = _connectivity(_usage(("default", 30, "closed"), ("app-<b>", 12, "open")))
    report = AuditReport(
        run_id="r2",
        started_at=NOW,
        finished_at=NOW,
        layers=["connectivity"],
        passed=False,
        verdicts=[layer.verdict],
        connectivity=layer,
    )
    page = render_html(report)
    assert "ERP requests per principal" in page
    assert "<td>app-&lt;b&gt;</td>" in page and "12 of 6000" in page and "0.20 %" in page
    assert "<td>total</td>" in page and "42 of 12000" in page and "0.35 %" in page
    # A stored report from before principals were reported still reads back and renders.
    old = layer.usage.model_dump(by_alias=True, exclude={"principals"})
    assert Usage.model_validate(old).principals == []
