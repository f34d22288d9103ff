"""Plain domain objects of Business Central (V16) pricing.

Field names follow the `priceListLines` and `customerPricingProfiles` custom API pages in
snake_case. Objects are frozen slotted dataclasses rather than pydantic models: the index
holds about a million lines, and validation of outside data happens in the adapters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from .currency import normalize_code
from .errors import InvalidPriceListLine, InvalidPricingInput
from .interning import shared_code, shared_value

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)


class SourceType(StrEnum):
    """Who a price list line is for (values as Business Central spells them)."""

    ALL_CUSTOMERS = "All Customers"
    CUSTOMER = "Customer"
    CUSTOMER_PRICE_GROUP = "Customer Price Group"
    CAMPAIGN = "Campaign"


class AssetType(StrEnum):
    """What a price list line prices."""

    ITEM = "Item"
    ITEM_DISCOUNT_GROUP = "Item Discount Group"


class AmountType(StrEnum):
    """What a price list line defines: a price, a discount, or both ("Any")."""

    PRICE = "Price"
    DISCOUNT = "Discount"
    ANY = "Any"


class CampaignPolicy(StrEnum):
    """When a Campaign line applies.

    `ACTIVE_FOR_CUSTOMER` (Business Central's own rule): only campaigns listed in the
    customer's `active_campaigns`. `OPEN_TO_ALL`: any campaign line applies to every
    customer within its dates, for set-ups (like the ERP simulator's) that do not model
    campaign membership.
    """

    ACTIVE_FOR_CUSTOMER = "active-for-customer"
    OPEN_TO_ALL = "open-to-all"


def _check_decimal(value: object, name: str, key: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidPriceListLine(f"price list line {key!r}: {name} must be a finite Decimal")
    return value


@dataclass(frozen=True, slots=True)
class PriceListLine:
    """One Business Central price list line.

    `key` is the line's stable identity used for delta upserts and deletes (the row's
    SystemId, or "{priceListCode}/{lineNo}"). Blank `currency_code` means the local
    currency, blank `unit_of_measure_code` the item's base unit, blank `variant_code` every
    variant, None dates an open window; date bounds are inclusive.
    """

    key: str
    price_list_code: str
    source_type: SourceType
    source_no: str
    asset_type: AssetType
    asset_no: str
    variant_code: str = ""
    unit_of_measure_code: str = ""
    minimum_quantity: Decimal = _ZERO
    amount_type: AmountType = AmountType.ANY
    unit_price: Decimal = _ZERO
    line_discount_percent: Decimal = _ZERO
    allow_line_disc: bool = True
    starting_date: date | None = None
    ending_date: date | None = None
    currency_code: str = ""

    def __post_init__(self) -> None:
        key = self.key
        if not key:
            raise InvalidPriceListLine("price list line key must not be blank")
        if not self.asset_no:
            raise InvalidPriceListLine(f"price list line {key!r}: asset number is blank")
        # Coerce plain strings from adapters; an unknown value raises ValueError here.
        try:
            source_type = SourceType(self.source_type)
            asset_type = AssetType(self.asset_type)
            amount_type = AmountType(self.amount_type)
        except ValueError as exc:
            raise InvalidPriceListLine(f"price list line {key!r}: {exc}") from exc
        minimum_quantity = _check_decimal(self.minimum_quantity, "minimum quantity", key)
        unit_price = _check_decimal(self.unit_price, "unit price", key)
        discount = _check_decimal(self.line_discount_percent, "line discount %", key)
        if minimum_quantity < 0:
            raise InvalidPriceListLine(f"price list line {key!r}: negative minimum quantity")
        if unit_price < 0:
            raise InvalidPriceListLine(f"price list line {key!r}: negative unit price")
        if not _ZERO <= discount <= _HUNDRED:
            raise InvalidPriceListLine(f"price list line {key!r}: line discount % not in 0..100")
        start, end = self.starting_date, self.ending_date
        if start is not None and end is not None and end < start:
            raise InvalidPriceListLine(f"price list line {key!r}: ending date before start")
        setter = object.__setattr__
        setter(self, "source_type", source_type)
        setter(self, "asset_type", asset_type)
        setter(self, "amount_type", amount_type)
        # An "All Customers" line has no source number in Business Central; ignoring a
        # stray one keeps the index key canonical.
        source_no = "" if source_type is SourceType.ALL_CUSTOMERS else self.source_no
        # Shared objects for repeating values: see interning.py for the memory figures.
        setter(self, "source_no", shared_code(source_no))
        setter(self, "asset_no", shared_code(self.asset_no))
        setter(self, "price_list_code", shared_code(self.price_list_code))
        setter(self, "variant_code", shared_code(normalize_code(self.variant_code)))
        setter(self, "unit_of_measure_code", shared_code(normalize_code(self.unit_of_measure_code)))
        setter(self, "currency_code", shared_code(normalize_code(self.currency_code)))
        setter(self, "minimum_quantity", shared_value(minimum_quantity))
        setter(self, "line_discount_percent", shared_value(discount))
        if start is not None:
            setter(self, "starting_date", shared_value(start))
        if end is not None:
            setter(self, "ending_date", shared_value(end))

    @property
    def defines_price(self) -> bool:
        """Whether the line competes for the unit price.

        Business Central only lets Item lines carry a price (an Item Discount Group line
        is always a discount), so a group line's unit price is ignored even if its amount
        type says otherwise.
        """
        return self.amount_type is not AmountType.DISCOUNT and self.asset_type is AssetType.ITEM

    @property
    def defines_discount(self) -> bool:
        """Whether the line competes for the line discount."""
        return self.amount_type is not AmountType.PRICE


@dataclass(frozen=True, slots=True)
class CustomerPricingContext:
    """What pricing needs to know about the customer (the `customerPricingProfiles` page).

    `discount_group` is carried for completeness; the `priceListLines` contract has no
    "Customer Disc. Group" source type, so it does not influence prices today.
    """

    customer_no: str
    price_group: str = ""
    discount_group: str = ""
    currency_code: str = ""
    allow_line_disc: bool = True
    active_campaigns: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.customer_no:
            raise InvalidPricingInput("customer number must not be blank")
        object.__setattr__(self, "currency_code", normalize_code(self.currency_code))
        object.__setattr__(self, "active_campaigns", frozenset(self.active_campaigns))


@dataclass(frozen=True, slots=True)
class ItemPricingInfo:
    """What pricing needs to know about an item.

    `unit_price` is the item card's list price per base unit in the local currency.
    `sales_units_of_measure` maps each unit the item may be sold in to its quantity per
    base unit; the base unit is always sellable with quantity 1.
    """

    number: str
    base_unit_of_measure: str
    unit_price: Decimal
    discount_group: str = ""
    blocked: bool = False
    sales_units_of_measure: Mapping[str, Decimal] = field(default_factory=dict)
    # The ERP's item category code (the sync policy may make a category backorderable).
    category: str = ""

    def __post_init__(self) -> None:
        base = normalize_code(self.base_unit_of_measure)
        if not self.number or not base:
            raise InvalidPricingInput("item number and base unit of measure are required")
        if not self.unit_price.is_finite() or self.unit_price < 0:
            raise InvalidPricingInput(f"item {self.number!r}: invalid unit price")
        units = {normalize_code(code): qty for code, qty in self.sales_units_of_measure.items()}
        for code, qty in units.items():
            if not qty.is_finite() or qty <= 0:
                raise InvalidPricingInput(
                    f"item {self.number!r}: quantity per {code!r} must be positive"
                )
        units[base] = _ONE
        object.__setattr__(self, "base_unit_of_measure", base)
        object.__setattr__(self, "sales_units_of_measure", MappingProxyType(units))

    @classmethod
    def with_units(
        cls,
        number: str,
        base_unit_of_measure: str,
        unit_price: Decimal,
        *,
        discount_group: str = "",
        blocked: bool = False,
        other_units: Iterable[tuple[str, Decimal]] = (),
    ) -> ItemPricingInfo:
        """Convenience constructor taking (unit code, quantity per unit) pairs."""
        return cls(
            number=number,
            base_unit_of_measure=base_unit_of_measure,
            unit_price=unit_price,
            discount_group=discount_group,
            blocked=blocked,
            sales_units_of_measure=dict(other_units),
        )


@dataclass(frozen=True, slots=True)
class QuoteLineRequest:
    """One requested quote line; blank unit of measure means the item's base unit.

    The quantity is not validated here so that a bad quantity becomes a named violation
    of the quote instead of an exception on the first bad line.
    """

    sku: str
    quantity: Decimal
    unit_of_measure: str = ""
    variant_code: str = ""
