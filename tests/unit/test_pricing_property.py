"""Property: the index-based quote equals a naive evaluator that scans every line.

The naive evaluator below restates the documented rules directly (filter all lines, then
sort by the documented tie-break), with no index, buckets or early exits, so a bug in the
index's grouping, quantity-break ordering or delta handling shows up as a difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

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
    QuoteLineRequest,
    QuoteRejected,
    SourceType,
    quote,
)

D = Decimal
LOCAL = "USD"
CURRENCIES = CurrencyTable(LOCAL, {"JPY": CurrencyPrecision(D("0.01"), D("1"))})
BASE_DAY = date(2025, 3, 1)
ITEMS = {
    "I1": ItemPricingInfo(
        "I1", "PCS", D("10.00"), discount_group="G1", sales_units_of_measure={"BOX": D(6)}
    ),
    "I2": ItemPricingInfo("I2", "PCS", D("3.33333"), discount_group="G2"),
    "I3": ItemPricingInfo("I3", "KG", D("0.50"), sales_units_of_measure={"PCS": D("0.25")}),
}
SPECIFIC = {
    SourceType.CUSTOMER: 0,
    SourceType.CUSTOMER_PRICE_GROUP: 1,
    SourceType.CAMPAIGN: 2,
    SourceType.ALL_CUSTOMERS: 3,
}

# The pools are small and skewed (repeated entries) towards values that match, so most
# examples price from several applicable candidates rather than from the item card.
days = st.one_of(
    st.none(), st.none(), st.integers(0, 10).map(lambda n: BASE_DAY + timedelta(days=n))
)
sources = st.sampled_from(
    [
        (SourceType.ALL_CUSTOMERS, ""),
        (SourceType.ALL_CUSTOMERS, ""),
        (SourceType.ALL_CUSTOMERS, ""),
        (SourceType.CUSTOMER, "C1"),
        (SourceType.CUSTOMER, "C1"),
        (SourceType.CUSTOMER, "C2"),
        (SourceType.CUSTOMER_PRICE_GROUP, "PG1"),
        (SourceType.CUSTOMER_PRICE_GROUP, "PG1"),
        (SourceType.CUSTOMER_PRICE_GROUP, "PG2"),
        (SourceType.CAMPAIGN, "M1"),
        (SourceType.CAMPAIGN, "M1"),
        (SourceType.CAMPAIGN, "M2"),
    ]
)
assets = st.sampled_from(
    [
        (AssetType.ITEM, "I1"),
        (AssetType.ITEM, "I1"),
        (AssetType.ITEM, "I1"),
        (AssetType.ITEM, "I2"),
        (AssetType.ITEM, "I2"),
        (AssetType.ITEM, "I3"),
        (AssetType.ITEM_DISCOUNT_GROUP, "G1"),
        (AssetType.ITEM_DISCOUNT_GROUP, "G1"),
        (AssetType.ITEM_DISCOUNT_GROUP, "G2"),
    ]
)


@st.composite
def price_lines(draw: st.DrawFn, key: str) -> PriceListLine:
    source_type, source_no = draw(sources)
    asset_type, asset_no = draw(assets)
    start, end = draw(days), draw(days)
    if start is not None and end is not None and end < start:
        start, end = end, start
    return PriceListLine(
        key=key,
        price_list_code=draw(st.sampled_from(["A", "B"])),
        source_type=source_type,
        source_no=source_no,
        asset_type=asset_type,
        asset_no=asset_no,
        variant_code=draw(st.sampled_from(["", "", "", "V1"])),
        unit_of_measure_code=draw(st.sampled_from(["", "", "", "", "PCS", "BOX", "KG"])),
        minimum_quantity=draw(st.sampled_from([D(0), D(0), D(1), D("2.5"), D(5), D(10)])),
        amount_type=draw(st.sampled_from(list(AmountType))),
        # Few distinct values so that ties (and so the tie-breaks) happen often.
        unit_price=draw(st.sampled_from([D("0.125"), D("1.005"), D("7.5"), D("9.999995")])),
        line_discount_percent=draw(st.sampled_from([D(0), D(5), D(5), D("12.5")])),
        allow_line_disc=draw(st.sampled_from([True, True, True, False])),
        starting_date=start,
        ending_date=end,
        currency_code=draw(st.sampled_from(["", "", "", "", "USD", "EUR", "JPY"])),
    )


line_sets = st.integers(0, 40).flatmap(
    lambda n: st.tuples(*(price_lines(f"k{i:02d}") for i in range(n)))
)
customers = st.builds(
    CustomerPricingContext,
    customer_no=st.sampled_from(["C1", "C1", "C2", "C3"]),
    price_group=st.sampled_from(["", "PG1", "PG1", "PG2"]),
    currency_code=st.sampled_from(["", "", "", "EUR"]),
    allow_line_disc=st.sampled_from([True, True, False]),
    active_campaigns=st.sampled_from(
        [frozenset(), frozenset({"M1"}), frozenset({"M1"}), frozenset({"M1", "M2"})]
    ),
)
requests = st.builds(
    QuoteLineRequest,
    sku=st.sampled_from(["I1", "I1", "I1", "I2", "I3"]),
    quantity=st.sampled_from([D("0.5"), D(1), D("2.5"), D(3), D("9.99999"), D(10), D(12)]),
    unit_of_measure=st.sampled_from(["", "", "", "", "", "PCS", "BOX", "KG"]),
    variant_code=st.sampled_from(["", "", "V1"]),
)


# -- the naive evaluator -----------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    unit_price: Decimal
    list_price: Decimal
    discount: Decimal
    line_amount: Decimal
    price_key: str | None
    discount_key: str | None


def half_up(value: Decimal, places: Decimal) -> Decimal:
    return (value / places).quantize(D(1), rounding=ROUND_HALF_UP) * places


def naive_line(
    lines: list[PriceListLine],
    customer: CustomerPricingContext,
    request: QuoteLineRequest,
    currency: str,
    day: date,
    policy: CampaignPolicy,
) -> Expected | str:
    item = ITEMS[request.sku]
    unit = request.unit_of_measure or item.base_unit_of_measure
    per_unit = {item.base_unit_of_measure: D(1), **item.sales_units_of_measure}
    if unit not in per_unit:
        return "unit-of-measure-not-sold"
    precision = CURRENCIES.precision(currency)

    def source_ok(pl: PriceListLine) -> bool:
        if pl.source_type == SourceType.ALL_CUSTOMERS:
            return True
        if pl.source_type == SourceType.CUSTOMER:
            return pl.source_no == customer.customer_no
        if pl.source_type == SourceType.CUSTOMER_PRICE_GROUP:
            return customer.price_group != "" and pl.source_no == customer.price_group
        if policy == CampaignPolicy.OPEN_TO_ALL:
            return True
        return pl.source_no in customer.active_campaigns

    def applies(pl: PriceListLine) -> bool:
        if pl.asset_type == AssetType.ITEM:
            asset_ok = pl.asset_no == item.number
        else:
            asset_ok = item.discount_group != "" and pl.asset_no == item.discount_group
        return (
            source_ok(pl)
            and asset_ok
            and (pl.currency_code or LOCAL) == currency
            and (pl.unit_of_measure_code or item.base_unit_of_measure) == unit
            and pl.variant_code in ("", request.variant_code)
            and (pl.starting_date is None or pl.starting_date <= day)
            and (pl.ending_date is None or day <= pl.ending_date)
            and pl.minimum_quantity <= request.quantity
        )

    applicable = [pl for pl in lines if applies(pl)]

    def price_order(pl: PriceListLine) -> tuple[object, ...]:
        return (
            pl.unit_price,
            not pl.allow_line_disc,
            SPECIFIC[pl.source_type],
            -pl.minimum_quantity,
            pl.price_list_code,
            pl.key,
        )

    price_candidates = sorted(
        (
            pl
            for pl in applicable
            if pl.amount_type in (AmountType.PRICE, AmountType.ANY)
            and pl.asset_type == AssetType.ITEM
        ),
        key=price_order,
    )
    public = [pl for pl in price_candidates if pl.source_type == SourceType.ALL_CUSTOMERS]
    discounts = sorted(
        (pl for pl in applicable if pl.amount_type in (AmountType.DISCOUNT, AmountType.ANY)),
        key=lambda pl: (
            -pl.line_discount_percent,
            SPECIFIC[pl.source_type],
            0 if pl.asset_type == AssetType.ITEM else 1,
            -pl.minimum_quantity,
            pl.price_list_code,
            pl.key,
        ),
    )
    card = (
        half_up(item.unit_price * per_unit[unit], precision.unit_amount_precision)
        if currency == LOCAL
        else None
    )
    winner = price_candidates[0] if price_candidates else None
    if winner is not None:
        unit_price = half_up(winner.unit_price, precision.unit_amount_precision)
    elif card is not None:
        unit_price = card
    else:
        return "no-price"
    if public:
        list_price = half_up(public[0].unit_price, precision.unit_amount_precision)
    else:
        list_price = card if card is not None else unit_price
    discount_line = discounts[0] if discounts else None
    allowed = customer.allow_line_disc and (winner is None or winner.allow_line_disc)
    if not allowed or discount_line is None or discount_line.line_discount_percent == 0:
        discount_line = None
    discount = discount_line.line_discount_percent if discount_line else D(0)
    gross = request.quantity * unit_price * (1 - discount / 100)
    return Expected(
        unit_price=unit_price,
        list_price=list_price,
        discount=discount,
        line_amount=half_up(gross, precision.amount_precision),
        price_key=winner.key if winner else None,
        discount_key=discount_line.key if discount_line else None,
    )


def compare(
    index: PriceIndex,
    lines: list[PriceListLine],
    customer: CustomerPricingContext,
    request_lines: list[QuoteLineRequest],
    currency: str | None,
    day: date,
    policy: CampaignPolicy,
) -> None:
    resolved = (currency or customer.currency_code or LOCAL).upper()
    expected = [naive_line(lines, customer, r, resolved, day, policy) for r in request_lines]
    problems = [(i, e) for i, e in enumerate(expected) if isinstance(e, str)]
    try:
        result = quote(
            index,
            customer,
            ITEMS,
            request_lines,
            currency,
            day,
            currencies=CURRENCIES,
            campaign_policy=policy,
        )
    except QuoteRejected as rejection:
        assert [(v.line_index, v.rule.value) for v in rejection.violations] == problems
        return
    assert problems == []
    assert result.currency_code == resolved
    total = D(0)
    for got, want in zip(result.lines, expected, strict=True):
        assert isinstance(want, Expected)
        assert got.unit_price == want.unit_price
        assert got.list_price == want.list_price
        assert got.line_discount_percent == want.discount
        assert got.line_amount == want.line_amount
        if want.discount_key is None:
            assert got.discount_source is None
        else:
            granted = next(pl for pl in lines if pl.key == want.discount_key)
            assert got.discount_source is not None
            assert got.discount_source.type.value == granted.source_type.value
            assert got.discount_source.price_list_code == granted.price_list_code
            assert got.discount_source.minimum_quantity == granted.minimum_quantity
        if want.price_key is not None:
            winner = next(pl for pl in lines if pl.key == want.price_key)
            assert got.price_source.price_list_code == winner.price_list_code
            assert got.price_source.minimum_quantity == winner.minimum_quantity
            assert got.price_source.type.value == winner.source_type.value
        else:
            assert got.price_source.type.value == "List Price"
        total += want.line_amount
    assert result.total_amount == total


@settings(max_examples=400, deadline=None)
@given(
    lines=line_sets,
    customer=customers,
    request_lines=st.lists(requests, min_size=1, max_size=3),
    currency=st.sampled_from([None, None, None, None, "USD", "EUR", "JPY", "usd"]),
    day_offset=st.integers(-1, 11),
    policy=st.sampled_from(list(CampaignPolicy)),
)
def test_index_quote_matches_naive_evaluation(
    lines: tuple[PriceListLine, ...],
    customer: CustomerPricingContext,
    request_lines: list[QuoteLineRequest],
    currency: str | None,
    day_offset: int,
    policy: CampaignPolicy,
) -> None:
    day = BASE_DAY + timedelta(days=day_offset)
    compare(PriceIndex(lines), list(lines), customer, request_lines, currency, day, policy)


@settings(max_examples=200, deadline=None)
@given(
    initial=line_sets,
    operations=st.lists(
        st.one_of(
            st.integers(0, 45).map(lambda n: ("delete", f"k{n:02d}")),
            st.integers(0, 45)
            .flatmap(lambda n: price_lines(f"k{n:02d}"))
            .map(lambda pl: ("upsert", pl)),
        ),
        max_size=40,
    ),
    customer=customers,
    request_lines=st.lists(requests, min_size=1, max_size=2),
    day_offset=st.integers(0, 10),
    policy=st.sampled_from(list(CampaignPolicy)),
)
def test_index_after_deltas_matches_naive_evaluation_of_surviving_lines(
    initial: tuple[PriceListLine, ...],
    operations: list[tuple[str, object]],
    customer: CustomerPricingContext,
    request_lines: list[QuoteLineRequest],
    day_offset: int,
    policy: CampaignPolicy,
) -> None:
    index = PriceIndex(initial)
    surviving = {pl.key: pl for pl in initial}
    for kind, payload in operations:
        if kind == "delete":
            assert isinstance(payload, str)
            assert index.delete(payload) is (surviving.pop(payload, None) is not None)
        else:
            assert isinstance(payload, PriceListLine)
            index.upsert(payload)
            surviving[payload.key] = payload
    assert len(index) == len(surviving)
    day = BASE_DAY + timedelta(days=day_offset)
    compare(index, list(surviving.values()), customer, request_lines, None, day, policy)
