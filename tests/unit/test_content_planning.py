"""Planning what a channel needs (upserts, deletes, nothing) and cutting it into batches."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.content.listing import ChannelProfile, listing_for
from shared.domain.content.planning import (
    Action,
    Operation,
    deletions,
    plan_channel,
    split_batches,
)
from shared.domain.content.product import (
    Category,
    InvalidProduct,
    Product,
    WithdrawnProduct,
)

WEB = ChannelProfile("web", "en-US", "USD", None)
EU = ChannelProfile("b2b-eu", "de-DE", "EUR", frozenset({"CHAIR"}))


def _product(sku: str, category: str = "CHAIR", name: str = "Chair") -> Product:
    return Product(
        sku=sku,
        name=name,
        description="",
        marketing_text="",
        attributes=(),
        media=(),
        category=Category(category, category.title()),
        gtin=None,
        unit_of_measure="PCS",
        list_price=Decimal("10"),
        price_includes_tax=False,
    )


def _hash(product: Product, channel: ChannelProfile) -> str:
    return listing_for(product, channel, "USD").content_hash


def test_new_products_are_upserted_and_known_ones_skipped() -> None:
    known, new = _product("A"), _product("B")
    plan = plan_channel([known, new], WEB, {"A": _hash(known, WEB), "B": None}, "USD")
    assert [(op.action, op.sku) for op in plan.operations] == [(Action.UPSERT, "B")]
    assert plan.unchanged == 1
    assert plan.operations[0].content_hash == _hash(new, WEB)


def test_a_changed_product_is_upserted_with_its_new_hash() -> None:
    old, changed = _product("A"), _product("A", name="Better chair")
    plan = plan_channel([changed], WEB, {"A": _hash(old, WEB)}, "USD")
    assert plan.operations[0].content_hash == _hash(changed, WEB)


def test_withdrawn_products_are_deleted_only_where_present() -> None:
    withdrawn = [WithdrawnProduct("A", "blocked"), WithdrawnProduct("B", "blocked")]
    plan = plan_channel(withdrawn, WEB, {"A": "sha256:old", "B": None}, "USD")
    assert [(op.action, op.sku, op.content_hash) for op in plan.operations] == [
        (Action.DELETE, "A", "sha256:old")
    ]
    assert plan.not_sold == 1


def test_a_product_leaving_a_channels_assortment_is_deleted_there() -> None:
    lamp = _product("A", category="LAMP")
    eu_plan = plan_channel([lamp], EU, {"A": "sha256:was-a-chair"}, "USD")
    web_plan = plan_channel([lamp], WEB, {"A": _hash(lamp, WEB)}, "USD")
    assert [op.action for op in eu_plan.operations] == [Action.DELETE]
    assert web_plan.operations == [] and web_plan.unchanged == 1


def test_invalid_products_are_left_alone() -> None:
    plan = plan_channel([InvalidProduct("A", ("name is required",))], WEB, {"A": "sha256:x"}, "USD")
    assert plan.operations == [] and plan.invalid == 1


def test_a_sku_appears_at_most_once() -> None:
    plan = plan_channel([_product("A"), _product("A", name="dup")], WEB, {}, "USD")
    assert len(plan.operations) == 1 and plan.operations[0].listing is not None
    assert plan.operations[0].listing.body["name"] == "Chair"


def test_deletions_carry_the_last_acknowledged_hash() -> None:
    ops = deletions(["A", "B"], {"A": "sha256:a"})
    assert [(op.sku, op.content_hash) for op in ops] == [("A", "sha256:a"), ("B", None)]


def _deletes(count: int) -> list[Operation]:
    return [Operation(Action.DELETE, f"SKU-{n}", None) for n in range(count)]


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(0, []), (1, [1]), (500, [500]), (501, [500, 1]), (1250, [500, 500, 250])],
)
def test_batches_hold_at_most_the_operation_limit(count: int, sizes: list[int]) -> None:
    assert [len(b) for b in split_batches(_deletes(count), 500, 10**9)] == sizes


def test_batches_respect_the_byte_limit_and_an_oversized_operation_travels_alone() -> None:
    ops = _deletes(10)
    per_op = ops[0].size_bytes
    assert [len(b) for b in split_batches(ops, 500, per_op * 4)] == [4, 4, 2]
    assert [len(b) for b in split_batches(ops, 500, 1)] == [1] * 10


def test_batches_need_a_positive_limit() -> None:
    with pytest.raises(ValueError):
        split_batches(_deletes(1), 0, 100)


@given(
    count=st.integers(min_value=0, max_value=700),
    max_ops=st.integers(min_value=1, max_value=600),
    max_bytes=st.integers(min_value=1, max_value=50_000),
)
def test_batching_keeps_every_operation_in_order(count: int, max_ops: int, max_bytes: int) -> None:
    ops = _deletes(count)
    batches = split_batches(ops, max_ops, max_bytes)
    assert [op for batch in batches for op in batch] == ops
    for batch in batches:
        assert 1 <= len(batch) <= max_ops
        assert len(batch) == 1 or sum(op.size_bytes for op in batch) <= max_bytes
