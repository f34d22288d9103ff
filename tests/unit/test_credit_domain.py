"""Credit rules: the assessment, pending holds that cannot overrun the limit, conversion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.credit import (
    CreditFigures,
    CreditPolicy,
    CreditReason,
    CreditRefused,
    HoldConflict,
    InvalidCreditInput,
    PendingCredit,
    assess_credit,
    hold_credit,
    release_credit,
    to_lcy,
)

D = Decimal
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = CreditPolicy(overdue_tolerance=D(100), replica_lag=timedelta(seconds=30))


def figures(
    *,
    limit: str = "1000",
    balance: str = "200",
    open_orders: str = "100",
    overdue: str = "0",
    blocked: str = " ",
    as_of: datetime = NOW,
) -> CreditFigures:
    return CreditFigures("C1", D(limit), D(balance), D(open_orders), D(overdue), blocked, as_of)


def test_available_credit_is_limit_minus_balance_open_orders_and_pending() -> None:
    result = assess_credit(figures(), D(50), D(600), POLICY)
    assert result.available == D(650)
    assert result.approved and result.reasons == ()
    assert assess_credit(figures(), D(50), D(650), POLICY).approved  # exactly the rest
    over = assess_credit(figures(), D(50), D("650.01"), POLICY)
    assert over.reasons == (CreditReason.OVER_LIMIT,)


def test_a_zero_limit_means_no_limit() -> None:
    result = assess_credit(figures(limit="0", balance="9999999"), D(500), D(10**9), POLICY)
    assert result.approved and result.unlimited and result.available is None


@pytest.mark.parametrize(
    ("blocked", "refused"), [("All", True), ("Ship", True), ("Invoice", False)]
)
def test_blocked_for_orders_only_when_the_erp_would_refuse_an_order(
    blocked: str, refused: bool
) -> None:
    result = assess_credit(figures(blocked=blocked), D(0), D(1), POLICY)
    assert (CreditReason.BLOCKED in result.reasons) is refused
    assert result.blocked == blocked


def test_overdue_counts_only_beyond_the_tolerance() -> None:
    assert assess_credit(figures(overdue="100"), D(0), D(1), POLICY).approved
    late = assess_credit(figures(overdue="100.01"), D(0), D(1), POLICY)
    assert late.reasons == (CreditReason.OVERDUE,)


def test_every_reason_is_listed_not_only_the_first() -> None:
    result = assess_credit(figures(blocked="All", overdue="500"), D(0), D(5000), POLICY)
    assert set(result.reasons) == {
        CreditReason.BLOCKED,
        CreditReason.OVER_LIMIT,
        CreditReason.OVERDUE,
    }


def test_floats_and_naive_times_are_refused() -> None:
    with pytest.raises(InvalidCreditInput):
        CreditFigures("C1", 1000.0, D(0), D(0), D(0), "", NOW)  # type: ignore[arg-type]
    with pytest.raises(InvalidCreditInput):
        CreditFigures("C1", D(1000), D(0), D(0), D(0), "", datetime(2026, 1, 1))


def test_a_hold_is_idempotent_per_order_and_a_changed_amount_conflicts() -> None:
    empty = PendingCredit("C1")
    first = hold_credit(empty, "O1", D(300), figures(), POLICY)
    assert first.changed and first.pending.held == D(300)
    again = hold_credit(first.pending, "O1", D(300), figures(), POLICY)
    assert not again.changed and again.pending == first.pending
    with pytest.raises(HoldConflict):
        hold_credit(first.pending, "O1", D(301), figures(), POLICY)


def test_holds_of_other_orders_count_against_the_limit() -> None:
    pending = hold_credit(PendingCredit("C1"), "O1", D(600), figures(), POLICY).pending
    with pytest.raises(CreditRefused) as refused:
        hold_credit(pending, "O2", D(101), figures(), POLICY)
    assert refused.value.assessment.available == D(100)
    assert hold_credit(pending, "O2", D(100), figures(), POLICY).changed


def test_a_booked_release_still_counts_for_readings_taken_before_it() -> None:
    pending = hold_credit(PendingCredit("C1"), "O1", D(600), figures(), POLICY).pending
    released_at = NOW + timedelta(minutes=1)
    after = release_credit(pending, "O1", released_at, timedelta(minutes=10), booked=True).pending
    assert after.held == 0
    # A reading older than the release does not contain the booked order yet.
    assert after.pending_for(NOW, POLICY) == D(600)
    # A reading well after it (beyond the replica lag) does.
    assert after.pending_for(released_at + timedelta(seconds=31), POLICY) == 0
    assert after.pending_for(released_at + timedelta(seconds=29), POLICY) == D(600)


def test_a_dropped_order_is_forgotten_and_old_releases_are_pruned() -> None:
    pending = hold_credit(PendingCredit("C1"), "O1", D(600), figures(), POLICY).pending
    dropped = release_credit(pending, "O1", NOW, timedelta(minutes=10), booked=False).pending
    assert dropped.pending_for(NOW - timedelta(hours=1), POLICY) == 0
    booked = release_credit(pending, "O1", NOW, timedelta(minutes=10), booked=True).pending
    later = release_credit(
        booked, "O9", NOW + timedelta(minutes=11), timedelta(minutes=10), booked=True
    )
    assert later.changed and later.pending.released == {}
    assert not release_credit(later.pending, "O9", NOW, timedelta(1), booked=True).changed


def test_an_order_held_again_after_its_release_does_not_count_twice() -> None:
    pending = hold_credit(PendingCredit("C1"), "O1", D(600), figures(), POLICY).pending
    booked_then_again = release_credit(pending, "O1", NOW, timedelta(minutes=10), booked=True)
    again = hold_credit(booked_then_again.pending, "O1", D(600), figures(), POLICY)
    assert again.pending.held == D(600) and "O1" not in again.pending.released


@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30))
def test_holds_taken_one_after_another_never_exceed_the_limit(amounts: list[int]) -> None:
    reading = figures(limit="1000", balance="250", open_orders="50")
    pending = PendingCredit("C1")
    for number, amount in enumerate(amounts):
        try:
            pending = hold_credit(pending, f"O{number}", D(amount), reading, POLICY).pending
        except CreditRefused as refused:
            assert refused.assessment.available is not None
            assert D(amount) > refused.assessment.available
    assert pending.held <= D(1000 - 250 - 50)


@pytest.mark.parametrize(
    ("amount", "rate", "lcy"),
    [
        ("100.00", "1.08", "108.00"),
        ("0.005", "1", "0.01"),
        ("0.004", "1", "0.00"),
        ("12.34", "0.0067", "0.08"),
    ],
)
def test_conversion_rounds_half_up_to_cents(amount: str, rate: str, lcy: str) -> None:
    assert to_lcy(D(amount), D(rate)) == D(lcy)


def test_conversion_needs_a_positive_rate() -> None:
    with pytest.raises(InvalidCreditInput):
        to_lcy(D(1), D(0))
