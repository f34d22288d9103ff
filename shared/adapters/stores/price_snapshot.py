"""The price snapshot as one blob per full publish, laid out for a fast cold start.

The table snapshot (``price_data``) stays the source of truth; this blob holds the same records
so a new instance reads one blob instead of hundreds of table pages. Layout: the publisher
stages one block per ERP page, each block one *frame*: its length and record count (4 bytes
each, big-endian), then the page's records column by column, zlib compressed
(``snapshot_frames``: interned strings, string columns as arrays of indexes into them). Since
format 3 a last block holds the *directory* (``snapshot_directory``): the item-keyed datasets'
rows listed by item, so a cold instance finds an item's rows without grouping them first.
The commit makes the blob visible at once, with its manifest as metadata: format, run id,
frame (data frames, the directory not counted) and record counts, and the SHA-256 of the
content.

A reader checks all of it (``SnapshotRejected`` names what failed): a blob from another run
(stale), a count or checksum that does not match (torn or altered), or a frame that does not
parse is never served; the caller then loads from the tables as before. A reader that knows
only formats 1 and 2 rejects a format-3 blob by its manifest and loads from the tables.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.adapters.blobs import BlobStore
from shared.adapters.stores.price_data import GROUP_FIELDS, Record
from shared.adapters.stores.snapshot_directory import (
    DirectoryBuilder,
    GroupDirectory,
    decode_directory,
)
from shared.adapters.stores.snapshot_frames import (
    ColumnFrame,
    SnapshotRejected,
    decode_columns,
    decode_frame,
    encode_frame,
)

__all__ = [
    "CONTAINER",
    "ColumnFrame",
    "GroupDirectory",
    "SnapshotBlobs",
    "SnapshotContent",
    "SnapshotRejected",
    "SnapshotWriter",
    "decode_columns",
    "decode_frame",
    "encode_frame",
    "read_snapshot",
]

CONTAINER = "price-snapshots"
FORMAT = "3"  # "1" and "2" (no directory): the frames of earlier releases, still read
# Each frame: its compressed length and its record count, big-endian, then the frame.
_HEADER = struct.Struct(">II")
_log = logging.getLogger(__name__)


def blob_name(prefix: str, run_id: str) -> str:
    return f"{prefix.lower()}snapshot-{run_id}.bin"


@dataclass(frozen=True)
class SnapshotBlobs:
    """Where the snapshot blobs live: the container and this environment's name prefix."""

    store: BlobStore
    prefix: str = ""

    def name(self, run_id: str) -> str:
        return blob_name(self.prefix, run_id)


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: Literal["1", "2", "3"]
    runid: str
    frames: int
    records: int
    sha256: str


@dataclass
class SnapshotWriter:
    """Stages a publish's pages as blocks; ``commit`` makes the blob visible with its manifest.

    A failure to write disables the writer (logged): the table snapshot is the source of
    truth, and an instance without a blob loads from the tables.
    """

    blobs: SnapshotBlobs
    run_id: str
    _blocks: list[str] = field(default_factory=list)
    _directory: DirectoryBuilder = field(default_factory=DirectoryBuilder)
    _digest: Any = field(default_factory=hashlib.sha256)
    _records: int = 0
    _failed: bool = False

    @property
    def name(self) -> str:
        return self.blobs.name(self.run_id)

    async def add(self, dataset: str, records: Sequence[tuple[str, Record]]) -> None:
        if self._failed or not records:
            return
        if await self._stage(encode_frame(dataset, records)):
            self._directory.add(dataset, records)
            self._records += len(records)

    async def _stage(self, frame: bytes) -> bool:
        block_id = base64.b64encode(f"{len(self._blocks):08d}".encode()).decode()
        try:
            await self.blobs.store.stage_block(self.name, block_id, frame)
        except Exception:
            _log.warning("price snapshot blob %s: staging failed; none this run", self.name)
            self._failed = True
            return False
        self._blocks.append(block_id)
        self._digest.update(frame)
        return True

    async def commit(self) -> bool:
        frames = len(self._blocks)
        if self._failed or not await self._stage(self._directory.encode()):
            return False
        manifest = {
            "format": FORMAT,
            "runid": self.run_id,
            "frames": str(frames),
            "records": str(self._records),
            "sha256": self._digest.hexdigest(),
        }
        try:
            await self.blobs.store.commit(self.name, self._blocks, manifest)
        except Exception:
            _log.warning("price snapshot blob %s: commit failed; none this run", self.name)
            return False
        return True


