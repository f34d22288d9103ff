"""Business Central (V16) price calculation over local data, with a fast in-memory index.

Pure domain code: no I/O. The price publisher loads `PriceListLine`s into a `PriceIndex`;
HTTP functions call `quote`.
"""

from .currency import (
    DEFAULT_AMOUNT_PRECISION,
    DEFAULT_UNIT_AMOUNT_PRECISION,
    CurrencyPrecision,
    CurrencyTable,
    default_currency_table,
)
from .errors import (
    InvalidPriceListLine,
    InvalidPricingInput,
    LineViolation,
    PricingError,
    QuoteRejected,
    ViolationRule,
)
from .index import PriceIndex, PriceLines
from .models import (
    AmountType,
    AssetType,
    CampaignPolicy,
    CustomerPricingContext,
    ItemPricingInfo,
    PriceListLine,
    QuoteLineRequest,
    SourceType,
)
from .quote import PriceSource, PriceSourceType, Quote, QuotedLine, quote
from .rounding import round_to_precision

__all__ = [
    "DEFAULT_AMOUNT_PRECISION",
    "DEFAULT_UNIT_AMOUNT_PRECISION",
    "AmountType",
    "AssetType",
    "CampaignPolicy",
    "CurrencyPrecision",
    "CurrencyTable",
    "CustomerPricingContext",
    "InvalidPriceListLine",
    "InvalidPricingInput",
    "ItemPricingInfo",
    "LineViolation",
    "PriceIndex",
    "PriceLines",
    "PriceListLine",
    "PriceSource",
    "PriceSourceType",
    "PricingError",
    "Quote",
    "QuoteLineRequest",
    "QuoteRejected",
    "QuotedLine",
    "SourceType",
    "ViolationRule",
    "default_currency_table",
    "quote",
    "round_to_precision",
]
