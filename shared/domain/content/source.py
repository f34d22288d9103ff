"""What the content sync reads from the ERP, as plain data (the service converts ERP rows).

A product is the join of three ERP records: the item row (name, category, GTIN, unit, list
price, blocked), its marketing content row (long texts, attributes, media) and its item
category. The two rows change independently, so each is its own record here and the join
happens in ``product.normalise``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class SourceItem:
    """The item row's fields that a storefront shows (slots: a full pass holds 250,000)."""

    sku: str
    name: str
    category_code: str
    gtin: str
    unit_of_measure: str
    unit_price: Decimal
    price_includes_tax: bool
    blocked: bool


@dataclass(frozen=True, slots=True)
class SourceAttribute:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class SourceMedia:
    """A media reference: a URL, an id of a picture the storefront already has, or both."""

    id: str | None
    url: str | None
    mime_type: str | None


@dataclass(frozen=True, slots=True)
class SourceContent:
    """The marketing content row of one item (the ERP's ``itemContent`` page)."""

    sku: str
    description: str
    marketing_text: str
    attributes: tuple[SourceAttribute, ...]
    media: tuple[SourceMedia, ...]


# Item category code -> display name, read in full once per run (a handful of rows).
Categories = Mapping[str, str]
