"""Behaviour of `quote`: Business Central V16 price rules on small hand-made price lists."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.domain.pricing import (
    AmountType,
    AssetType,
    CampaignPolicy,
    CurrencyPrecision,
    CurrencyTable,
    CustomerPricingContext,
    ItemPricingInfo,
    PriceIndex,
    PriceListLine,
    PriceSourceType,
    QuotedLine,
    QuoteLineRequest,
    QuoteRejected,
    SourceType,
    ViolationRule,
    quote,
)

D = Decimal
TODAY = date(2025, 6, 15)
CURRENCIES = CurrencyTable(
    local_currency_code="USD",
    precisions={"JPY": CurrencyPrecision(Decimal("0.01"), Decimal("1"))},
)
ITEM = ItemPricingInfo(
    number="1000",
    base_unit_of_measure="PCS",
    unit_price=D("20.00"),
    discount_group="GRP",
    sales_units_of_measure={"BOX": D(12)},
)
ITEMS = {
    ITEM.number: ITEM,
    "2000": ItemPricingInfo("2000", "PCS", D("5.00")),
    "BLOCKED": ItemPricingInfo("BLOCKED", "PCS", D("1.00"), blocked=True),
}
CUSTOMER = CustomerPricingContext(
    customer_no="C1", price_group="RETAIL", active_campaigns=frozenset({"SPRING"})
)
OTHER_CUSTOMER = CustomerPricingContext(customer_no="C2", price_group="WHOLESALE")

_counter = iter(range(1_000_000))


def pl(
    *,
    price: str | None = None,
    discount: str | None = None,
    source: SourceType = SourceType.ALL_CUSTOMERS,
    source_no: str = "",
    asset: AssetType = AssetType.ITEM,
    asset_no: str = "1000",
    min_qty: str = "0",
    uom: str = "",
    currency: str = "",
    start: date | None = None,
    end: date | None = None,
    allow_disc: bool = True,
    code: str = "PL",
    variant: str = "",
    amount_type: AmountType | None = None,
    key: str | None = None,
) -> PriceListLine:
    """A price list line; the amount type follows from which amounts are given."""
    if amount_type is None:
        if price is not None and discount is not None:
            amount_type = AmountType.ANY
        elif discount is not None:
            amount_type = AmountType.DISCOUNT
        else:
            amount_type = AmountType.PRICE
    return PriceListLine(
        key=key or f"line-{next(_counter)}",
        price_list_code=code,
        source_type=source,
        source_no=source_no,
        asset_type=asset,
        asset_no=asset_no,
        variant_code=variant,
        unit_of_measure_code=uom,
        minimum_quantity=D(min_qty),
        amount_type=amount_type,
        unit_price=D(price or "0"),
        line_discount_percent=D(discount or "0"),
        allow_line_disc=allow_disc,
        starting_date=start,
        ending_date=end,
        currency_code=currency,
    )


def price_one(
    lines: list[PriceListLine],
    *,
    qty: str = "1",
    customer: CustomerPricingContext = CUSTOMER,
    currency: str | None = None,
    day: date = TODAY,
    uom: str = "",
    sku: str = "1000",
    variant: str = "",
    policy: CampaignPolicy = CampaignPolicy.ACTIVE_FOR_CUSTOMER,
) -> QuotedLine:
    result = quote(
        PriceIndex(lines),
        customer,
        ITEMS,
        [QuoteLineRequest(sku, D(qty), uom, variant)],
        currency,
        day,
        currencies=CURRENCIES,
        campaign_policy=policy,
    )
    assert len(result.lines) == 1
    return result.lines[0]


def rejected(excinfo: pytest.ExceptionInfo[QuoteRejected]) -> list[tuple[int | None, str]]:
    return [(v.line_index, v.rule.value) for v in excinfo.value.violations]


# -- sources ---------------------------------------------------------------------------


def test_all_customers_line_applies_to_any_customer() -> None:
    lines = [pl(price="15")]
    assert price_one(lines).unit_price == D("15")
    other = price_one(lines, customer=OTHER_CUSTOMER)
    assert other.unit_price == D("15")
    assert other.price_source.type is PriceSourceType.ALL_CUSTOMERS


def test_customer_line_applies_only_to_that_customer() -> None:
    lines = [pl(price="12", source=SourceType.CUSTOMER, source_no="C1", code="CONTRACT")]
    mine = price_one(lines)
    assert (mine.unit_price, mine.price_source.type, mine.price_source.price_list_code) == (
        D("12"),
        PriceSourceType.CUSTOMER,
        "CONTRACT",
    )
    theirs = price_one(lines, customer=OTHER_CUSTOMER)
    assert theirs.unit_price == ITEM.unit_price
    assert theirs.price_source.type is PriceSourceType.LIST_PRICE


def test_price_group_line_applies_only_to_group_members() -> None:
    lines = [pl(price="13", source=SourceType.CUSTOMER_PRICE_GROUP, source_no="RETAIL")]
    assert price_one(lines).price_source.type is PriceSourceType.CUSTOMER_PRICE_GROUP
    assert price_one(lines, customer=OTHER_CUSTOMER).unit_price == ITEM.unit_price
    no_group = CustomerPricingContext(customer_no="C3")
    assert price_one(lines, customer=no_group).unit_price == ITEM.unit_price


def test_campaign_line_applies_only_for_active_campaigns_by_default() -> None:
    lines = [pl(price="11", source=SourceType.CAMPAIGN, source_no="SPRING")]
    assert price_one(lines).price_source.type is PriceSourceType.CAMPAIGN
    assert price_one(lines, customer=OTHER_CUSTOMER).unit_price == ITEM.unit_price
    other_campaign = [pl(price="11", source=SourceType.CAMPAIGN, source_no="AUTUMN")]
    assert price_one(other_campaign).unit_price == ITEM.unit_price


def test_open_to_all_campaign_policy_applies_campaigns_to_everyone_within_dates() -> None:
    lines = [
        pl(price="11", source=SourceType.CAMPAIGN, source_no="AUTUMN", end=TODAY),
        pl(
            price="9",
            source=SourceType.CAMPAIGN,
            source_no="OLD",
            end=TODAY - timedelta(days=1),
        ),
    ]
    open_all = CampaignPolicy.OPEN_TO_ALL
    result = price_one(lines, customer=OTHER_CUSTOMER, policy=open_all)
    assert (result.unit_price, result.price_source.type) == (D("11"), PriceSourceType.CAMPAIGN)
    after = price_one(lines, customer=OTHER_CUSTOMER, policy=open_all, day=TODAY + timedelta(1))
    assert after.price_source.type is PriceSourceType.LIST_PRICE


def test_lines_for_other_items_do_not_apply() -> None:
    lines = [
        pl(price="1", asset_no="2000"),
        pl(discount="50", asset=AssetType.ITEM_DISCOUNT_GROUP, asset_no="OTHER"),
    ]
    result = price_one(lines)
    assert (result.unit_price, result.line_discount_percent) == (ITEM.unit_price, D(0))


# -- quantity breaks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "expected"),
    [("9.99999", "15"), ("10", "14"), ("10.5", "14"), ("49", "14"), ("50", "13"), ("1", "15")],
)
def test_quantity_breaks_apply_from_their_minimum_quantity(qty: str, expected: str) -> None:
    lines = [pl(price="15"), pl(price="14", min_qty="10"), pl(price="13", min_qty="50")]
    result = price_one(lines, qty=qty)
    assert result.unit_price == D(expected)
    assert result.quantity == D(qty)


def test_quantity_below_every_break_falls_back_to_list_price() -> None:
    lines = [pl(price="14", min_qty="10")]
    assert price_one(lines, qty="9").price_source.type is PriceSourceType.LIST_PRICE
    assert price_one(lines, qty="10").price_source.minimum_quantity == D(10)


def test_discount_quantity_breaks() -> None:
    lines = [pl(discount="5", min_qty="5"), pl(discount="10", min_qty="20")]
    assert price_one(lines, qty="4").line_discount_percent == D(0)
    assert price_one(lines, qty="5").line_discount_percent == D(5)
    assert price_one(lines, qty="20").line_discount_percent == D(10)


# -- dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "applies"),
    [
        (None, None, True),
        (TODAY, None, True),
        (TODAY + timedelta(days=1), None, False),
        (None, TODAY, True),
        (None, TODAY - timedelta(days=1), False),
        (TODAY - timedelta(days=30), TODAY + timedelta(days=30), True),
        (TODAY, TODAY, True),
        (TODAY - timedelta(days=30), TODAY - timedelta(days=1), False),
    ],
)
def test_date_window_is_inclusive_and_blank_is_open(
    start: date | None, end: date | None, applies: bool
) -> None:
    result = price_one([pl(price="10", start=start, end=end)])
    assert (result.unit_price == D("10")) is applies


def test_aware_datetime_order_date_uses_its_utc_day() -> None:
    lines = [pl(price="10", start=TODAY, end=TODAY)]
    late_evening_west = datetime(2025, 6, 14, 21, 0, tzinfo=timezone(timedelta(hours=-5)))
    result = quote(
        PriceIndex(lines),
        CUSTOMER,
        ITEMS,
        [QuoteLineRequest("1000", D(1))],
        None,
        late_evening_west,
        currencies=CURRENCIES,
    )
    assert result.order_date == TODAY
    assert result.lines[0].unit_price == D("10")
    with pytest.raises(ValueError, match="timezone-aware"):
        quote(
            PriceIndex(lines),
            CUSTOMER,
            ITEMS,
            [QuoteLineRequest("1000", D(1))],
            None,
            datetime(2025, 6, 15, 12, 0),
            currencies=CURRENCIES,
        )
    assert datetime(2025, 6, 15, tzinfo=UTC).date() == TODAY


# -- currency --------------------------------------------------------------------------


def test_blank_currency_line_means_local_currency() -> None:
    lines = [pl(price="10")]
    assert price_one(lines).unit_price == D("10")
    assert price_one(lines, currency="USD").unit_price == D("10")
    assert price_one(lines, currency="usd").unit_price == D("10")
    with pytest.raises(QuoteRejected) as excinfo:
        price_one(lines, currency="EUR")
    assert rejected(excinfo) == [(0, "no-price")]


def test_explicit_local_currency_line_matches_blank_request() -> None:
    assert price_one([pl(price="10", currency="USD")]).unit_price == D("10")


def test_foreign_currency_lines_apply_only_to_that_currency() -> None:
    lines = [pl(price="10"), pl(price="9", currency="EUR")]
    eur = price_one(lines, currency="EUR")
    assert eur.unit_price == D("9")
    assert price_one(lines).unit_price == D("10")


def test_customer_currency_is_the_default_request_currency() -> None:
    euro_customer = CustomerPricingContext(customer_no="C9", currency_code="eur")
    lines = [pl(price="10"), pl(price="9", currency="EUR")]
    result = quote(
        PriceIndex(lines),
        euro_customer,
        ITEMS,
        [QuoteLineRequest("1000", D(1))],
        None,
        TODAY,
        currencies=CURRENCIES,
    )
    assert (result.currency_code, result.lines[0].unit_price) == ("EUR", D("9"))
    local = quote(
        PriceIndex(lines),
        euro_customer,
        ITEMS,
        [QuoteLineRequest("1000", D(1))],
        "USD",
        TODAY,
        currencies=CURRENCIES,
    )
    assert (local.currency_code, local.lines[0].unit_price) == ("USD", D("10"))


def test_foreign_currency_list_price_is_all_customers_price_or_unit_price() -> None:
    contract_only = [pl(price="8", currency="EUR", source=SourceType.CUSTOMER, source_no="C1")]
    result = price_one(contract_only, currency="EUR")
    assert (result.unit_price, result.list_price) == (D("8"), D("8"))
    with_public = [*contract_only, pl(price="9.5", currency="EUR")]
    result = price_one(with_public, currency="EUR")
    assert (result.unit_price, result.list_price) == (D("8"), D("9.5"))


# -- unit of measure -------------------------------------------------------------------


def test_blank_unit_of_measure_line_means_base_unit() -> None:
    lines = [pl(price="10")]
    assert price_one(lines).unit_of_measure == "PCS"
    assert price_one(lines, uom="pcs").unit_price == D("10")
    box = price_one(lines, uom="BOX")
    # The blank line is a base-unit price; a box falls back to the item card x 12.
    assert (box.unit_price, box.price_source.type) == (D("240.00"), PriceSourceType.LIST_PRICE)


def test_unit_of_measure_line_applies_only_to_that_unit() -> None:
    lines = [pl(price="200", uom="BOX"), pl(price="10", uom="PCS")]
    box = price_one(lines, uom="BOX")
    assert (box.unit_price, box.unit_of_measure) == (D("200"), "BOX")
    assert price_one(lines).unit_price == D("10")


# -- variants --------------------------------------------------------------------------


def test_variant_line_applies_only_to_that_variant() -> None:
    lines = [pl(price="10"), pl(price="8", variant="RED")]
    assert price_one(lines).unit_price == D("10")
    assert price_one(lines, variant="red").unit_price == D("8")
    assert price_one(lines, variant="BLUE").unit_price == D("10")


# -- choosing among applicable lines ---------------------------------------------------


def test_lowest_price_wins_across_sources() -> None:
    lines = [
        pl(price="10", code="PUBLIC"),
        pl(price="9", source=SourceType.CUSTOMER, source_no="C1", code="CONTRACT"),
        pl(price="8.5", source=SourceType.CUSTOMER_PRICE_GROUP, source_no="RETAIL", code="RET"),
        pl(price="9.9", source=SourceType.CAMPAIGN, source_no="SPRING", code="SPR"),
    ]
    result = price_one(lines)
    assert (result.unit_price, result.price_source.price_list_code) == (D("8.5"), "RET")
    assert result.list_price == D("10")


def test_customer_price_above_item_card_still_wins_over_the_card() -> None:
    # The item card is only a fallback when no price line applies at all.
    result = price_one([pl(price="25", source=SourceType.CUSTOMER, source_no="C1")])
    assert (result.unit_price, result.list_price) == (D("25"), D("20.00"))


def test_highest_discount_wins_across_sources_and_assets() -> None:
    lines = [
        pl(discount="5"),
        pl(
            discount="12.5",
            asset=AssetType.ITEM_DISCOUNT_GROUP,
            asset_no="GRP",
            source=SourceType.CUSTOMER_PRICE_GROUP,
            source_no="RETAIL",
            code="GRPDISC",
        ),
        pl(discount="8", source=SourceType.CUSTOMER, source_no="C1"),
    ]
    result = price_one(lines)
    assert result.line_discount_percent == D("12.5")
    assert result.discount_source is not None
    assert (result.discount_source.type, result.discount_source.price_list_code) == (
        PriceSourceType.CUSTOMER_PRICE_GROUP,
        "GRPDISC",
    )


def test_winning_price_line_without_line_discount_suppresses_discount() -> None:
    lines = [pl(price="9", allow_disc=False), pl(discount="10")]
    result = price_one(lines)
    assert (result.unit_price, result.line_discount_percent) == (D("9"), D(0))
    assert result.discount_source is None
    assert result.line_amount == D("9.00")


def test_losing_price_line_without_line_discount_does_not_suppress_discount() -> None:
    lines = [pl(price="9"), pl(price="9.5", allow_disc=False), pl(discount="10")]
    result = price_one(lines)
    assert (result.unit_price, result.line_discount_percent) == (D("9"), D(10))


def test_customer_without_line_discount_gets_none() -> None:
    no_disc = CustomerPricingContext(customer_no="C1", allow_line_disc=False)
    result = price_one([pl(price="9"), pl(discount="10")], customer=no_disc)
    assert (result.line_discount_percent, result.discount_source) == (D(0), None)


def test_list_price_fallback_still_gets_discounts() -> None:
    result = price_one([pl(discount="10", asset=AssetType.ITEM_DISCOUNT_GROUP, asset_no="GRP")])
    assert result.price_source.type is PriceSourceType.LIST_PRICE
    assert (result.line_discount_percent, result.line_amount) == (D(10), D("18.00"))


def test_any_line_counts_for_price_and_discount() -> None:
    lines = [pl(price="10"), pl(price="9", discount="5", code="ANY")]
    result = price_one(lines)
    assert (result.unit_price, result.line_discount_percent) == (D("9"), D("5"))
    assert result.discount_source is not None
    assert result.discount_source.price_list_code == "ANY"


def test_price_line_discount_and_discount_line_price_are_ignored() -> None:
    lines = [
        pl(price="10", discount="50", amount_type=AmountType.PRICE),
        pl(price="1", discount="5", amount_type=AmountType.DISCOUNT),
    ]
    result = price_one(lines)
    assert (result.unit_price, result.line_discount_percent) == (D("10"), D("5"))


def test_item_discount_group_lines_never_set_the_price() -> None:
    group_any = pl(price="1", discount="3", asset=AssetType.ITEM_DISCOUNT_GROUP, asset_no="GRP")
    result = price_one([group_any])
    assert (result.unit_price, result.line_discount_percent) == (D("20.00"), D("3"))


def test_equal_prices_prefer_line_allowing_discount_then_specific_source() -> None:
    lines = [
        pl(price="9", source=SourceType.CUSTOMER, source_no="C1", allow_disc=False, code="A"),
        pl(price="9", code="B"),
        pl(discount="10"),
    ]
    result = price_one(lines)
    assert (result.price_source.price_list_code, result.line_discount_percent) == ("B", D(10))
    specific = [
        pl(price="9", code="Z"),
        pl(price="9", source=SourceType.CUSTOMER, source_no="C1", code="Y"),
    ]
    assert price_one(specific).price_source.type is PriceSourceType.CUSTOMER


def test_equal_prices_prefer_higher_minimum_quantity_then_price_list_code() -> None:
    lines = [pl(price="9", code="B"), pl(price="9", min_qty="5", code="C"), pl(price="9", code="A")]
    assert price_one(lines, qty="5").price_source.price_list_code == "C"
    assert price_one(lines, qty="4").price_source.price_list_code == "A"


def test_tie_break_does_not_depend_on_insertion_order() -> None:
    lines = [
        pl(price="9", code="B", key="k2"),
        pl(price="9", code="B", key="k1", uom="PCS", min_qty="0"),
    ]
    forward = price_one(lines)
    backward = price_one(list(reversed(lines)))
    assert forward == backward


# -- rounding --------------------------------------------------------------------------


def test_line_amount_rounds_half_up_after_discount() -> None:
    result = price_one([pl(price="0.33333", discount="10")], qty="3")
    # 3 x 0.33333 x 0.9 = 0.899991
    assert (result.unit_price, result.line_amount) == (D("0.33333"), D("0.90"))
    half = price_one([pl(price="1.25", discount="10")])
    # 1.125 is exactly half a cent: half-up gives 1.13 where banker's rounding gives 1.12.
    assert half.line_amount == D("1.13")


def test_unit_price_rounds_half_up_to_unit_amount_precision() -> None:
    result = price_one([pl(price="0.123465")])
    assert result.unit_price == D("0.12347")
    assert result.line_amount == D("0.12")


def test_amount_precision_follows_the_currency() -> None:
    result = price_one([pl(price="100.5", currency="JPY")], currency="JPY", qty="3")
    assert (result.unit_price, result.line_amount) == (D("100.5"), D("302"))


def test_money_is_presented_with_amount_places() -> None:
    result = price_one([pl(price="12.5")])
    assert (str(result.unit_price), str(result.line_amount)) == ("12.50", "12.50")
    assert str(price_one([pl(price="0.33333")]).unit_price) == "0.33333"


def test_fractional_quantities() -> None:
    result = price_one([pl(price="2.40")], qty="2.5")
    assert result.line_amount == D("6.00")


def test_total_is_sum_of_rounded_line_amounts() -> None:
    lines = [pl(price="0.33333", discount="10"), pl(price="1.25", discount="10", asset_no="2000")]
    result = quote(
        PriceIndex(lines),
        CUSTOMER,
        ITEMS,
        [
            QuoteLineRequest("1000", D(3)),
            QuoteLineRequest("2000", D(1)),
            QuoteLineRequest("1000", D(1), "BOX"),
        ],
        None,
        TODAY,
        currencies=CURRENCIES,
    )
    amounts = [line.line_amount for line in result.lines]
    # The base-unit discount line does not apply to a box; each line rounds on its own
    # (0.899991 -> 0.90, 1.125 -> 1.13) before the sum.
    assert amounts == [D("0.90"), D("1.13"), D("240.00")]
    assert result.total_amount == D("242.03")


# -- violations ------------------------------------------------------------------------


def test_every_line_problem_is_reported_at_once() -> None:
    lines = [pl(price="10")]
    requests = [
        QuoteLineRequest("1000", D(1)),
        QuoteLineRequest("NOPE", D(1)),
        QuoteLineRequest("BLOCKED", D(1)),
        QuoteLineRequest("1000", D(0)),
        QuoteLineRequest("1000", D(1), "PALLET"),
        QuoteLineRequest("NOPE", D(-2)),
        QuoteLineRequest("1000", D("NaN")),
        QuoteLineRequest("BLOCKED", D(1), "KG"),
    ]
    with pytest.raises(QuoteRejected) as excinfo:
        quote(PriceIndex(lines), CUSTOMER, ITEMS, requests, None, TODAY, currencies=CURRENCIES)
    assert rejected(excinfo) == [
        (1, "unknown-item"),
        (2, "item-blocked"),
        (3, "bad-quantity"),
        (4, "unit-of-measure-not-sold"),
        (5, "bad-quantity"),
        (5, "unknown-item"),
        (6, "bad-quantity"),
        (7, "item-blocked"),
        (7, "unit-of-measure-not-sold"),
    ]
    skus = [v.sku for v in excinfo.value.violations]
    assert skus[:2] == ["NOPE", "BLOCKED"]
    assert all(v.detail for v in excinfo.value.violations)


def test_no_price_in_currency_is_reported_per_line() -> None:
    lines = [pl(price="9", currency="EUR")]
    requests = [QuoteLineRequest("1000", D(1)), QuoteLineRequest("2000", D(1))]
    with pytest.raises(QuoteRejected) as excinfo:
        quote(PriceIndex(lines), CUSTOMER, ITEMS, requests, "EUR", TODAY, currencies=CURRENCIES)
    assert rejected(excinfo) == [(1, "no-price")]
    assert "EUR" in excinfo.value.violations[0].detail


def test_empty_quote_is_rejected() -> None:
    with pytest.raises(QuoteRejected) as excinfo:
        quote(PriceIndex(), CUSTOMER, ITEMS, [], None, TODAY, currencies=CURRENCIES)
    assert [v.rule for v in excinfo.value.violations] == [ViolationRule.NO_LINES]


def test_integer_quantity_is_accepted_but_float_and_bool_are_not() -> None:
    index = PriceIndex([pl(price="10")])
    good = quote(
        index,
        CUSTOMER,
        ITEMS,
        [QuoteLineRequest("1000", 2)],  # type: ignore[arg-type]
        None,
        TODAY,
        currencies=CURRENCIES,
    )
    assert good.lines[0].line_amount == D("20.00")
    for bad in (2.0, True):
        with pytest.raises(QuoteRejected) as excinfo:
            quote(
                index,
                CUSTOMER,
                ITEMS,
                [QuoteLineRequest("1000", bad)],  # type: ignore[arg-type]
                None,
                TODAY,
                currencies=CURRENCIES,
            )
        assert rejected(excinfo) == [(0, "bad-quantity")]


def test_equal_prices_rank_campaign_between_price_group_and_all_customers() -> None:
    public = pl(price="9", code="A1")
    campaign = pl(price="9", source=SourceType.CAMPAIGN, source_no="SPRING", code="Z9")
    group = pl(price="9", source=SourceType.CUSTOMER_PRICE_GROUP, source_no="RETAIL", code="Z8")
    assert price_one([public, campaign]).price_source.type is PriceSourceType.CAMPAIGN
    assert price_one([public, campaign, group]).price_source.type is (
        PriceSourceType.CUSTOMER_PRICE_GROUP
    )


def test_equal_discounts_prefer_specific_source_then_item_over_group() -> None:
    lines = [
        pl(discount="5", code="A"),
        pl(discount="5", source=SourceType.CAMPAIGN, source_no="SPRING", code="B"),
    ]
    result = price_one(lines)
    assert result.discount_source is not None
    assert result.discount_source.type is PriceSourceType.CAMPAIGN
    by_asset = [
        pl(discount="5", asset=AssetType.ITEM_DISCOUNT_GROUP, asset_no="GRP", code="A"),
        pl(discount="5", code="B"),
    ]
    result = price_one(by_asset)
    assert result.discount_source is not None
    assert result.discount_source.price_list_code == "B"


def test_equal_discounts_prefer_higher_minimum_quantity_then_price_list_code() -> None:
    lines = [
        pl(discount="5", code="B"),
        pl(discount="5", min_qty="2", code="C"),
        pl(discount="5", code="A"),
    ]
    high = price_one(lines, qty="2").discount_source
    low = price_one(lines, qty="1").discount_source
    assert high is not None and low is not None
    assert (high.price_list_code, high.minimum_quantity) == ("C", D(2))
    assert low.price_list_code == "A"
