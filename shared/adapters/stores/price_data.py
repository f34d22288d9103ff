"""How published price data is laid out in Table storage: snapshots plus deltas.

A full publish writes a *snapshot*: every row of every dataset as compact JSON records packed
into a few hundred large entities (PartitionKey ``<runId>|<dataset>``), so an instance loads a
million price list lines with a few hundred reads instead of a million, and the publisher
writes them in a few dozen transactions. A delta publish writes one *delta row* per changed
ERP row (PartitionKey = dataset, RowKey = the row's key) that overrides the snapshot's record
with the same key. A pointer row says which snapshot is current.

Records are JSON arrays in a fixed field order (see ``DATASETS``); decimals are strings,
because Table storage has no decimal type and a double would lose cents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.adapters.erp import models as erp

SNAPSHOT_TABLE = "PriceSnapshots"
DELTA_TABLE = "PriceDeltas"
# Characters per string property (64 KiB holds 32K UTF-16 characters) and properties per
# snapshot entity (an entity holds 1 MiB).
CHUNK_CHARS = 30_000
CHUNKS_PER_ENTITY = 12

Record = list[Any]


def _day(value: Any) -> str:
    return value.isoformat() if value else ""


def line_record(line: erp.PriceListLine) -> tuple[str, Record]:
    return str(line.id), [
        str(line.id),
        line.price_list_code,
        line.source_type,
        line.source_no,
        line.asset_type,
        line.asset_no,
        line.variant_code,
        line.unit_of_measure_code,
        str(line.minimum_quantity),
        line.amount_type,
        str(line.unit_price),
        str(line.line_discount_percent),
        line.allow_line_disc,
        _day(line.starting_date),
        _day(line.ending_date),
        line.currency_code,
    ]


def item_record(item: erp.Item) -> tuple[str, Record]:
    return item.number, [
        item.number,
        item.base_unit_of_measure_code,
        str(item.unit_price),
        item.blocked,
        item.item_category_code,
    ]


def unit_record(unit: erp.ItemUnitOfMeasure) -> tuple[str, Record]:
    return f"{unit.item_number}|{unit.code}", [
        unit.item_number,
        unit.code,
        str(unit.qty_per_unit_of_measure),
    ]


def rate_record(rate: erp.CurrencyExchangeRate) -> tuple[str, Record]:
    """Local currency per one unit of a foreign currency, from a starting date."""
    if rate.relational_currency_code:
        raise ValueError(f"{rate.currency_code}: rate relative to {rate.relational_currency_code}")
    lcy_per_unit = rate.relational_exchange_rate_amount / rate.exchange_rate_amount
    return f"{rate.currency_code}|{rate.starting_date.isoformat()}", [
        rate.currency_code,
        rate.starting_date.isoformat(),
        str(lcy_per_unit),
    ]


LOCAL_CURRENCY_KEY = "~LCY"  # a table key cannot be blank; the local currency's row


def rounding_record(rounding: erp.CurrencyRounding) -> tuple[str, Record]:
    """A currency's rounding precisions (blank code: the local currency)."""
    code = rounding.currency_code.strip().upper()
    return code or LOCAL_CURRENCY_KEY, [
        code,
        str(rounding.unit_amount_rounding_precision),
        str(rounding.amount_rounding_precision),
    ]


def customer_record(customer: erp.Customer) -> tuple[str, Record]:
    return customer.number, [customer.number, customer.currency_code, customer.blocked.strip()]


def profile_record(profile: erp.CustomerPricingProfile) -> tuple[str, Record]:
    return profile.customer_number, [
        profile.customer_number,
        profile.customer_price_group,
        profile.customer_discount_group,
        profile.currency_code,
        profile.allow_line_disc,
        profile.campaigns,
    ]


@dataclass(frozen=True)
class Dataset:
    """One ERP entity set copied by the publisher, and how one of its rows is recorded."""

    name: str
    entity_set: str
    model: type[BaseModel]
    custom_api: bool
    record: Callable[[Any], tuple[str, Record]]


DATASETS: tuple[Dataset, ...] = (
    Dataset("items", "items", erp.Item, False, item_record),
    Dataset("units", "itemUnitsOfMeasure", erp.ItemUnitOfMeasure, True, unit_record),
    Dataset("lines", "priceListLines", erp.PriceListLine, True, line_record),
    Dataset("rates", "currencyExchangeRates", erp.CurrencyExchangeRate, False, rate_record),
    Dataset("roundings", "currencyRoundings", erp.CurrencyRounding, True, rounding_record),
    Dataset("customers", "customers", erp.Customer, False, customer_record),
    Dataset(
        "profiles", "customerPricingProfiles", erp.CustomerPricingProfile, True, profile_record
    ),
)
DATASET_NAMES = tuple(d.name for d in DATASETS)
# The field a quote finds a dataset's records by (the item number; a line's asset number): the
# snapshot blob's directory lists each dataset's rows by this field's value.
GROUP_FIELDS: dict[str, int] = {"items": 0, "units": 0, "lines": 5}


def snapshot_partition(run_id: str, dataset: str) -> str:
    return f"{run_id}|{dataset}"
