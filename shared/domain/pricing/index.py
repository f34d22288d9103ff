"""In-memory index of price list lines, built so a quote line touches only a handful.

Lines are grouped by (asset type, asset number, source type, source number). A quote
line for item X and customer C can only be priced by the buckets of X and of X's item
discount group crossed with C's possible sources (all customers, C itself, C's price
group, C's active campaigns), so each quote line costs a few dictionary look-ups plus a
scan of a few lines, independent of catalog size.

Buckets are tuples sorted by minimum quantity (compact, and the scan stops at the first
quantity break above the ordered quantity). Updates replace a whole bucket tuple with one
dictionary assignment, so a reader running in another thread sees either the old or the
new bucket, never a half-edited one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import Protocol, TypeVar

from .models import AssetType, CampaignPolicy, CustomerPricingContext, PriceListLine, SourceType

Bucket = tuple[PriceListLine, ...]
_BucketKey = tuple[str, str, str, str]
_AssetKey = tuple[str, str]

# Short plain-string codes for the keys: cheaper to hash than enum members.
_ASSET_CODES: dict[AssetType, str] = {AssetType.ITEM: "I", AssetType.ITEM_DISCOUNT_GROUP: "G"}
_SOURCE_CODES: dict[SourceType, str] = {
    SourceType.ALL_CUSTOMERS: "A",
    SourceType.CUSTOMER: "C",
    SourceType.CUSTOMER_PRICE_GROUP: "P",
    SourceType.CAMPAIGN: "M",
}
_CAMPAIGN_CODE = _SOURCE_CODES[SourceType.CAMPAIGN]
_ITEM_CODE = _ASSET_CODES[AssetType.ITEM]
_GROUP_CODE = _ASSET_CODES[AssetType.ITEM_DISCOUNT_GROUP]
_by_minimum_quantity = attrgetter("minimum_quantity")
_K = TypeVar("_K")


def _bucket_key(line: PriceListLine) -> _BucketKey:
    return (
        _ASSET_CODES[line.asset_type],
        line.asset_no,
        _SOURCE_CODES[line.source_type],
        line.source_no,
    )


def _sorted_bucket(lines: Iterable[PriceListLine]) -> Bucket:
    return tuple(sorted(lines, key=_by_minimum_quantity))


class CustomerSources:
    """A customer's possible (source code, source number) pairs, computed once per quote."""

    __slots__ = ("open_campaigns", "pairs")

    def __init__(self, customer: CustomerPricingContext, campaign_policy: CampaignPolicy) -> None:
        pairs: list[tuple[str, str]] = [("A", ""), ("C", customer.customer_no)]
        if customer.price_group:
            pairs.append(("P", customer.price_group))
        self.open_campaigns = campaign_policy is CampaignPolicy.OPEN_TO_ALL
        if not self.open_campaigns:
            # Sorted so the scan order (and so nothing observable) depends on set order.
            pairs.extend((_CAMPAIGN_CODE, c) for c in sorted(customer.active_campaigns) if c)
        self.pairs: tuple[tuple[str, str], ...] = tuple(pairs)


class PriceLines(Protocol):
    """What quoting and audits read from price list lines: a `PriceIndex`, or an index that
    builds lines on demand (the price book's snapshot lines)."""

    def candidate_buckets(
        self, item_no: str, item_discount_group: str, sources: CustomerSources
    ) -> list[Bucket]: ...

    def get(self, key: str) -> PriceListLine | None: ...

    def __len__(self) -> int: ...

    def __contains__(self, key: object) -> bool: ...

    def __iter__(self) -> Iterator[PriceListLine]: ...


