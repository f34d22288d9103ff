"""The canonical product: joining item, content and category, and every content rule."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from shared.domain.content.product import (
    MAX_TEXT_LENGTH,
    InvalidProduct,
    Product,
    WithdrawnProduct,
    gtin_check_digit_ok,
    is_media_url,
    normalise,
)
from shared.domain.content.source import (
    SourceAttribute,
    SourceContent,
    SourceItem,
    SourceMedia,
)

CATEGORIES = {"CHAIR": "Chairs", "DESK": "Desks"}


def _item(**changes: object) -> SourceItem:
    item = SourceItem(
        sku="IT-000001",
        name="Ergo Chair 1",
        category_code="CHAIR",
        gtin="4006381333931",
        unit_of_measure="PCS",
        unit_price=Decimal("199.5"),
        price_includes_tax=False,
        blocked=False,
    )
    return replace(item, **changes)  # type: ignore[arg-type]


def _content(**changes: object) -> SourceContent:
    content = SourceContent(
        sku="IT-000001",
        description="Built for daily use.",
        marketing_text="Ergo Chair 1: made to last.",
        attributes=(SourceAttribute("Color", "Black"), SourceAttribute("Material", "Steel")),
        media=(SourceMedia("m1", "https://media.example/IT-000001/main.jpg", "image/jpeg"),),
    )
    return replace(content, **changes)  # type: ignore[arg-type]


def _violations(outcome: object) -> tuple[str, ...]:
    assert isinstance(outcome, InvalidProduct), outcome
    return outcome.violations


def test_a_complete_item_becomes_a_product_with_its_category_name() -> None:
    product = normalise(_item(), _content(), CATEGORIES)
    assert isinstance(product, Product)
    assert product.category is not None and product.category.name == "Chairs"
    assert product.attributes == (("Color", "Black"), ("Material", "Steel"))
    assert product.media[0].url == "https://media.example/IT-000001/main.jpg"
    assert product.list_price == Decimal("199.5")


def test_an_item_without_content_is_still_a_product() -> None:
    product = normalise(_item(), None, CATEGORIES)
    assert isinstance(product, Product)
    assert (product.description, product.attributes, product.media) == ("", (), ())


def test_a_blocked_item_is_withdrawn_even_with_broken_content() -> None:
    outcome = normalise(
        _item(blocked=True, name=""), _content(media=(SourceMedia(None, "x", None),)), CATEGORIES
    )
    assert isinstance(outcome, WithdrawnProduct)
    assert outcome.sku == "IT-000001"


@pytest.mark.parametrize(
    ("item_changes", "content_changes", "expected"),
    [
        ({"name": "   "}, {}, "name is required"),
        ({"name": "x" * 101}, {}, "name is longer"),
        ({"category_code": "NOPE"}, {}, "item category 'NOPE' does not exist"),
        ({"gtin": "12345"}, {}, "is not 8, 12, 13 or 14 digits"),
        ({"gtin": "4006381333932"}, {}, "wrong check digit"),
        ({"unit_of_measure": ""}, {}, "unitOfMeasure is required"),
        ({"unit_price": Decimal("-1")}, {}, "list price is negative"),
        ({"sku": " IT-1"}, {}, "leading/trailing spaces"),
        ({}, {"description": "d" * (MAX_TEXT_LENGTH + 1)}, "description is 20001 characters"),
        ({}, {"attributes": (SourceAttribute("", "orphan"),)}, "attributes[0].name is empty"),
        ({}, {"media": (SourceMedia("m", "not a url", None),)}, "media[0].url 'not a url'"),
        ({}, {"media": (SourceMedia("m", "", None),)}, "media[0].url ''"),
        ({}, {"media": (SourceMedia(None, None, None),)}, "neither a url nor an id"),
        ({}, {"media": (SourceMedia("m", None, "jpeg"),)}, "is not type/subtype"),
    ],
)
def test_each_content_rule_names_what_is_wrong(
    item_changes: dict[str, object], content_changes: dict[str, object], expected: str
) -> None:
    outcome = normalise(_item(**item_changes), _content(**content_changes), CATEGORIES)
    assert any(expected in violation for violation in _violations(outcome))


def test_every_violation_is_listed_not_just_the_first() -> None:
    outcome = normalise(
        _item(name="", gtin="1"),
        _content(media=(SourceMedia("m", "ftp://x", None),)),
        CATEGORIES,
    )
    assert len(_violations(outcome)) == 3
    assert isinstance(outcome, InvalidProduct) and "; " in outcome.reason


def test_texts_are_normalised_so_equivalent_copy_is_equal() -> None:
    composed = normalise(_item(name="Caf\u00e9 Chair"), _content(description="a\r\nb "), CATEGORIES)
    decomposed = normalise(
        _item(name="Cafe\u0301 Chair "), _content(description="a\nb"), CATEGORIES
    )
    assert composed == decomposed


def test_an_id_only_media_reference_and_a_blank_category_are_valid() -> None:
    product = normalise(
        _item(category_code="", gtin=""),
        _content(media=(SourceMedia("picture-7", None, None),)),
        CATEGORIES,
    )
    assert isinstance(product, Product)
    assert product.category is None and product.gtin is None
    assert product.media[0].id == "picture-7"


@pytest.mark.parametrize(
    ("gtin", "ok"),
    [("4006381333931", True), ("96385074", True), ("036000291452", True), ("036000291453", False)],
)
def test_gtin_check_digit(gtin: str, ok: bool) -> None:
    assert gtin_check_digit_ok(gtin) is ok


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://media.contoso.example/items/AB%2F12%233/main.jpg", True),
        ("http://cdn.example/a.png", True),
        ("not a url", False),
        ("", False),
        ("https:///nohost.png", False),
        ("javascript:alert(1)", False),
        ("https://cdn.example/with space.png", False),
    ],
)
def test_media_urls(url: str, ok: bool) -> None:
    assert is_media_url(url) is ok
