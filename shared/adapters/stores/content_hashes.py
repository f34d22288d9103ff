"""What each channel has acknowledged: one row per (channel, SKU) with the content hash.

Rows are written only after the channel answered "applied" or "unchanged" for that exact
hash, and deleted only after it acknowledged a delete, so the table is the record of what the
storefront has. Comparing a product's new hash with this row is what skips unchanged products
and tells the nightly pass which channels must delete a SKU the ERP no longer has.

Keys: RowKey = SKU; PartitionKey = ``{channel}.{bucket}`` with 64 buckets from the SKU's
SHA-256. One partition per channel would cap a full sync at a single partition's write rate
(about 2,000 entities/s in Azure; Azurite slows down as one partition grows), while 64 keep
batches large enough for entity-group transactions. All buckets of a channel sort between
``"{channel}."`` and ``"{channel}/"``, so one range query lists a channel's catalog.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from shared.adapters.ports import TableStorage
from shared.adapters.tables import TableOperation, TransactionFailed

HASHES_TABLE = "ContentHashes"
BUCKETS = 64
# Above this many point reads in one run, reading the channel's whole catalog is cheaper.
FULL_LOAD_THRESHOLD = 20_000
_READ_CONCURRENCY = 16
_WRITE_CONCURRENCY = 8


def partition_of(channel: str, sku: str) -> str:
    """The partition of a (channel, SKU) row; channel names cannot contain '.'."""
    bucket = hashlib.sha256(sku.encode("utf-8")).digest()[0] % BUCKETS
    return f"{channel}.{bucket:02x}"


class ChannelHashes:
    """The acknowledged hashes of one channel, read lazily and cached for one run."""

    def __init__(
        self,
        tables: TableStorage,
        channel: str,
        *,
        full_load_threshold: int = FULL_LOAD_THRESHOLD,
    ) -> None:
        self._tables = tables
        self.channel = channel
        self._threshold = full_load_threshold
        self._known: dict[str, str | None] = {}
        self._loaded = False
        self._point_reads = 0
        self.table_reads = 0  # requests made, for run records

    @property
    def loaded(self) -> bool:
        return self._loaded

    async def load_all(self) -> None:
        """Read the channel's whole catalog once (a full pass needs every SKU anyway)."""
        if self._loaded:
            return
        known: dict[str, str | None] = {}
        # Raw bounds: partition keys of this table never contain characters that get escaped.
        rows = self._tables.query(
            HASHES_TABLE,
            "PartitionKey ge @low and PartitionKey lt @high",
            {"low": f"{self.channel}.", "high": f"{self.channel}/"},
            ["PartitionKey", "RowKey", "hash"],
        )
        async for row in rows:
            known[row.row_key] = str(row.entity.get("hash") or "") or None
        self.table_reads += 1 + len(known) // 1000
        self._known = known
        self._loaded = True

    async def hashes_for(self, skus: Sequence[str]) -> dict[str, str | None]:
        """The acknowledged hash of each SKU (None: the channel does not have it)."""
        missing = [sku for sku in dict.fromkeys(skus) if sku not in self._known]
        if missing and not self._loaded:
            if self._point_reads + len(missing) > self._threshold:
                await self.load_all()
            else:
                await self._read_points(missing)
        return {sku: self._known.get(sku) for sku in skus}

    def catalog(self) -> dict[str, str | None]:
        """Every SKU the channel has (only after ``load_all``)."""
        if not self._loaded:
            raise RuntimeError("catalog() needs load_all() first")
        return {sku: h for sku, h in self._known.items() if h is not None}

    async def _read_points(self, skus: list[str]) -> None:
        gate = asyncio.Semaphore(_READ_CONCURRENCY)

        async def read(sku: str) -> None:
            async with gate:
                row = await self._tables.get(HASHES_TABLE, partition_of(self.channel, sku), sku)
            stored = str(row.entity.get("hash") or "") if row is not None else ""
            self._known[sku] = stored or None

        await asyncio.gather(*(read(sku) for sku in skus))
        self._point_reads += len(skus)
        self.table_reads += len(skus)

    async def acknowledge(
        self, upserts: Iterable[tuple[str, str]], deletes: Iterable[str], run_id: str
    ) -> None:
        """Store what the channel acknowledged: new hashes, and SKUs it no longer has."""
        now = datetime.now(UTC)
        operations = [
            TableOperation(
                "upsert",
                {
                    "PartitionKey": partition_of(self.channel, sku),
                    "RowKey": sku,
                    "hash": content_hash,
                    "syncedAt": now,
                    "runId": run_id,
                },
            )
            for sku, content_hash in upserts
        ]
        gone = [sku for sku in deletes if self._known.get(sku) is not None or not self._loaded]
        if operations:
            await self._tables.transact(HASHES_TABLE, operations, concurrency=_WRITE_CONCURRENCY)
            for operation in operations:
                self._known[str(operation.entity["RowKey"])] = str(operation.entity["hash"])
        if gone:
            await self._delete(gone)

    async def _delete(self, skus: list[str]) -> None:
        operations = [
            TableOperation(
                "delete", {"PartitionKey": partition_of(self.channel, sku), "RowKey": sku}
            )
            for sku in skus
        ]
        try:
            await self._tables.transact(HASHES_TABLE, operations, concurrency=_WRITE_CONCURRENCY)
        except TransactionFailed:
            # A row already gone (a repeated delete after a crash) fails its whole chunk;
            # single deletes treat a missing row as done.
            for sku in skus:
                await self._tables.delete(HASHES_TABLE, partition_of(self.channel, sku), sku)
        for sku in skus:
            self._known[sku] = None
