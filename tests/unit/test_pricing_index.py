"""PriceIndex: bulk load, delta upserts and deletes, and their effect on quotes."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from shared.domain.pricing import (
    AmountType,
    AssetType,
    CampaignPolicy,
    CustomerPricingContext,
    ItemPricingInfo,
    PriceIndex,
    PriceListLine,
    PriceSourceType,
    QuotedLine,
    QuoteLineRequest,
    SourceType,
    quote,
)

D = Decimal
TODAY = date(2025, 6, 15)
ITEMS = {"1000": ItemPricingInfo("1000", "PCS", D("20"), discount_group="GRP")}
CUSTOMER = CustomerPricingContext("C1", price_group="RETAIL")


def line(
    key: str,
    price: str,
    *,
    source: SourceType = SourceType.ALL_CUSTOMERS,
    source_no: str = "",
    min_qty: str = "0",
    asset_no: str = "1000",
) -> PriceListLine:
    return PriceListLine(
        key=key,
        price_list_code="PL",
        source_type=source,
        source_no=source_no,
        asset_type=AssetType.ITEM,
        asset_no=asset_no,
        minimum_quantity=D(min_qty),
        amount_type=AmountType.PRICE,
        unit_price=D(price),
    )


def priced(
    index: PriceIndex,
    qty: str = "1",
    customer: CustomerPricingContext = CUSTOMER,
    policy: CampaignPolicy = CampaignPolicy.ACTIVE_FOR_CUSTOMER,
) -> QuotedLine:
    result = quote(
        index,
        customer,
        ITEMS,
        [QuoteLineRequest("1000", D(qty))],
        None,
        TODAY,
        campaign_policy=policy,
    )
    return result.lines[0]


def test_bulk_load_indexes_every_line_and_later_duplicates_win() -> None:
    index = PriceIndex([line("a", "10"), line("b", "9", min_qty="5"), line("a", "12")])
    assert len(index) == 2
    assert "a" in index and "zzz" not in index
    stored = index.get("a")
    assert stored is not None and stored.unit_price == D("12")
    assert {ln.key for ln in index} == {"a", "b"}
    assert priced(index).unit_price == D("12")
    assert priced(index, qty="5").unit_price == D("9")


def test_upsert_of_new_lower_price_changes_the_quote() -> None:
    index = PriceIndex([line("a", "10")])
    index.upsert(line("contract", "8", source=SourceType.CUSTOMER, source_no="C1"))
    result = priced(index)
    assert (result.unit_price, result.price_source.type) == (D("8"), PriceSourceType.CUSTOMER)


def test_upsert_replaces_the_line_with_the_same_key() -> None:
    index = PriceIndex([line("a", "10"), line("b", "11")])
    index.upsert(line("a", "12"))
    assert len(index) == 2
    assert priced(index).unit_price == D("11")
    index.upsert(replace(line("a", "12"), unit_price=D("7")))
    assert priced(index).unit_price == D("7")


def test_upsert_moving_a_line_to_another_source_leaves_no_trace_behind() -> None:
    index = PriceIndex([line("a", "5", source=SourceType.CUSTOMER, source_no="C1")])
    assert priced(index).unit_price == D("5")
    index.upsert(line("a", "5", source=SourceType.CUSTOMER, source_no="C2"))
    assert priced(index).price_source.type is PriceSourceType.LIST_PRICE
    other = CustomerPricingContext("C2")
    assert priced(index, customer=other).unit_price == D("5")
    assert index.bucket_count == 1


def test_delete_restores_the_previous_price_and_is_idempotent() -> None:
    index = PriceIndex([line("a", "10"), line("b", "8", min_qty="3")])
    assert priced(index, qty="3").unit_price == D("8")
    assert index.delete("b") is True
    assert index.delete("b") is False
    assert priced(index, qty="3").unit_price == D("10")
    assert index.delete_many(["a", "missing"]) == 1
    assert len(index) == 0
    assert priced(index).price_source.type is PriceSourceType.LIST_PRICE
    # Emptied buckets are dropped so months of deltas do not leak memory.
    assert index.bucket_count == 0


def test_campaign_lines_follow_deltas_under_open_to_all_policy() -> None:
    campaign = line("m", "6", source=SourceType.CAMPAIGN, source_no="SUMMER")
    index = PriceIndex([line("a", "10")])
    open_all = CampaignPolicy.OPEN_TO_ALL
    index.upsert(campaign)
    assert priced(index, policy=open_all).unit_price == D("6")
    # Not a member, so under Business Central's own rule the campaign does not apply.
    assert priced(index).unit_price == D("10")
    index.upsert(replace(campaign, unit_price=D("7")))
    assert priced(index, policy=open_all).unit_price == D("7")
    index.upsert(replace(campaign, source_type=SourceType.ALL_CUSTOMERS, unit_price=D("9")))
    assert priced(index, policy=open_all).price_source.type is PriceSourceType.ALL_CUSTOMERS
    index.delete("m")
    assert priced(index, policy=open_all).unit_price == D("10")


def test_load_into_a_populated_index_merges() -> None:
    index = PriceIndex([line("a", "10"), line("b", "9", min_qty="2")])
    index.load([line("b", "4", min_qty="2"), line("c", "3", min_qty="100")])
    assert len(index) == 3
    assert priced(index, qty="2").unit_price == D("4")
    assert priced(index, qty="100").unit_price == D("3")


def test_lines_of_other_items_do_not_appear_among_candidates() -> None:
    from shared.domain.pricing.index import CustomerSources

    index = PriceIndex(
        [line(f"x{i}", "1", asset_no=f"OTHER{i}") for i in range(100)] + [line("a", "10")]
    )
    sources = CustomerSources(CUSTOMER, CampaignPolicy.ACTIVE_FOR_CUSTOMER)
    buckets = index.candidate_buckets("1000", "GRP", sources)
    assert [ln.key for bucket in buckets for ln in bucket] == ["a"]


def test_buckets_stay_sorted_by_minimum_quantity_after_deltas() -> None:
    from shared.domain.pricing.index import CustomerSources

    index = PriceIndex([line("q10", "8", min_qty="10"), line("q0", "10")])
    index.upsert(line("q5", "9", min_qty="5"))
    index.upsert(line("q10", "7", min_qty="1"))
    sources = CustomerSources(CUSTOMER, CampaignPolicy.ACTIVE_FOR_CUSTOMER)
    (bucket,) = index.candidate_buckets("1000", "", sources)
    assert [ln.minimum_quantity for ln in bucket] == [D(0), D(1), D(5)]


def test_clear_empties_the_index() -> None:
    index = PriceIndex([line("a", "10")])
    index.clear()
    assert len(index) == 0 and index.bucket_count == 0
    index.upsert(line("a", "11"))
    assert priced(index).unit_price == D("11")
