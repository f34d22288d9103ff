"""The canonical product: one item, its content and its category, checked and normalised.

Every storefront channel receives a view of the same canonical product, so a rule about what
a valid product is lives here once. A row that breaks a rule is not "fixed" silently: the
outcome is ``InvalidProduct`` with every violation named, the channels keep what they had,
and the reasons are recorded for operations. A blocked item is ``WithdrawnProduct`` whatever
its content: storefronts must stop selling it even if its texts are broken.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from shared.domain.content.source import (
    Categories,
    SourceAttribute,
    SourceContent,
    SourceItem,
    SourceMedia,
)

# Business Central's Item."Description" (displayName) is Text[100].
MAX_NAME_LENGTH = 100
# Long texts above this are a data accident (a pasted document), not product copy.
MAX_TEXT_LENGTH = 20_000
MAX_ATTRIBUTE_NAME_LENGTH = 100
MAX_ATTRIBUTE_VALUE_LENGTH = 250
MAX_URL_LENGTH = 2_000
# The storefront webhook's limit on a SKU.
MAX_SKU_LENGTH = 100
_GTIN_LENGTHS = frozenset({8, 12, 13, 14})


@dataclass(frozen=True, slots=True)
class Media:
    id: str | None
    url: str | None
    mime_type: str | None


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Product:
    """A valid, sellable product in the one shape every channel view is built from."""

    sku: str
    name: str
    description: str
    marketing_text: str
    attributes: tuple[tuple[str, str], ...]
    media: tuple[Media, ...]
    category: Category | None
    gtin: str | None
    unit_of_measure: str
    list_price: Decimal
    price_includes_tax: bool


@dataclass(frozen=True, slots=True)
class WithdrawnProduct:
    """Blocked in the ERP: every channel that has it must delete it."""

    sku: str
    reason: str


@dataclass(frozen=True, slots=True)
class InvalidProduct:
    """Breaks a content rule: not sent; channels keep their last good version."""

    sku: str
    violations: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.violations)


Outcome = Product | WithdrawnProduct | InvalidProduct


def normalise(item: SourceItem, content: SourceContent | None, categories: Categories) -> Outcome:
    """Join an item with its content and category and check every content rule.

    ``content`` may be None (an item whose marketing content was never written): the product
    then has empty long texts, no attributes and no media, which is valid.
    """
    if item.blocked:
        return WithdrawnProduct(item.sku, "blocked in the ERP")
    violations: list[str] = []
    _check_sku(item.sku, violations)
    name = _text(item.name)
    if not name:
        violations.append("name is required (the item's displayName is empty)")
    elif len(name) > MAX_NAME_LENGTH:
        violations.append(f"name is longer than {MAX_NAME_LENGTH} characters")
    category = _category(item.category_code, categories, violations)
    gtin = _gtin(item.gtin, violations)
    description = marketing_text = ""
    attributes: tuple[tuple[str, str], ...] = ()
    media: tuple[Media, ...] = ()
    if content is not None:
        description = _long_text("description", content.description, violations)
        marketing_text = _long_text("marketingText", content.marketing_text, violations)
        attributes = _attributes(content.attributes, violations)
        media = _media(content.media, violations)
    if not item.unit_of_measure.strip():
        violations.append("unitOfMeasure is required (the item has no base unit of measure)")
    if item.unit_price < 0:
        violations.append("list price is negative")
    if violations:
        return InvalidProduct(item.sku, tuple(violations))
    return Product(
        sku=item.sku,
        name=name,
        description=description,
        marketing_text=marketing_text,
        attributes=attributes,
        media=media,
        category=category,
        gtin=gtin,
        unit_of_measure=item.unit_of_measure.strip(),
        list_price=item.unit_price,
        price_includes_tax=item.price_includes_tax,
    )


def _text(value: str) -> str:
    # NFC so that one word typed two ways (precomposed or combining accents) hashes the same;
    # CRLF from Windows clients would otherwise make identical copy look changed.
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n")).strip()


def _check_sku(sku: str, violations: list[str]) -> None:
    if not sku or sku != sku.strip():
        violations.append("sku is empty or has leading/trailing spaces")
    elif len(sku) > MAX_SKU_LENGTH:
        violations.append(f"sku is longer than {MAX_SKU_LENGTH} characters")
    elif not sku.isprintable():
        violations.append("sku contains control characters")


def _category(code: str, categories: Categories, violations: list[str]) -> Category | None:
    code = code.strip()
    if not code:
        return None
    name = categories.get(code)
    if name is None:
        violations.append(f"item category {code!r} does not exist in the ERP")
        return None
    return Category(code, _text(name) or code)


def _gtin(value: str, violations: list[str]) -> str | None:
    gtin = value.strip()
    if not gtin:
        return None
    if not (gtin.isascii() and gtin.isdigit() and len(gtin) in _GTIN_LENGTHS):
        violations.append(f"gtin {gtin!r} is not 8, 12, 13 or 14 digits")
        return None
    if not gtin_check_digit_ok(gtin):
        violations.append(f"gtin {gtin!r} has a wrong check digit")
        return None
    return gtin


def gtin_check_digit_ok(gtin: str) -> bool:
    """GS1 check digit: weights 3 and 1 alternate from the rightmost data digit."""
    digits = [int(c) for c in gtin]
    body, check = digits[:-1], digits[-1]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def _long_text(field: str, value: str, violations: list[str]) -> str:
    text = _text(value)
    if len(text) > MAX_TEXT_LENGTH:
        violations.append(f"{field} is {len(text)} characters, more than {MAX_TEXT_LENGTH}")
    return text


def _attributes(
    attributes: tuple[SourceAttribute, ...], violations: list[str]
) -> tuple[tuple[str, str], ...]:
    cleaned: list[tuple[str, str]] = []
    for position, attribute in enumerate(attributes):
        name, value = _text(attribute.name), _text(attribute.value)
        if not name:
            violations.append(f"attributes[{position}].name is empty")
        elif len(name) > MAX_ATTRIBUTE_NAME_LENGTH:
            violations.append(f"attributes[{position}].name is too long")
        elif len(value) > MAX_ATTRIBUTE_VALUE_LENGTH:
            violations.append(f"attributes[{position}].value is too long")
        else:
            cleaned.append((name, value))
    return tuple(cleaned)


def _media(media: tuple[SourceMedia, ...], violations: list[str]) -> tuple[Media, ...]:
    cleaned: list[Media] = []
    for position, entry in enumerate(media):
        media_id = (entry.id or "").strip() or None
        mime = (entry.mime_type or "").strip() or None
        problem = None
        if entry.url is not None and not is_media_url(entry.url):
            problem = f"media[{position}].url {entry.url[:80]!r} is not an absolute http(s) URL"
        elif entry.url is None and media_id is None:
            problem = f"media[{position}] has neither a url nor an id"
        elif mime is not None and (mime.count("/") != 1 or " " in mime):
            problem = f"media[{position}].mimeType {mime[:80]!r} is not type/subtype"
        if problem:
            violations.append(problem)
            continue
        cleaned.append(Media(media_id, entry.url, mime))
    return tuple(cleaned)


def is_media_url(url: str) -> bool:
    """An absolute http(s) URL with a host and no spaces (an empty string is not one)."""
    if not url or len(url) > MAX_URL_LENGTH or any(c.isspace() for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
