"""Property tests of the stock domain: the fold is order-free and exact, and the derived rules
(available never negative, idempotent reservations, threshold alerts) hold for any input."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.stock import (
    CrossingDirection,
    InsufficientStock,
    InventoryEvent,
    InventoryEventKind,
    StockPosition,
    StockThresholds,
    apply_events,
    available_to_sell,
    release,
    reserve,
)
from shared.domain.stock.thresholds import AlertScope, detect_crossing
from tests.stock_model import fold_in_order

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NO_TIMEOUT = timedelta(days=365)
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

quantities = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(500), places=2)
signed_quantities = st.decimals(min_value=Decimal(-500), max_value=Decimal(500), places=2)
kinds = st.sampled_from(list(InventoryEventKind))


@st.composite
def source_streams(draw: st.DrawFn) -> list[InventoryEvent]:
    """What the source emits for one (sku, location): sequences 1..n, increasing times."""
    size = draw(st.integers(min_value=1, max_value=40))
    events = []
    for sequence in range(1, size + 1):
        kind = draw(kinds)
        quantity = draw(signed_quantities if kind is InventoryEventKind.ADJUSTED else quantities)
        events.append(
            InventoryEvent(
                event_id=f"evt-{sequence}",
                sku="SKU-1",
                location="MAIN",
                kind=kind,
                quantity=quantity,
                sequence=sequence,
                occurred_at=T0 + timedelta(seconds=sequence * 7),
                source="wms",
            )
        )
    return events


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[InventoryEvent], list[list[InventoryEvent]]]:
    """A stream, and how the broker delivers it: copies, any order, any batch split."""
    stream = draw(source_streams())
    copies = draw(st.lists(st.sampled_from(stream), max_size=len(stream)))
    arrival = draw(st.permutations(stream + copies))
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=len(arrival)), max_size=10)))
    bounds = zip([0, *cuts], [*cuts, len(arrival)], strict=True)
    batches = [arrival[start:end] for start, end in bounds]
    return stream, [batch for batch in batches if batch]


def start_position() -> StockPosition:
    return StockPosition.new("SKU-1", "MAIN", safety_stock=Decimal(3))


def fold_batches(
    batches: list[list[InventoryEvent]], hold_timeout: timedelta
) -> tuple[StockPosition, list[InventoryEvent]]:
    """The position after every batch, and the counts the fold found stale."""
    position = start_position()
    stale: list[InventoryEvent] = []
    for minute, batch in enumerate(batches):
        now = T0 + timedelta(minutes=minute)
        result = apply_events(position, batch, now, hold_timeout)
        position = result.new_position
        stale.extend(result.stale)
    return position, stale


def expected_quantities(stream: list[InventoryEvent]) -> tuple[Decimal, Decimal]:
    """Reference model (tests/stock_model.py): on hand and ERP reserved."""
    model = fold_in_order(stream)
    return model.on_hand, model.erp_reserved


@PROPERTY_SETTINGS
@given(deliveries())
def test_any_delivery_folds_to_the_in_order_result(
    delivery: tuple[list[InventoryEvent], list[list[InventoryEvent]]],
) -> None:
    stream, batches = delivery
    in_order = apply_events(start_position(), stream, T0, NO_TIMEOUT).new_position
    delivered, stale = fold_batches(batches, NO_TIMEOUT)

    assert delivered == in_order
    assert stale == []
    assert (delivered.on_hand, delivered.erp_reserved) == expected_quantities(stream)
    assert delivered.last_sequence == len(stream)
    assert delivered.held == ()
    assert delivered.missing == ()
    assert delivered.last_event_at == max(event.occurred_at for event in stream)


@PROPERTY_SETTINGS
@given(deliveries())
def test_each_event_is_consumed_exactly_once_across_batches(
    delivery: tuple[list[InventoryEvent], list[list[InventoryEvent]]],
) -> None:
    stream, batches = delivery
    position = start_position()
    consumed: list[str] = []
    for batch in batches:
        result = apply_events(position, batch, T0, NO_TIMEOUT)
        consumed.extend(result.consumed_event_ids)
        position = result.new_position
    assert sorted(consumed) == sorted(event.event_id for event in stream)


@PROPERTY_SETTINGS
@given(deliveries(), st.sampled_from([timedelta(0), timedelta(minutes=1), timedelta(minutes=3)]))
def test_skipped_gaps_still_converge_unless_a_count_straggles(
    delivery: tuple[list[InventoryEvent], list[list[InventoryEvent]]], hold_timeout: timedelta
) -> None:
    """With gaps skipped, the position converges to the in-order result of the stream; a
    count that arrives after deltas were folded onto another base is left out (stale, for
    reconciliation) and the result is the in-order result of the stream without it."""
    stream, batches = delivery
    delivered, stale = fold_batches(batches, hold_timeout)
    # Held events may still wait at the end; a final sweep lets every timeout expire.
    delivered = apply_events(delivered, [], T0 + timedelta(days=1), hold_timeout).new_position
    assert all(event.kind is InventoryEventKind.COUNTED for event in stale)
    stale_ids = {event.event_id for event in stale}
    kept = [event for event in stream if event.event_id not in stale_ids]
    assert (delivered.on_hand, delivered.erp_reserved) == expected_quantities(kept)
    assert delivered.held == ()


positions = st.builds(
    lambda on_hand, erp_reserved, safety, pending: StockPosition(
        sku="SKU-1",
        location="MAIN",
        on_hand=on_hand,
        erp_reserved=erp_reserved,
        safety_stock=safety,
        reservations={f"o{i}": quantity for i, quantity in enumerate(pending)},
    ),
    signed_quantities,
    signed_quantities,
    st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2),
    st.lists(quantities, max_size=5),
)


@PROPERTY_SETTINGS
@given(positions)
def test_available_is_never_below_zero_nor_above_on_hand(position: StockPosition) -> None:
    available = available_to_sell(position)
    assert available >= 0
    assert available <= max(position.on_hand, Decimal(0))


@PROPERTY_SETTINGS
@given(deliveries())
def test_available_stays_non_negative_through_any_fold(
    delivery: tuple[list[InventoryEvent], list[list[InventoryEvent]]],
) -> None:
    _, batches = delivery
    position = start_position()
    for batch in batches:
        result = apply_events(position, batch, T0, NO_TIMEOUT)
        assert result.available_before >= 0
        assert result.available_after >= 0
        position = result.new_position


operations = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "release"]),
        st.sampled_from(["o1", "o2", "o3"]),
        st.sampled_from([Decimal(1), Decimal(2), Decimal("2.5")]),
    ),
    max_size=30,
)


@PROPERTY_SETTINGS
@given(st.decimals(min_value=Decimal(0), max_value=Decimal(10), places=1), operations)
def test_reserve_and_release_are_idempotent_per_order(
    on_hand: Decimal, steps: list[tuple[str, str, Decimal]]
) -> None:
    position = replace(start_position(), on_hand=on_hand, safety_stock=Decimal(0))
    model: dict[str, Decimal] = {}
    for action, order_id, quantity in steps:
        if action == "release":
            change = release(position, order_id)
            assert change.changed == (order_id in model)
            model.pop(order_id, None)
            # Releasing again is always a no-op.
            assert not release(change.position, order_id).changed
        elif order_id in model:
            if model[order_id] != quantity:
                continue  # a changed amount is a conflict, covered by a unit test
            change = reserve(position, quantity, order_id)
            assert not change.changed
            assert change.position == position
        else:
            free = on_hand - sum(model.values(), Decimal(0))
            try:
                change = reserve(position, quantity, order_id)
            except InsufficientStock:
                assert quantity > free
                continue
            assert quantity <= free
            model[order_id] = quantity
            repeat = reserve(change.position, quantity, order_id)
            assert not repeat.changed
            assert repeat.position == change.position
        position = change.position
        assert dict(position.reservations) == model
        assert position.pending_reserved == sum(model.values(), Decimal(0))


availability_values = st.decimals(min_value=Decimal(0), max_value=Decimal(30), places=1)


@PROPERTY_SETTINGS
@given(
    availability_values,
    availability_values,
    st.decimals(min_value=Decimal(0), max_value=Decimal(20), places=1),
)
def test_alert_exactly_when_a_threshold_lies_between(
    before: Decimal, after: Decimal, low_level: Decimal
) -> None:
    thresholds = StockThresholds(low_stock_level=low_level)
    crossing = detect_crossing("SKU-1", AlertScope.LOCATION, "MAIN", before, after, thresholds, T0)
    # Independent statement of "crossed": the threshold t lies in [min, max) of the move;
    # zero always counts, the low-stock level only when it is switched on.
    boundaries = [Decimal(0)] + ([low_level] if low_level > 0 else [])
    lo, hi = min(before, after), max(before, after)
    crossed_any = any(lo <= boundary < hi for boundary in boundaries)
    assert (crossing is not None) == crossed_any
    if crossing is not None:
        assert crossing.level_before != crossing.level_after
        expected = CrossingDirection.UP if after > before else CrossingDirection.DOWN
        assert crossing.direction is expected
    else:
        assert thresholds.level_of(before) == thresholds.level_of(after)
