"""The items a book prices, each built from its records when first asked for.

An item's pricing facts come from two datasets: its own record and one record per unit of
measure. Building a quarter of a million ``ItemPricingInfo``s at load time (and, applied in
publish order, once more per unit) costs seconds a cold instance does not have; here the
records stay as the snapshot's columns (or, for changes and a load from the tables, as
records by key) and an item is built from them, once, when a quote looks it up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Final

from shared.adapters.stores.price_data import GROUP_FIELDS, Record
from shared.adapters.stores.price_snapshot import ColumnFrame, GroupDirectory
from shared.domain.pricing.models import ItemPricingInfo
from shared.services.pricing import records
from shared.services.pricing.grouped import GroupedRecords, GroupNumbers

_ITEM_NUMBER: Final = GROUP_FIELDS["items"]  # the first field of item and unit records
CACHED_ITEMS = 50_000
_log = logging.getLogger(__name__)


class ItemBook(Mapping[str, ItemPricingInfo]):
    """Item number -> ``ItemPricingInfo``, over snapshot columns and changes by key.

    Iterating (or ``len``) builds every item: meant for audits and benchmarks, not quotes.
    """

    def __init__(
        self,
        cached_items: int = CACHED_ITEMS,
        numbers: GroupNumbers | None = None,
        directory: dict[str, GroupDirectory] | None = None,
    ) -> None:
        numbers = numbers or GroupNumbers()
        directory = directory or {}
        self._items = GroupedRecords(_ITEM_NUMBER, numbers, directory.get("items"))
        self._units = GroupedRecords(GROUP_FIELDS["units"], numbers, directory.get("units"))
        self._changed_items: dict[str, Record | None] = {}  # None = removed
        self._changed_units: dict[str, dict[str, str | None]] = {}  # number -> code -> qty
        self._cache: dict[str, ItemPricingInfo | None] = {}
        self._cached_items = cached_items

    # -- loading ---------------------------------------------------------------------

    def add_items(self, frame: ColumnFrame) -> None:
        self._items.add(frame)

    def add_units(self, frame: ColumnFrame) -> None:
        self._units.add(frame)

    def finish(self) -> None:
        self._items.finish()
        self._units.finish()

    @property
    def snapshot_rows(self) -> int:
        return len(self._items)

    # -- changes ---------------------------------------------------------------------

    def set_item(self, number: str, record: Record | None) -> None:
        self._changed_items[number] = record
        self._cache.pop(number, None)

    def set_unit(self, number: str, code: str, quantity: str | None) -> None:
        self._changed_units.setdefault(number, {})[code] = quantity
        self._cache.pop(number, None)

    # -- reading ---------------------------------------------------------------------

    def __getitem__(self, number: str) -> ItemPricingInfo:
        item = self.get(number)
        if item is None:
            raise KeyError(number)
        return item

    def get(self, number: str, default: object = None) -> ItemPricingInfo | None:  # type: ignore[override]
        if number in self._cache:
            item = self._cache[number]
        else:
            item = self._build(number)
            if len(self._cache) >= self._cached_items:
                self._cache.pop(next(iter(self._cache)))  # the oldest
            self._cache[number] = item
        return item if item is not None else default  # type: ignore[return-value]

    def __contains__(self, number: object) -> bool:
        return isinstance(number, str) and self.get(number) is not None

    def __iter__(self) -> Iterator[str]:
        numbers = dict.fromkeys(self._items.groups())
        numbers.update(dict.fromkeys(self._changed_items))
        return (number for number in numbers if self.get(number) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _build(self, number: str) -> ItemPricingInfo | None:
        if number in self._changed_items:
            record = self._changed_items[number]
        else:
            rows = self._items.rows(number)
            record = rows[-1][1] if rows else None  # a later row of a key wins
        if record is None:
            return None
        quantities: dict[str, str | None] = {}
        for key, unit in self._units.rows(number):
            # The code comes from the key, "<item>|<code>", as a delta names it.
            prefix, code = key.split("|", 1)
            if prefix == number:
                quantities[code] = unit[2]
        quantities.update(self._changed_units.get(number, {}))
        try:
            units = {code: Decimal(q) for code, q in quantities.items() if q is not None}
        except InvalidOperation:
            _log.warning("ignored item %s: a unit's quantity is not a number", number)
            return None
        return records.item(number, record, units)
