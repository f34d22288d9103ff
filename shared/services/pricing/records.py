"""Published records turned into the pricing domain's objects, one conversion for every path.

The table snapshot, the snapshot blob and the deltas all hold the same records (field order in
``price_data``); building lines and items from them in one place is what makes a book loaded
from the blob quote exactly what a book loaded from the tables quotes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from shared.adapters.stores.price_data import Record
from shared.domain.pricing.errors import InvalidPriceListLine, InvalidPricingInput
from shared.domain.pricing.models import ItemPricingInfo, PriceListLine

_log = logging.getLogger(__name__)


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def line(record: Record) -> PriceListLine:
    (key, code, source_type, source_no, asset_type, asset_no, variant, unit, minimum,
     amount_type, price, discount, allow, start, end, currency) = record  # fmt: skip
    return PriceListLine(
        key=key,
        price_list_code=code,
        source_type=source_type,
        source_no=source_no,
        asset_type=asset_type,
        asset_no=asset_no,
        variant_code=variant,
        unit_of_measure_code=unit,
        minimum_quantity=Decimal(minimum),
        amount_type=amount_type,
        unit_price=Decimal(price),
        line_discount_percent=Decimal(discount),
        allow_line_disc=bool(allow),
        starting_date=_day(start),
        ending_date=_day(end),
        currency_code=currency,
    )


def parse_line(record: Record, *, quiet: bool = False) -> PriceListLine | None:
    """The line, or None (logged unless ``quiet``) when the ERP row is not a valid line."""
    try:
        return line(record)
    except InvalidPriceListLine as error:
        if not quiet:
            _log.warning("ignored price list line %s: %s", record[0], error)
        return None


def item(number: str, record: Record, units: Mapping[str, Decimal]) -> ItemPricingInfo | None:
    """The item from its record and the units known for it, or None (logged) if invalid.

    Records published before the item category was part of an item have 4 fields."""
    _, base_unit, unit_price, blocked, *rest = record
    try:
        return ItemPricingInfo(
            number=number,
            base_unit_of_measure=base_unit,
            unit_price=Decimal(unit_price),
            blocked=bool(blocked),
            sales_units_of_measure=units,
            category=str(rest[0] or "") if rest else "",
        )
    except (InvalidPricingInput, ArithmeticError) as error:
        _log.warning("ignored item %s: %s", number, error)
        return None
