"""Order rules: ids, allocation over locations, evaluation, life cycle, booking decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.credit import CreditFigures, CreditPolicy
from shared.domain.orders import (
    BookingClaim,
    BookingRetryPolicy,
    Disposition,
    InvalidTransition,
    LineDemand,
    LineLimit,
    Order,
    OrderFacts,
    OrderRule,
    OrderStatus,
    PricingData,
    QuantityLimits,
    RequestedLine,
    accept,
    allocate,
    cancel,
    claim_booking,
    decide,
    evaluate_order,
    is_order_id,
    mark_settled,
    new_order_id,
    record_booked,
    record_failed,
    request_replay,
    schedule_retry,
)
from shared.domain.orders.allocation import LineAllocation
from shared.domain.orders.model import OrderLine
from shared.domain.pricing import (
    AmountType,
    AssetType,
    CampaignPolicy,
    CustomerPricingContext,
    ItemPricingInfo,
    PriceIndex,
    PriceListLine,
    SourceType,
    default_currency_table,
)

D = Decimal
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ALL = lambda _location: True  # noqa: E731


# ---- ids ------------------------------------------------------------------------------


def test_order_ids_are_upper_case_fit_code35_and_sort_by_time() -> None:
    first = new_order_id(1_700_000_000_000, bytes(10))
    later = new_order_id(1_700_000_000_001, bytes(10))
    assert first.startswith("ORD-") and len(first) == 30 and first == first.upper()
    assert is_order_id(first) and first < later
    assert new_order_id(1, bytes(10)) != new_order_id(1, b"\x01" + bytes(9))
    assert not is_order_id("ord-" + first[4:]) and not is_order_id("ORD-1")


# ---- allocation ------------------------------------------------------------------------


def test_a_line_goes_whole_to_the_location_with_most_stock() -> None:
    result = allocate([LineDemand(0, "A", D(5), D(1))], {"A": {"MAIN": D(6), "EAST": D(9)}}, ALL)
    assert result.allocations[0] == (LineAllocation("EAST", D(5)),)
    assert result.shortages == ()


def test_a_line_no_single_location_can_serve_is_split() -> None:
    result = allocate([LineDemand(0, "A", D(10), D(1))], {"A": {"MAIN": D(6), "EAST": D(5)}}, ALL)
    assert result.allocations[0] == (LineAllocation("MAIN", D(6)), LineAllocation("EAST", D(4)))


def test_boxes_are_allocated_in_whole_boxes() -> None:
    # 20 pieces at MAIN and 20 at EAST hold one whole box of 12 each: two boxes, not three.
    stock = {"A": {"MAIN": D(20), "EAST": D(20)}}
    assert allocate([LineDemand(0, "A", D(2), D(12))], stock, ALL).shortages == ()
    short = allocate([LineDemand(0, "A", D(3), D(12))], stock, ALL).shortages
    assert short[0].requested == D(3) and short[0].available == D(2)


def test_lines_of_one_item_share_its_stock_and_excluded_locations_do_not_count() -> None:
    stock = {"A": {"MAIN": D(5), "WEST": D(100)}}
    result = allocate(
        [LineDemand(0, "A", D(3), D(1)), LineDemand(1, "A", D(3), D(1))],
        stock,
        lambda location: location != "WEST",
    )
    assert result.allocations[0] == (LineAllocation("MAIN", D(3)),)
    assert [s.line for s in result.shortages] == [1] and result.shortages[0].available == D(2)


@given(
    st.lists(st.integers(1, 30), min_size=1, max_size=6),
    st.dictionaries(st.sampled_from(["MAIN", "EAST", "WEST"]), st.integers(-5, 40)),
)
def test_allocations_never_exceed_stock_and_serve_lines_exactly(
    quantities: list[int], stock: dict[str, int]
) -> None:
    demands = [LineDemand(i, "A", D(q), D(1)) for i, q in enumerate(quantities)]
    result = allocate(demands, {"A": {k: D(v) for k, v in stock.items()}}, ALL)
    used: dict[str, Decimal] = {}
    for line, parts in result.allocations.items():
        assert sum(p.quantity for p in parts) == quantities[line]
        for part in parts:
            used[part.location] = used.get(part.location, D(0)) + part.quantity
    for location, quantity in used.items():
        assert quantity <= max(stock[location], 0)
    assert len(result.allocations) + len(result.shortages) == len(quantities)


# ---- evaluation ------------------------------------------------------------------------

ITEMS = {
    "A": ItemPricingInfo("A", "PCS", D("10.00"), sales_units_of_measure={"BOX": D(12)}),
    "B": ItemPricingInfo("B", "PCS", D("4.00")),
    "X": ItemPricingInfo("X", "PCS", D("1.00"), blocked=True),
}
CUSTOMER = CustomerPricingContext("C1")
INDEX = PriceIndex(
    [
        PriceListLine(
            key="L1",
            price_list_code="CONTRACT",
            source_type=SourceType.CUSTOMER,
            source_no="C1",
            asset_type=AssetType.ITEM,
            asset_no="A",
            amount_type=AmountType.PRICE,
            unit_price=D("9.50"),
        )
    ]
)


def _pricing(customer: CustomerPricingContext | None = CUSTOMER) -> PricingData:
    rates = {"EUR": D("1.08")}
    return PricingData(
        index=INDEX,
        customer=customer,
        items=ITEMS,
        currencies=default_currency_table("USD"),
        campaign_policy=CampaignPolicy.OPEN_TO_ALL,
        order_date=date(2026, 11, 23),
        lcy_per_unit=lambda currency, _on: rates.get(currency),
    )


def _facts(
    *,
    limit: str = "1000",
    stock: dict[str, dict[str, Decimal]] | None = None,
    known: bool = True,
    blocked: str = "",
    sold: frozenset[str] = frozenset({"USD", "EUR"}),
) -> OrderFacts:
    credit = CreditFigures("C1", D(limit), D(0), D(0), D(0), blocked, NOW) if known else None
    return OrderFacts(
        channel_known=True,
        sold_currencies=sold,
        credit=credit,
        pending_credit=D(0),
        policy=CreditPolicy(),
        available=stock if stock is not None else {"A": {"MAIN": D(100)}, "B": {"MAIN": D(100)}},
        sells_from=ALL,
    )


def test_an_acceptable_order_is_priced_and_allocated() -> None:
    result = evaluate_order(
        [RequestedLine("A", D(2), "", D("9.50")), RequestedLine("B", D(1))],
        None,
        _pricing(),
        _facts(),
    )
    assert result.acceptable, result.violations
    assert result.total_amount == D("23.00") and result.credit_amount == D("23.00")
    assert [line.unit_price for line in result.lines] == [D("9.50"), D("4.00")]
    assert result.lines[0].allocations == (LineAllocation("MAIN", D(2)),)


def test_every_violation_is_listed_with_its_line() -> None:
    result = evaluate_order(
        [
            RequestedLine("A", D(2), "", D("9.00")),
            RequestedLine("NOPE", D(1)),
            RequestedLine("X", D(1)),
            RequestedLine("B", D(1), "BOX"),
            RequestedLine("B", D(500)),
        ],
        None,
        _pricing(),
        _facts(limit="100"),
    )
    rules = [(v.rule, v.line) for v in result.violations]
    assert (OrderRule.PRICE_MISMATCH, 0) in rules
    assert (OrderRule.UNKNOWN_ITEM, 1) in rules
    assert (OrderRule.ITEM_BLOCKED, 2) in rules
    assert (OrderRule.UNIT_OF_MEASURE_NOT_SOLD, 3) in rules
    assert (OrderRule.INSUFFICIENT_STOCK, 4) in rules
    assert (OrderRule.CREDIT_OVER_LIMIT, None) in rules
    mismatch = next(v for v in result.violations if v.rule is OrderRule.PRICE_MISMATCH)
    assert mismatch.as_contract()["expectedUnitPrice"] == "9.00"
    assert mismatch.as_contract()["unitPrice"] == "9.50"
    assert mismatch.as_contract()["field"] == "lines[0]"


def test_an_unknown_customer_and_a_blocked_one() -> None:
    unknown = evaluate_order([RequestedLine("B", D(1))], None, _pricing(None), _facts())
    assert [v.rule for v in unknown.violations] == [OrderRule.UNKNOWN_CUSTOMER]
    not_in_erp = evaluate_order([RequestedLine("B", D(1))], None, _pricing(), _facts(known=False))
    assert [v.rule for v in not_in_erp.violations] == [OrderRule.UNKNOWN_CUSTOMER]
    blocked = evaluate_order([RequestedLine("B", D(1))], None, _pricing(), _facts(blocked="Ship"))
    assert [v.rule for v in blocked.violations] == [OrderRule.CUSTOMER_BLOCKED]


def test_a_foreign_currency_order_holds_credit_converted_exactly_or_not_at_all() -> None:
    eur = evaluate_order([RequestedLine("A", D(1), "", None)], "EUR", _pricing(), _facts())
    # The item card price 10.00 USD is 9.25926 EUR at 1.08; credit is held in USD again.
    assert eur.acceptable and eur.currency == "EUR"
    assert eur.credit_amount == (eur.total_amount * D("1.08")).quantize(D("0.01"))
    gbp = evaluate_order(
        [RequestedLine("B", D(1))], "GBP", _pricing(), _facts(sold=frozenset({"USD", "GBP"}))
    )
    # Without a rate neither the item card price nor the credit amount can be converted.
    assert {v.rule for v in gbp.violations} == {
        OrderRule.NO_PRICE,
        OrderRule.CURRENCY_NOT_CONVERTIBLE,
    }
    unsold = evaluate_order([RequestedLine("B", D(1))], "JPY", _pricing(), _facts())
    assert [v.rule for v in unsold.violations] == [OrderRule.UNSUPPORTED_CURRENCY]


def test_stock_is_checked_in_base_units_for_a_box() -> None:
    ok = evaluate_order(
        [RequestedLine("A", D(2), "BOX")], None, _pricing(), _facts(stock={"A": {"M": D(24)}})
    )
    assert ok.acceptable and ok.lines[0].base_quantity == D(24)
    short = evaluate_order(
        [RequestedLine("A", D(2), "BOX")], None, _pricing(), _facts(stock={"A": {"M": D(23)}})
    )
    assert [v.rule for v in short.violations] == [OrderRule.INSUFFICIENT_STOCK]


def test_a_line_above_its_quantity_limit_names_the_line_the_quantity_and_the_limit() -> None:
    limits = QuantityLimits(customers={"C1": D(30)}, items={"A": D(20)}, default=D(5))
    result = evaluate_order(
        [
            RequestedLine("A", D(2), "BOX"),  # 24 base units, item limit 20 (lower than 30)
            RequestedLine("A", D(20)),  # exactly at the limit: fine
            RequestedLine("B", D(31)),  # customer limit 30 (B has no item limit)
        ],
        None,
        _pricing(),
        replace(_facts(limit="100000"), quantity_limits=limits),
    )
    over = [v.as_contract() for v in result.violations]
    assert [(v["rule"], v["line"]) for v in over] == [
        ("quantity-over-threshold", 0),
        ("quantity-over-threshold", 2),
    ]
    assert over[0] | {"detail": ""} == {
        "rule": "quantity-over-threshold",
        "sku": "A",
        "line": 0,
        "field": "lines[0]",
        "detail": "",
        "quantity": "24",
        "limit": "20",
        "limitSource": "item",
    }
    assert (over[1]["quantity"], over[1]["limit"], over[1]["limitSource"]) == (
        "31",
        "30",
        "customer",
    )
    assert "24" in str(over[0]["detail"]) and "20" in str(over[0]["detail"])


def test_the_default_quantity_limit_applies_only_where_none_is_named() -> None:
    limits = QuantityLimits(items={"A": D(50)}, default=D(5))
    assert limits.limit_for("C1", "A") == LineLimit(D(50), "item")  # above the default
    assert limits.limit_for("C1", "B") == LineLimit(D(5), "default")
    assert QuantityLimits().limit_for("C1", "A") is None
    unlimited = evaluate_order([RequestedLine("B", D(90))], None, _pricing(), _facts())
    assert unlimited.acceptable  # no limits set: as before the rule existed


# ---- life cycle ------------------------------------------------------------------------


def _order(status: OrderStatus = OrderStatus.PENDING) -> Order:
    line = OrderLine(
        0,
        "A",
        D(2),
        "PCS",
        D(1),
        D("9.50"),
        D(0),
        D("19.00"),
        None,
        (LineAllocation("MAIN", D(1)), LineAllocation("EAST", D(1))),
    )
    line2 = replace(
        line,
        line=1,
        quantity=D(12),
        unit_of_measure="BOX",
        qty_per_unit=D(12),
        allocations=(LineAllocation("MAIN", D(1)),),
    )
    return Order(
        order_id="ORD-1",
        status=status,
        customer_no="C1",
        channel="web",
        currency="USD",
        external_order_id="EXT-1",
        created_at=NOW,
        updated_at=NOW,
        lines=(line, line2),
        total_amount=D("19.00"),
        credit_amount=D("19.00"),
        correlation_id="corr-1",
    )


def test_stock_holds_sum_lines_per_item_and_location_in_base_units() -> None:
    holds = {(h.sku, h.location): h.quantity for h in _order().stock_holds}
    assert holds == {("A", "EAST"): D(1), ("A", "MAIN"): D(13)}


def test_the_life_cycle_allows_only_its_transitions() -> None:
    accepted = accept(_order(), NOW)
    assert accepted.status is OrderStatus.ACCEPTED and accepted.attempt == 1
    with pytest.raises(InvalidTransition):
        accept(accepted, NOW)
    claim = BookingClaim("t1", NOW + timedelta(minutes=3))
    claimed = claim_booking(accepted, 0, 1, claim, NOW, delivery_count=1)
    assert claimed.claims == 1 and claimed.claim_active(NOW)
    with pytest.raises(InvalidTransition):
        claim_booking(claimed, 0, 1, BookingClaim("t2", NOW), NOW)
    retried = schedule_retry(claimed, "t1", 2, NOW + timedelta(seconds=15), "down", NOW)
    assert retried.claim is None and retried.attempt == 2
    failed = record_failed(retried, "gave up", NOW)
    assert failed.status is OrderStatus.FAILED and failed.failure_reason == "gave up"
    replayed = request_replay(failed, NOW, "ops")
    assert (replayed.status, replayed.generation, replayed.attempt) == (
        OrderStatus.ACCEPTED,
        1,
        1,
    )
    booked = record_booked(replayed, "S-ORD101001", "id", D("19.00"), "", NOW)
    assert booked.status is OrderStatus.BOOKED and not booked.settled
    assert record_booked(booked, "OTHER", "x", None, "", NOW) is booked
    assert mark_settled(booked, NOW).holds_released
    events = [str(h.event) for h in booked.history]
    assert events == [
        "accepted",
        "booking-started",
        "booking-retry-scheduled",
        "failed",
        "replay-requested",
        "booked",
    ]
    assert all(h.correlation_id for h in booked.history)


def test_a_failed_order_found_in_the_erp_is_booked_and_a_price_difference_is_noted() -> None:
    failed = record_failed(accept(_order(), NOW), "timeout", NOW)
    booked = record_booked(failed, "S-ORD1", "id", D("19.50"), "", NOW)
    assert booked.status is OrderStatus.BOOKED
    assert str(booked.history[-1].event) == "erp-price-difference"
    assert cancel(record_failed(accept(_order(), NOW), "x", NOW), "ops", NOW, None).status is (
        OrderStatus.REJECTED
    )


def test_booking_decisions_follow_the_stored_order() -> None:
    accepted = accept(_order(), NOW)
    assert decide(accepted, 0, 1, NOW).disposition is Disposition.BOOK
    claimed = claim_booking(accepted, 0, 1, BookingClaim("t", NOW + timedelta(minutes=1)), NOW)
    deferred = decide(claimed, 0, 1, NOW)
    assert deferred.disposition is Disposition.DEFER and deferred.defer_until == claimed.claim.until  # type: ignore[union-attr]
    assert decide(claimed, 0, 1, NOW + timedelta(minutes=2)).disposition is Disposition.BOOK
    retried = schedule_retry(claimed, "t", 2, NOW, "down", NOW)
    assert decide(retried, 0, 1, NOW).disposition is Disposition.SKIP  # the old attempt
    assert decide(retried, 0, 2, NOW).disposition is Disposition.BOOK
    failed = record_failed(retried, "gave up", NOW)
    assert decide(failed, 0, 2, NOW).disposition is Disposition.DEAD_LETTER
    assert decide(failed, 0, 1, NOW).disposition is Disposition.SKIP
    booked = record_booked(accepted, "S1", "id", None, "", NOW)
    assert decide(booked, 0, 1, NOW).disposition is Disposition.SETTLE
    assert decide(mark_settled(booked, NOW), 0, 1, NOW).disposition is Disposition.SKIP
    assert decide(_order(), 0, 1, NOW).disposition is Disposition.SKIP  # still pending


# ---- retry policy ----------------------------------------------------------------------


def test_retry_delays_grow_are_capped_jittered_and_honour_retry_after() -> None:
    policy = BookingRetryPolicy(5, timedelta(seconds=10), timedelta(seconds=60))
    assert policy.delay(1, 0.0) == timedelta(seconds=5)
    assert policy.delay(1, 0.999) < timedelta(seconds=10)
    assert policy.delay(3, 0.0) == timedelta(seconds=20)
    assert policy.delay(10, 0.5) <= timedelta(seconds=60)
    assert policy.delay(1, 0.0, at_least=timedelta(seconds=30)) == timedelta(seconds=30)
    assert policy.delay(1, 0.0, at_least=timedelta(hours=1)) == timedelta(seconds=60)
    assert not policy.exhausted(4) and policy.exhausted(5)


def test_an_accepted_order_is_replayed_only_while_no_attempt_holds_its_claim() -> None:
    accepted = accept(_order(), NOW)
    claimed = claim_booking(accepted, 0, 1, BookingClaim("t", NOW + timedelta(minutes=1)), NOW)
    with pytest.raises(InvalidTransition):
        request_replay(claimed, NOW, None)
    replayed = request_replay(claimed, NOW + timedelta(minutes=2), "ops")
    assert replayed.generation == 1 and replayed.attempt == 1 and replayed.claim is None
    with pytest.raises(InvalidTransition):
        request_replay(record_booked(accepted, "S1", "id", None, "", NOW), NOW, None)