class PriceIndex:
    """Price list lines by key, and grouped for quoting; supports bulk load and deltas."""

    __slots__ = ("_buckets", "_by_key", "_campaigns_by_asset")

    def __init__(self, lines: Iterable[PriceListLine] = ()) -> None:
        self._by_key: dict[str, PriceListLine] = {}
        self._buckets: dict[_BucketKey, Bucket] = {}
        # Campaign lines again per asset, for CampaignPolicy.OPEN_TO_ALL.
        self._campaigns_by_asset: dict[_AssetKey, Bucket] = {}
        self.load(lines)

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def get(self, key: str) -> PriceListLine | None:
        """The stored line with this key, if any."""
        return self._by_key.get(key)

    def __iter__(self) -> Iterator[PriceListLine]:
        return iter(self._by_key.values())

    @property
    def bucket_count(self) -> int:
        """Number of (asset, source) groups; a figure for benchmarks and diagnostics."""
        return len(self._buckets)

    def candidate_buckets(
        self, item_no: str, item_discount_group: str, sources: CustomerSources
    ) -> list[Bucket]:
        """The few buckets that may hold lines applying to this item for this customer."""
        buckets = self._buckets
        found: list[Bucket] = []
        assets = [(_ITEM_CODE, item_no)]
        if item_discount_group:
            assets.append((_GROUP_CODE, item_discount_group))
        for asset_code, asset_no in assets:
            for source_code, source_no in sources.pairs:
                bucket = buckets.get((asset_code, asset_no, source_code, source_no))
                if bucket is not None:
                    found.append(bucket)
            if sources.open_campaigns:
                campaign_bucket = self._campaigns_by_asset.get((asset_code, asset_no))
                if campaign_bucket is not None:
                    found.append(campaign_bucket)
        return found

    # -- writing -----------------------------------------------------------------------

    def load(self, lines: Iterable[PriceListLine]) -> None:
        """Add or replace many lines at once (a full publish); later duplicates win.

        Groups with lists first and freezes each bucket once, instead of rebuilding a
        tuple per line as repeated upserts would. To replace the whole set (a full
        reconciliation that also drops vanished lines), build a new `PriceIndex` and swap
        the reference, so readers never see a half-loaded index.
        """
        incoming: dict[str, PriceListLine] = {}
        for line in lines:
            incoming[line.key] = line
        if not incoming:
            return
        if self._by_key:
            # Merging into a populated index: take the simple, per-line path.
            self.upsert_many(incoming.values())
            return
        grouped: dict[_BucketKey, list[PriceListLine]] = {}
        campaigns: dict[_AssetKey, list[PriceListLine]] = {}
        for line in incoming.values():
            key = _bucket_key(line)
            grouped.setdefault(key, []).append(line)
            if key[2] == _CAMPAIGN_CODE:
                campaigns.setdefault((key[0], key[1]), []).append(line)
        self._by_key = incoming
        self._buckets = {key: _sorted_bucket(group) for key, group in grouped.items()}
        self._campaigns_by_asset = {key: _sorted_bucket(g) for key, g in campaigns.items()}

    def upsert(self, line: PriceListLine) -> None:
        """Insert a line or replace the line with the same key (a delta from the ERP).

        The new line is placed before the old one is removed, so a concurrent reader
        never sees a moment with neither.
        """
        previous = self._by_key.get(line.key)
        key = _bucket_key(line)
        _replace_line(self._buckets, key, previous, line)
        if key[2] == _CAMPAIGN_CODE:
            _replace_line(self._campaigns_by_asset, (key[0], key[1]), previous, line)
        self._by_key[line.key] = line
        if previous is not None and _bucket_key(previous) != key:
            self._remove_from_buckets(previous)

    def upsert_many(self, lines: Iterable[PriceListLine]) -> None:
        """Upsert each line in order."""
        for line in lines:
            self.upsert(line)

    def delete(self, key: str) -> bool:
        """Remove the line with this key; False when it was not there (deletes repeat)."""
        previous = self._by_key.pop(key, None)
        if previous is None:
            return False
        self._remove_from_buckets(previous)
        return True

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove lines by key; returns how many were present."""
        return sum(1 for key in keys if self.delete(key))

    def clear(self) -> None:
        """Drop every line."""
        self._by_key = {}
        self._buckets = {}
        self._campaigns_by_asset = {}

    def _remove_from_buckets(self, line: PriceListLine) -> None:
        key = _bucket_key(line)
        _remove_line(self._buckets, key, line)
        if key[2] == _CAMPAIGN_CODE:
            _remove_line(self._campaigns_by_asset, (key[0], key[1]), line)


def _replace_line(
    buckets: dict[_K, Bucket], key: _K, previous: PriceListLine | None, line: PriceListLine
) -> None:
    kept = (other for other in buckets.get(key, ()) if other is not previous)
    buckets[key] = _sorted_bucket((*kept, line))


def _remove_line(buckets: dict[_K, Bucket], key: _K, line: PriceListLine) -> None:
    remaining = tuple(other for other in buckets.get(key, ()) if other is not line)
    if remaining:
        buckets[key] = remaining
    else:
        # Empty buckets would accumulate over months of deltas.
        buckets.pop(key, None)
