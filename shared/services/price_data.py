"""How published price data is laid out in Table storage, and mapped to and from it.

One partition per priced asset (``Item:<number>`` or ``Group:<code>``) holds the item's own
pricing row (RowKey ``~item``) and its extra sales units (``~unit:<code>``) next to its price
list lines (RowKey = the line's id), so a refresh of one item is one partition query. One
partition per customer holds its ``customer`` and ``profile`` rows. Every ERP row maps to
exactly one table row, so a delta publish never reads before it writes. Decimals are stored
as strings: Table storage has no decimal type and a double would lose cents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from shared.adapters.erp import models as erp
from shared.domain.pricing.models import (
    CustomerPricingContext,
    ItemPricingInfo,
    PriceListLine,
)

PRICE_TABLE = "PriceData"
CUSTOMER_TABLE = "PricingCustomers"
ITEM_ROW = "~item"
UNIT_ROW_PREFIX = "~unit:"
CURRENCY_PARTITION_PREFIX = "Currency:"
CUSTOMER_ROW = "customer"
PROFILE_ROW = "profile"


def asset_partition(asset_type: str, asset_no: str) -> str:
    """The partition of an asset: items and item discount groups never share one."""
    prefix = "Group" if asset_type == "Item Discount Group" else "Item"
    return f"{prefix}:{asset_no}"


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _parse_day(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def line_entity(line: erp.PriceListLine, run_id: str) -> dict[str, Any]:
    """The stored form of an ERP price list line (``runId`` marks the publish that wrote it)."""
    return {
        "PartitionKey": asset_partition(line.asset_type, line.asset_no),
        "RowKey": str(line.id),
        "kind": "line",
        "priceListCode": line.price_list_code,
        "sourceType": line.source_type,
        "sourceNo": line.source_no,
        "assetType": line.asset_type,
        "assetNo": line.asset_no,
        "variantCode": line.variant_code,
        "unitOfMeasureCode": line.unit_of_measure_code,
        "minimumQuantity": str(line.minimum_quantity),
        "amountType": line.amount_type,
        "unitPrice": str(line.unit_price),
        "lineDiscountPercent": str(line.line_discount_percent),
        "allowLineDisc": line.allow_line_disc,
        "startingDate": _day(line.starting_date),
        "endingDate": _day(line.ending_date),
        "currencyCode": line.currency_code,
        "erpModifiedAt": line.last_modified_date_time,
        "runId": run_id,
    }


def line_from_entity(entity: Mapping[str, Any]) -> PriceListLine:
    """The domain line from its stored form (raises the domain's error if it is invalid)."""
    return PriceListLine(
        key=str(entity["RowKey"]),
        price_list_code=entity["priceListCode"],
        source_type=entity["sourceType"],
        source_no=entity["sourceNo"],
        asset_type=entity["assetType"],
        asset_no=entity["assetNo"],
        variant_code=entity["variantCode"],
        unit_of_measure_code=entity["unitOfMeasureCode"],
        minimum_quantity=Decimal(entity["minimumQuantity"]),
        amount_type=entity["amountType"],
        unit_price=Decimal(entity["unitPrice"]),
        line_discount_percent=Decimal(entity["lineDiscountPercent"]),
        allow_line_disc=bool(entity["allowLineDisc"]),
        starting_date=_parse_day(entity["startingDate"]),
        ending_date=_parse_day(entity["endingDate"]),
        currency_code=entity["currencyCode"],
    )


def item_entity(item: erp.Item, run_id: str) -> dict[str, Any]:
    """The stored pricing facts of an item: list price, base unit, blocked."""
    return {
        "PartitionKey": asset_partition("Item", item.number),
        "RowKey": ITEM_ROW,
        "kind": "item",
        "number": item.number,
        "displayName": item.display_name,
        "baseUnitOfMeasure": item.base_unit_of_measure_code,
        "unitPrice": str(item.unit_price),
        "blocked": item.blocked,
        "erpModifiedAt": item.last_modified_date_time,
        "runId": run_id,
    }


def unit_entity(unit: erp.ItemUnitOfMeasure, run_id: str) -> dict[str, Any]:
    """A further unit an item is sold in, in the item's partition beside the item row."""
    return {
        "PartitionKey": asset_partition("Item", unit.item_number),
        "RowKey": f"{UNIT_ROW_PREFIX}{unit.code}",
        "kind": "unit",
        "code": unit.code,
        "qtyPerUnitOfMeasure": str(unit.qty_per_unit_of_measure),
        "erpModifiedAt": unit.last_modified_date_time,
        "runId": run_id,
    }


def item_from_rows(item: Mapping[str, Any], units: Sequence[Mapping[str, Any]]) -> ItemPricingInfo:
    """The domain item from its row and its unit rows."""
    return ItemPricingInfo(
        number=item["number"],
        base_unit_of_measure=item["baseUnitOfMeasure"],
        unit_price=Decimal(item["unitPrice"]),
        blocked=bool(item["blocked"]),
        sales_units_of_measure={u["code"]: Decimal(u["qtyPerUnitOfMeasure"]) for u in units},
    )


def rate_entity(rate: erp.CurrencyExchangeRate, run_id: str) -> dict[str, Any]:
    """An exchange rate against the local currency (rates between two foreign ones are skipped)."""
    if rate.relational_currency_code:
        raise ValueError(f"{rate.currency_code}: rate relative to {rate.relational_currency_code}")
    return {
        "PartitionKey": f"{CURRENCY_PARTITION_PREFIX}{rate.currency_code}",
        "RowKey": rate.starting_date.isoformat(),
        "kind": "rate",
        "currencyCode": rate.currency_code,
        "startingDate": rate.starting_date.isoformat(),
        # Local currency per one unit of the foreign currency.
        "lcyPerUnit": str(rate.relational_exchange_rate_amount / rate.exchange_rate_amount),
        "erpModifiedAt": rate.last_modified_date_time,
        "runId": run_id,
    }


def customer_entity(customer: erp.Customer, run_id: str) -> dict[str, Any]:
    """A customer's own facts (currency, blocked) from the standard ``customers`` entity."""
    return {
        "PartitionKey": customer.number,
        "RowKey": CUSTOMER_ROW,
        "kind": "customer",
        "number": customer.number,
        "displayName": customer.display_name,
        "blocked": customer.blocked.strip(),
        "currencyCode": customer.currency_code,
        "erpModifiedAt": customer.last_modified_date_time,
        "runId": run_id,
    }


def profile_entity(profile: erp.CustomerPricingProfile, run_id: str) -> dict[str, Any]:
    """The pricing profile (price group, line discount rule) that BC v2.0 customers lack."""
    return {
        "PartitionKey": profile.customer_number,
        "RowKey": PROFILE_ROW,
        "kind": "profile",
        "priceGroup": profile.customer_price_group,
        "discountGroup": profile.customer_discount_group,
        "currencyCode": profile.currency_code,
        "allowLineDisc": profile.allow_line_disc,
        "runId": run_id,
    }


def customer_from_rows(
    customer: Mapping[str, Any], profile: Mapping[str, Any] | None
) -> CustomerPricingContext:
    """The domain customer; without a profile: no price group, line discounts allowed."""
    profile = profile or {}
    return CustomerPricingContext(
        customer_no=customer["number"],
        price_group=profile.get("priceGroup", ""),
        discount_group=profile.get("discountGroup", ""),
        currency_code=profile.get("currencyCode") or customer["currencyCode"],
        allow_line_disc=bool(profile.get("allowLineDisc", True)),
    )
