"""A channel's view of a product (its listing) and the content hash that identifies it.

The hash is taken over the exact JSON a channel receives, so anything that changes what the
storefront would show changes the hash, and nothing else does (an ERP row touched without a
visible change, a new ETag, a stock figure). ``SCHEMA_VERSION`` is part of the hashed view:
changing the canonical shape bumps it, and every product is sent again once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.domain.content.product import Product

SCHEMA_VERSION = 1
HASH_PREFIX = "sha256:"


@dataclass(frozen=True, slots=True)
class ChannelProfile:
    """What a channel sells and how it presents it (from the channel configuration)."""

    name: str
    locale: str
    currency: str
    # None sells every category (and items without one); otherwise only these codes.
    categories: frozenset[str] | None

    def sells(self, product: Product) -> bool:
        if self.categories is None:
            return True
        return product.category is not None and product.category.code in self.categories


@dataclass(frozen=True, slots=True)
class Listing:
    """One product as one channel receives it, with its hash and serialised size."""

    sku: str
    content_hash: str
    body: dict[str, Any]
    size_bytes: int


def money_text(amount: Decimal) -> str:
    """A decimal string with at least two places, never rounded: ``12`` -> ``12.00``."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        amount = amount.quantize(Decimal("0.01"))
    return format(amount, "f")


def listing_for(product: Product, channel: ChannelProfile, price_currency: str) -> Listing:
    """The channel's view of ``product``; ``price_currency`` is the ERP's local currency.

    The list price is carried only when the channel sells in the currency the ERP keeps list
    prices in: converting would need an exchange rate and a rounding rule, so the number would
    not be the ERP's. Other channels get ``listPrice: null`` and quote prices live.
    """
    exact_price = channel.currency == price_currency
    body: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "marketingText": product.marketing_text,
        "attributes": [{"name": name, "value": value} for name, value in product.attributes],
        "media": [
            {"id": media.id, "url": media.url, "mimeType": media.mime_type}
            for media in product.media
        ],
        "category": (
            {"code": product.category.code, "name": product.category.name}
            if product.category
            else None
        ),
        "gtin": product.gtin,
        "unitOfMeasure": product.unit_of_measure,
        "locale": channel.locale,
        "currency": channel.currency,
        "listPrice": money_text(product.list_price) if exact_price else None,
        "priceIncludesTax": product.price_includes_tax if exact_price else None,
    }
    canonical = canonical_json(body)
    return Listing(product.sku, content_hash(canonical), body, len(canonical))


def canonical_json(body: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same product always gives the same bytes."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(canonical: bytes) -> str:
    return HASH_PREFIX + hashlib.sha256(canonical).hexdigest()
