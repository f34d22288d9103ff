"""The ERP's sales-order demand in available-to-sell, and the hand-over from hold to demand.

The oversell this guards against: an order's pending hold was released when the ERP booked
it, but the projection never counted the ERP's open sales-order demand, so the units came
back into availability and were sold again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.stock import (
    BookedDemand,
    ChannelAllocation,
    ErpStockFigures,
    InsufficientStock,
    ReconcileOutcome,
    StockPosition,
    apply_correction,
    available_to_sell,
    channel_availability,
    hand_over,
    position_from_record,
    position_to_record,
    reconcile,
    release,
    reserve,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def stock(
    on_hand: int = 0,
    demand: int = 0,
    reserved: int = 0,
    expected: int = 0,
    safety: int = 0,
) -> StockPosition:
    return StockPosition(
        sku="SKU-1",
        location="MAIN",
        on_hand=Decimal(on_hand),
        erp_demand=Decimal(demand),
        erp_reserved=Decimal(reserved),
        expected=Decimal(expected),
        safety_stock=Decimal(safety),
    )


def read(position: StockPosition, figures: ErpStockFigures, at: datetime) -> StockPosition:
    """Apply one ERP read the way the inventory handler does."""
    found = reconcile(position, figures, at)
    return position if found.correction is None else apply_correction(position, found.correction)


class TestFormula:
    def test_every_figure_counts_once(self) -> None:
        position = replace(
            stock(on_hand=100, demand=30, reserved=5, safety=2),
            reservations={"o-1": Decimal(7)},
            booked={"o-2": BookedDemand(Decimal(4), T0)},
        )
        # 100 - (30 + 4) - 5 - 7 - 2
        assert available_to_sell(position) == Decimal(52)
        assert position.demand == Decimal(34)
        assert position.committed == Decimal(46)

    def test_expected_receipts_count_only_when_asked(self) -> None:
        position = stock(on_hand=10, demand=12, expected=50)
        assert available_to_sell(position) == 0
        assert available_to_sell(position, with_expected=True) == Decimal(48)

    def test_channel_that_sells_expected_receipts_shows_them_in_its_total(self) -> None:
        position = stock(on_hand=10, demand=4, expected=20)
        plain = channel_availability("SKU-1", [position], ChannelAllocation("web", None))
        ahead = channel_availability("SKU-1", [position], ChannelAllocation("b2b", None, True))
        assert (plain.available, ahead.available) == (Decimal(6), Decimal(26))
        assert plain.locations[0].expected == ahead.locations[0].expected == Decimal(20)

    def test_negative_erp_demand_never_adds_stock(self) -> None:
        assert available_to_sell(stock(on_hand=5, demand=-3)) == Decimal(5)

    def test_reserve_refuses_what_the_erp_demand_already_took(self) -> None:
        position = stock(on_hand=517, demand=516)
        assert reserve(position, Decimal(1), "o-1").available_after == 0
        try:
            reserve(position, Decimal(2), "o-2")
        except InsufficientStock as refused:
            assert refused.available == Decimal(1)
        else:
            raise AssertionError("reserved more than on hand minus demand")


class TestHandOver:
    def test_booking_keeps_the_units_out_of_availability(self) -> None:
        held = reserve(stock(on_hand=517), Decimal(516), "o-1").position
        handed = hand_over(held, "o-1", T0)
        assert handed.changed
        assert handed.available_before == handed.available_after == Decimal(1)
        assert handed.position.reservations == {}
        assert handed.position.booked == {"o-1": BookedDemand(Decimal(516), T0)}

    def test_hand_over_twice_changes_nothing(self) -> None:
        held = reserve(stock(on_hand=10), Decimal(3), "o-1").position
        once = hand_over(held, "o-1", T0).position
        again = hand_over(once, "o-1", T0 + timedelta(seconds=5))
        assert not again.changed and again.position == once

    def test_read_before_the_booking_does_not_drop_the_booked_demand(self) -> None:
        handed = hand_over(reserve(stock(on_hand=10), Decimal(3), "o-1").position, "o-1", T0)
        # Sent before the booking was confirmed: the ERP's demand may lack the order.
        after = read(handed.position, ErpStockFigures(Decimal(10), Decimal(0), Decimal(0)), T0)
        assert after.demand == Decimal(3)
        assert available_to_sell(after) == Decimal(7)

    def test_read_after_the_booking_replaces_the_booked_demand(self) -> None:
        handed = hand_over(reserve(stock(on_hand=10), Decimal(3), "o-1").position, "o-1", T0)
        later = T0 + timedelta(seconds=1)
        found = reconcile(
            handed.position, ErpStockFigures(Decimal(10), Decimal(0), Decimal(3)), later
        )
        assert found.outcome is ReconcileOutcome.CONFIRMED
        assert found.correction is not None and found.correction.confirmed_orders == {"o-1"}
        after = apply_correction(handed.position, found.correction)
        assert after.booked == {} and after.erp_demand == Decimal(3)
        assert available_to_sell(after) == Decimal(7)

    def test_read_applied_before_the_hand_over_write_is_not_counted_twice(self) -> None:
        held = reserve(stock(on_hand=10), Decimal(3), "o-1").position
        # The ERP read (already holding the order) lands before the booking's own write.
        read_first = read(
            held, ErpStockFigures(Decimal(10), Decimal(0), Decimal(3)), T0 + timedelta(seconds=2)
        )
        assert available_to_sell(read_first) == Decimal(4)  # hold and demand, briefly both
        handed = hand_over(read_first, "o-1", T0)
        assert handed.position.booked == {}
        assert available_to_sell(handed.position) == Decimal(7)

    def test_cancelled_booking_gives_the_units_back_once(self) -> None:
        handed = hand_over(reserve(stock(on_hand=10), Decimal(3), "o-1").position, "o-1", T0)
        cancelled = read(
            handed.position, ErpStockFigures(Decimal(10), Decimal(0), Decimal(0)), T0 + timedelta(1)
        )
        assert available_to_sell(cancelled) == Decimal(10)
        assert release(cancelled, "o-1").changed is False

    def test_shipment_moves_units_out_of_on_hand_and_demand_together(self) -> None:
        position = read(stock(on_hand=10), ErpStockFigures(Decimal(10), Decimal(0), Decimal(6)), T0)
        shipped = read(
            position,
            ErpStockFigures(Decimal(4), Decimal(0), Decimal(0)),
            T0 + timedelta(minutes=1),
        )
        assert available_to_sell(position) == available_to_sell(shipped) == Decimal(4)

    def test_read_without_demand_keeps_the_figures_it_does_not_carry(self) -> None:
        handed = hand_over(
            reserve(stock(on_hand=10, demand=2), Decimal(3), "o-1").position, "o-1", T0
        )
        after = read(handed.position, ErpStockFigures(Decimal(9), Decimal(0)), T0 + timedelta(1))
        assert after.erp_demand == Decimal(2) and after.booked == handed.position.booked
        assert after.demand_as_of is None


class TestRecords:
    def test_demand_figures_round_trip(self) -> None:
        position = replace(
            stock(on_hand=8, demand=3, expected=12),
            booked={"o-9": BookedDemand(Decimal("2.5"), T0)},
            demand_as_of=T0 - timedelta(minutes=1),
        )
        assert position_from_record(position_to_record(position)) == position

    def test_record_written_before_demand_existed_reads_as_no_demand(self) -> None:
        record = position_to_record(stock(on_hand=8))
        for name in ("erpDemand", "expected", "booked", "demandAsOf"):
            record.pop(name)
        assert position_from_record(record) == stock(on_hand=8)


@settings(max_examples=300, deadline=None)
@given(
    base=st.integers(0, 50),
    quantity=st.integers(1, 20),
    commit_lag=st.integers(0, 5),
    reads=st.lists(st.tuples(st.integers(-20, 40), st.integers(0, 60)), max_size=6),
    hand_over_at=st.integers(0, 60),
)
def test_hand_over_never_gaps_and_never_double_counts(
    base: int,
    quantity: int,
    commit_lag: int,
    reads: list[tuple[int, int]],
    hand_over_at: int,
) -> None:
    """Any interleaving of ERP reads with the booking's hand-over write.

    The ERP commits the order at `commit` and the booking records it `commit_lag` seconds
    later (`booked_at`); each read is *sent* at some second (its answer holds the order iff
    sent after the commit) and *applied* at another. Invariants, once the hand-over is
    written: the projection's demand never lacks the order (no gap), and after any applied
    read sent after `booked_at` it equals the ERP's demand exactly (no double count).
    """
    on_hand = Decimal(base + quantity + 100)
    commit = T0 + timedelta(seconds=10)
    booked_at = commit + timedelta(seconds=commit_lag)
    truth = Decimal(base + quantity)

    def erp_demand_at(sent: datetime) -> Decimal:
        return truth if sent >= commit else Decimal(base)

    position = reserve(stock(on_hand=int(on_hand), demand=base), Decimal(quantity), "o-1").position
    steps: list[tuple[int, str, datetime | None]] = [(hand_over_at, "hand-over", None)]
    steps += [(applied, "read", commit + timedelta(seconds=sent)) for sent, applied in reads]
    confirmed_read = False
    for _, step, sent in sorted(steps, key=lambda s: (s[0], s[1] == "read")):
        if step == "hand-over":
            position = hand_over(position, "o-1", booked_at).position
        else:
            assert sent is not None
            figures = ErpStockFigures(on_hand, Decimal(0), erp_demand_at(sent))
            position = read(position, figures, sent)
        handed = "o-1" not in position.reservations
        counted = position.demand + position.pending_reserved
        assert counted >= truth, "the order's units came back into availability"
        if handed and position.demand_as_of is not None and position.demand_as_of > booked_at:
            confirmed_read = True
        if confirmed_read and handed:
            assert position.demand == truth, "the order's demand is counted twice"
