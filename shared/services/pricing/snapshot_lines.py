"""Price list lines served from the snapshot blob's columns, built when a quote touches them.

Loading a million ``PriceListLine``s (Decimals, dates, enums) takes most of a minute and about
a gigabyte; a cold instance has neither. This index keeps the snapshot's rows as columns,
grouped by asset (item or item discount group), and builds an asset's lines the first time a
quote asks for it: the same conversion (``records.parse_line``) and the same per-asset
``PriceIndex`` as a book loaded from the tables, so quotes agree to the cent. Deltas since the
snapshot are held as lines by key and win over the snapshot's row with that key.

One difference from a full table load: the table load keeps one line per key across the whole
snapshot, this index one per key within an asset. Two snapshot rows with one key under
different assets only arise if a line moved while the publish was paging; the next delta of
that key replaces both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from shared.adapters.stores.price_data import GROUP_FIELDS
from shared.adapters.stores.price_snapshot import ColumnFrame, GroupDirectory
from shared.domain.pricing.index import Bucket, CustomerSources, PriceIndex
from shared.domain.pricing.models import AssetType, PriceListLine
from shared.services.pricing import records
from shared.services.pricing.grouped import GroupedRecords, GroupNumbers

_ASSET_TYPE: Final = 4  # the record's asset type and asset number fields (price_data)
_ASSET_NO: Final = GROUP_FIELDS["lines"]
_ITEM: Final = AssetType.ITEM.value
_GROUP: Final = AssetType.ITEM_DISCOUNT_GROUP.value
# Per-item indexes kept for quotes that come back to an item; about 2 KiB each.
CACHED_ITEMS = 20_000

_Asset = tuple[str, str]


class SnapshotLines:
    """The price lines of one snapshot plus the deltas since, read like a ``PriceIndex``."""

    def __init__(
        self,
        cached_items: int = CACHED_ITEMS,
        numbers: GroupNumbers | None = None,
        directory: GroupDirectory | None = None,
    ) -> None:
        # Grouped by asset number alone (through the blob's directory, or at load with item
        # numbers shared with the item book); the asset type is checked per row when an
        # asset's lines are built.
        self._snapshot = GroupedRecords(_ASSET_NO, numbers, directory)
        self._changed: dict[str, PriceListLine | None] = {}  # by key; None = deleted
        self._changed_by_asset: dict[_Asset, dict[str, PriceListLine]] = {}
        self._cache: dict[tuple[str, str], PriceIndex] = {}
        self._cached_items = cached_items

    # -- loading ---------------------------------------------------------------------

    def add(self, frame: ColumnFrame) -> None:
        self._snapshot.add(frame)

    def finish(self) -> None:
        self._snapshot.finish()

    @property
    def snapshot_rows(self) -> int:
        """Rows read from the snapshot (cheap; ``len`` builds every line)."""
        return len(self._snapshot)

    # -- deltas ----------------------------------------------------------------------

    def upsert(self, line: PriceListLine) -> None:
        self._forget(line.key)
        self._changed[line.key] = line
        asset = (line.asset_type.value, line.asset_no)
        self._changed_by_asset.setdefault(asset, {})[line.key] = line
        self._cache.clear()  # the line may have left another asset: start afresh

    def delete(self, key: str) -> bool:
        present = key in self
        self._forget(key)
        self._changed[key] = None
        self._cache.clear()
        return present

    def _forget(self, key: str) -> None:
        previous = self._changed.get(key)
        if previous is not None:
            asset = (previous.asset_type.value, previous.asset_no)
            lines = self._changed_by_asset.get(asset, {})
            lines.pop(key, None)
            if not lines:
                self._changed_by_asset.pop(asset, None)

    # -- reading ---------------------------------------------------------------------

    def candidate_buckets(
        self, item_no: str, item_discount_group: str, sources: CustomerSources
    ) -> list[Bucket]:
        """What ``PriceIndex.candidate_buckets`` answers, from this item's lines alone."""
        return self._index_for(item_no, item_discount_group).candidate_buckets(
            item_no, item_discount_group, sources
        )

    def _index_for(self, item_no: str, item_discount_group: str) -> PriceIndex:
        cache_key = (item_no, item_discount_group)
        index = self._cache.get(cache_key)
        if index is None:
            lines = self._lines_of((_ITEM, item_no))
            if item_discount_group:
                lines += self._lines_of((_GROUP, item_discount_group))
            index = PriceIndex(lines)
            if len(self._cache) >= self._cached_items:
                self._cache.pop(next(iter(self._cache)))  # the oldest
            self._cache[cache_key] = index
        return index

    def _lines_of(self, asset: _Asset) -> list[PriceListLine]:
        """The asset's lines: the snapshot's (a later row of a key wins), minus those a
        delta changed, plus the deltas now under this asset."""
        changed = self._changed
        kept: dict[str, PriceListLine] = {}
        asset_type, asset_no = asset
        for _, record in self._snapshot.rows(asset_no):
            if record[_ASSET_TYPE] != asset_type:
                continue
            line = records.parse_line(record, quiet=True)
            if line is not None and line.key not in changed:
                kept[line.key] = line
        kept.update(self._changed_by_asset.get(asset, {}))
        return list(kept.values())

    def get(self, key: str) -> PriceListLine | None:
        """The line with this key (a search of the snapshot when no delta names it)."""
        if key in self._changed:
            return self._changed[key]
        found = None
        for _, record in self._snapshot.rows_with_key(key):
            found = records.parse_line(record, quiet=True) or found
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[PriceListLine]:
        """Every line, asset by asset; builds them all (for audits, not for quotes)."""
        for asset_no in self._snapshot.groups():
            for asset_type in (_ITEM, _GROUP):
                yield from self._lines_of((asset_type, asset_no))
        for (_, asset_no), lines in list(self._changed_by_asset.items()):
            if asset_no not in self._snapshot:
                yield from lines.values()

    def __len__(self) -> int:
        """The number of lines; counts by building them all (see ``snapshot_rows``)."""
        return sum(1 for _ in self)
