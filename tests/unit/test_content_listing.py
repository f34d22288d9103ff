"""Channel views of a product and their content hashes."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.content.listing import (
    SCHEMA_VERSION,
    ChannelProfile,
    canonical_json,
    listing_for,
    money_text,
)
from shared.domain.content.product import Category, Media, Product

WEB = ChannelProfile("web", "en-US", "USD", None)
EU = ChannelProfile("b2b-eu", "de-DE", "EUR", frozenset({"CHAIR", "DESK"}))

PRODUCT = Product(
    sku="AB/12#3",
    name="Ergo Chair",
    description="Built to last.",
    marketing_text="",
    attributes=(("Color", "Black"),),
    media=(Media("m1", "https://media.example/a.jpg", "image/jpeg"),),
    category=Category("CHAIR", "Chairs"),
    gtin=None,
    unit_of_measure="PCS",
    list_price=Decimal("199.5"),
    price_includes_tax=False,
)


def test_the_hash_is_the_sha256_of_the_canonical_body() -> None:
    listing = listing_for(PRODUCT, WEB, "USD")
    canonical = canonical_json(listing.body)
    assert listing.content_hash == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert listing.size_bytes == len(canonical)
    assert listing.body["schemaVersion"] == SCHEMA_VERSION
    assert listing.body["sku"] == "AB/12#3"


def test_the_list_price_goes_only_to_channels_in_the_erp_currency() -> None:
    web = listing_for(PRODUCT, WEB, "USD")
    eu = listing_for(PRODUCT, EU, "USD")
    assert web.body["listPrice"] == "199.50" and web.body["priceIncludesTax"] is False
    assert eu.body["listPrice"] is None and eu.body["currency"] == "EUR"
    assert eu.body["locale"] == "de-DE"


def test_a_price_change_changes_only_the_hash_of_channels_that_carry_the_price() -> None:
    cheaper = replace(PRODUCT, list_price=Decimal("150"))
    assert (
        listing_for(cheaper, WEB, "USD").content_hash
        != listing_for(PRODUCT, WEB, "USD").content_hash
    )
    assert (
        listing_for(cheaper, EU, "USD").content_hash == listing_for(PRODUCT, EU, "USD").content_hash
    )


def test_any_visible_change_changes_the_hash() -> None:
    base = listing_for(PRODUCT, WEB, "USD").content_hash
    variants = [
        replace(PRODUCT, name="Ergo Chair II"),
        replace(PRODUCT, description="Built to last longer."),
        replace(PRODUCT, attributes=(("Color", "Red"),)),
        replace(PRODUCT, attributes=()),
        replace(PRODUCT, media=()),
        replace(PRODUCT, category=Category("CHAIR", "Seating")),
        replace(PRODUCT, gtin="4006381333931"),
        replace(PRODUCT, unit_of_measure="BOX"),
    ]
    hashes = {listing_for(variant, WEB, "USD").content_hash for variant in variants}
    assert base not in hashes and len(hashes) == len(variants)


def test_assortment_by_category() -> None:
    assert EU.sells(PRODUCT) and WEB.sells(PRODUCT)
    lamp = replace(PRODUCT, category=Category("LAMP", "Lamps"))
    uncategorised = replace(PRODUCT, category=None)
    assert not EU.sells(lamp) and not EU.sells(uncategorised)
    assert WEB.sells(lamp) and WEB.sells(uncategorised)


def test_money_text_keeps_every_decimal_and_pads_to_cents() -> None:
    assert money_text(Decimal("12")) == "12.00"
    assert money_text(Decimal("12.5")) == "12.50"
    assert money_text(Decimal("12.34567")) == "12.34567"
    assert money_text(Decimal("0")) == "0.00"


@given(
    name=st.text(min_size=1, max_size=40),
    attributes=st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=4),
)
def test_the_same_product_always_hashes_the_same(
    name: str, attributes: list[tuple[str, str]]
) -> None:
    product = replace(PRODUCT, name=name, attributes=tuple(attributes))
    rebuilt = replace(product, attributes=tuple(list(product.attributes)))
    assert listing_for(product, WEB, "USD") == listing_for(rebuilt, WEB, "USD")
