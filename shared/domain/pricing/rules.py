"""Business Central V16 price calculation rules over candidate price list lines.

Prices and discounts are chosen separately (as in Business Central): the unit price is
the lowest unit price among applicable lines that define a price (amount type Price or
Any), the line discount the highest discount among applicable lines that define a
discount (Discount or Any).

Tie-breaks, so that equal inputs always give the same answer and the same reported source:
- price: lowest unit price; then a line that allows line discount (a tie must not cost the
  customer a discount another equally priced line grants); then the more specific source
  (Customer, Customer Price Group, Campaign, All Customers); then the higher minimum
  quantity; then the lower price list code; then the lower line key.
- discount: highest percent; then the more specific source; then Item before Item
  Discount Group; then the higher minimum quantity; then the lower price list code; then
  the lower line key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .models import AmountType, AssetType, PriceListLine, SourceType

# Module-level aliases: enum attribute access goes through the metaclass, which is
# measurably slower in the per-line loop below.
_DISCOUNT_ONLY = AmountType.DISCOUNT
_PRICE_ONLY = AmountType.PRICE
_ITEM = AssetType.ITEM
_ALL_CUSTOMERS = SourceType.ALL_CUSTOMERS

SOURCE_SPECIFICITY: dict[SourceType, int] = {
    SourceType.CUSTOMER: 0,
    SourceType.CUSTOMER_PRICE_GROUP: 1,
    SourceType.CAMPAIGN: 2,
    SourceType.ALL_CUSTOMERS: 3,
}
ASSET_SPECIFICITY: dict[AssetType, int] = {
    AssetType.ITEM: 0,
    AssetType.ITEM_DISCOUNT_GROUP: 1,
}


@dataclass(frozen=True, slots=True)
class LineCriteria:
    """Everything except source and asset that decides whether a line applies.

    Source and asset are matched by the index's keys; these are checked line by line.
    """

    currency_code: str
    currency_is_local: bool
    unit_of_measure: str
    unit_is_base: bool
    variant_code: str
    quantity: Decimal
    order_date: date


def line_applies(line: PriceListLine, criteria: LineCriteria) -> bool:
    """Whether a line whose source and asset already match applies to this request."""
    if line.minimum_quantity > criteria.quantity:
        return False
    currency = line.currency_code
    if currency != criteria.currency_code and not (currency == "" and criteria.currency_is_local):
        return False
    unit = line.unit_of_measure_code
    if unit != criteria.unit_of_measure and not (unit == "" and criteria.unit_is_base):
        return False
    variant = line.variant_code
    if variant and variant != criteria.variant_code:
        return False
    starting = line.starting_date
    if starting is not None and starting > criteria.order_date:
        return False
    ending = line.ending_date
    return ending is None or ending >= criteria.order_date


def price_rank(line: PriceListLine) -> tuple[Decimal, bool, int, Decimal, str, str]:
    """Sort key of a price line: the smallest key wins."""
    return (
        line.unit_price,
        not line.allow_line_disc,
        SOURCE_SPECIFICITY[line.source_type],
        -line.minimum_quantity,
        line.price_list_code,
        line.key,
    )


def discount_rank(line: PriceListLine) -> tuple[Decimal, int, int, Decimal, str, str]:
    """Sort key of a discount line: the smallest key wins."""
    return (
        -line.line_discount_percent,
        SOURCE_SPECIFICITY[line.source_type],
        ASSET_SPECIFICITY[line.asset_type],
        -line.minimum_quantity,
        line.price_list_code,
        line.key,
    )


def _better_price(line: PriceListLine, best: PriceListLine | None) -> bool:
    if best is None:
        return True
    if line.unit_price != best.unit_price:
        return line.unit_price < best.unit_price
    return price_rank(line) < price_rank(best)


def _better_discount(line: PriceListLine, best: PriceListLine | None) -> bool:
    if best is None:
        return True
    if line.line_discount_percent != best.line_discount_percent:
        return line.line_discount_percent > best.line_discount_percent
    return discount_rank(line) < discount_rank(best)


@dataclass(frozen=True, slots=True)
class Selection:
    """The winning lines for one request line; None where no line applies.

    `list_price_line` is the best All Customers price line: what a customer without
    contract terms would pay, reported as the list price.
    """

    price_line: PriceListLine | None
    discount_line: PriceListLine | None
    list_price_line: PriceListLine | None


def select_lines(buckets: Iterable[tuple[PriceListLine, ...]], criteria: LineCriteria) -> Selection:
    """Pick the winning price, discount and list price lines in one pass.

    Each bucket must be sorted by ascending minimum quantity (the index keeps it so),
    which lets the scan stop at the first quantity break above the ordered quantity.
    """
    best_price: PriceListLine | None = None
    best_discount: PriceListLine | None = None
    best_list: PriceListLine | None = None
    quantity = criteria.quantity
    for bucket in buckets:
        for line in bucket:
            if line.minimum_quantity > quantity:
                break
            if not line_applies(line, criteria):
                continue
            amount_type = line.amount_type
            if amount_type is not _DISCOUNT_ONLY and line.asset_type is _ITEM:
                if _better_price(line, best_price):
                    best_price = line
                if line.source_type is _ALL_CUSTOMERS and _better_price(line, best_list):
                    best_list = line
            if amount_type is not _PRICE_ONLY and _better_discount(line, best_discount):
                best_discount = line
    return Selection(best_price, best_discount, best_list)