Frame = tuple[str, list[tuple[str, Record]]]


@dataclass(frozen=True)
class SnapshotContent:
    """A blob whose manifest, checksum and frame layout passed; frames decode one at a time."""

    content: bytes
    spans: list[tuple[int, int, int]]  # (offset, length, records) per frame
    format: str = FORMAT
    # Dataset -> its rows by item (format 3); empty for an older blob, grouped at load.
    directory: dict[str, GroupDirectory] = field(default_factory=dict)

    def frames(self) -> Iterator[Frame]:
        """Decoded frames in publish order; ``SnapshotRejected`` if one does not parse."""
        for frame in self.column_frames():
            yield frame.dataset, list(frame.rows())

    def column_frames(self) -> Iterator[ColumnFrame]:
        """The frames in publish order, as columns; ``SnapshotRejected`` if one does not
        parse or holds another record count than its header says."""
        for offset, length, records in self.spans:
            frame = decode_columns(self.content[offset : offset + length], self.format)
            if len(frame) != records:
                raise SnapshotRejected("a frame holds another record count than its header")
            yield frame


async def read_snapshot(blobs: SnapshotBlobs, run_id: str) -> SnapshotContent:
    """Run ``run_id``'s blob, checked against its manifest (run, checksum, frames, records).

    Every check that needs no decoding is done here, and the directory (format 3) is decoded,
    before anything is built from it; a frame that does not decode is found while iterating
    (the caller then discards what it built and loads from the tables).
    """
    stored = await blobs.store.read(blobs.name(run_id))
    if stored is None:
        raise SnapshotRejected(f"no snapshot blob for run {run_id}")
    # The checksum and the directory take a fraction of a second of CPU: off the event loop.
    return await asyncio.to_thread(_checked, stored.content, stored.metadata, run_id)


def _checked(content: bytes, metadata: dict[str, str], run_id: str) -> SnapshotContent:
    try:
        manifest = _Manifest.model_validate(metadata)
    except ValidationError as error:
        raise SnapshotRejected(f"manifest unreadable: {error}") from error
    if manifest.runid != run_id:
        raise SnapshotRejected(f"stale: blob of run {manifest.runid}, current is {run_id}")
    if hashlib.sha256(content).hexdigest() != manifest.sha256:
        raise SnapshotRejected("checksum mismatch: the blob is torn or altered")
    spans: list[tuple[int, int, int]] = []
    offset, records = 0, 0
    while offset < len(content):
        if offset + _HEADER.size > len(content):
            raise SnapshotRejected("truncated frame header")
        length, count = _HEADER.unpack_from(content, offset)
        offset += _HEADER.size
        if offset + length > len(content):
            raise SnapshotRejected("truncated frame")
        spans.append((offset, length, count))
        offset += length
        records += count
    directory_span = spans.pop() if manifest.format == "3" and spans else None
    if directory_span is not None:
        records -= directory_span[2]  # a directory holds no records: 0 unless torn
    if (
        len(spans) != manifest.frames
        or records != manifest.records
        or (manifest.format == "3" and (directory_span is None or directory_span[2] != 0))
    ):
        raise SnapshotRejected(
            f"counts differ from the manifest: {len(spans)} frames / {records} records, "
            f"expected {manifest.frames} / {manifest.records}"
        )
    directory: dict[str, GroupDirectory] = {}
    if directory_span is not None:
        offset, length, _ = directory_span
        directory = decode_directory(content[offset : offset + length])
        if set(directory) != set(GROUP_FIELDS):
            raise SnapshotRejected(f"the directory lists {sorted(directory)} only")
    return SnapshotContent(content, spans, manifest.format, directory)


async def drop_other_runs(blobs: SnapshotBlobs, keep: set[str]) -> None:
    """Delete this prefix's snapshot blobs of runs not in ``keep``."""
    wanted = {blobs.name(run_id) for run_id in keep if run_id}
    start = f"{blobs.prefix.lower()}snapshot-"
    for name in await blobs.store.names():
        if name.startswith(start) and name not in wanted:
            await blobs.store.delete(name)
