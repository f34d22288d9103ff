"""The price snapshot as one blob per full publish, laid out for a fast cold start.

The table snapshot (``price_data``) stays the source of truth; this blob holds the same records
so a new instance reads one blob instead of hundreds of table pages. Layout: the publisher
stages one block per ERP page, each block one *frame*: its length and record count (4 bytes
each, big-endian), then zlib compressed JSON ``{"d": dataset, "k": keys, "s": strings,
"c": columns}``: the page's records column by column, every string column as indexes into
the frame's interned ``strings`` (SKUs, units, codes and decimals repeat a lot).
The commit makes the blob visible at once, with its manifest as metadata: format, run id,
frame and record counts, and the SHA-256 of the content.

A reader checks all of it (``SnapshotRejected`` names what failed): a blob from another run
(stale), a count or checksum that does not match (torn or altered), or a frame that does not
parse is never served; the caller then loads from the tables as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import struct
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.adapters.blobs import BlobStore
from shared.adapters.stores.price_data import DATASET_NAMES, Record

CONTAINER = "price-snapshots"
FORMAT = "1"
# Each frame: its compressed length and its record count, big-endian, then the frame.
_HEADER = struct.Struct(">II")
_log = logging.getLogger(__name__)


class SnapshotRejected(ValueError):
    """The blob cannot be served: missing, stale, torn or malformed (the reason says which)."""


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

    format: Literal["1"]
    runid: str
    frames: int
    records: int
    sha256: str


class _Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    t: Literal["s", "j"]
    v: list[Any]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")

    d: str
    k: list[int]
    s: list[str]
    c: list[_Column]


def encode_frame(dataset: str, records: Sequence[tuple[str, Record]]) -> bytes:
    """One page of records as a frame (length prefix included)."""
    strings: dict[str, int] = {}

    def intern(value: str) -> int:
        found = strings.get(value)
        if found is None:
            found = strings[value] = len(strings)
        return found

    keys = [intern(key) for key, _ in records]
    width = max((len(record) for _, record in records), default=0)
    columns: list[dict[str, Any]] = []
    for position in range(width):
        values = [record[position] if position < len(record) else None for _, record in records]
        if all(type(value) is str for value in values):
            columns.append({"t": "s", "v": [intern(str(value)) for value in values]})
        else:
            columns.append({"t": "j", "v": values})
    body = {"d": dataset, "k": keys, "s": list(strings), "c": columns}
    packed = zlib.compress(json.dumps(body, separators=(",", ":")).encode("utf-8"), 1)
    return _HEADER.pack(len(packed), len(records)) + packed


@dataclass(frozen=True, slots=True)
class ColumnFrame:
    """One decoded frame kept in its compact columnar form.

    A cold instance holds a million price lines: as Python lists and strings they take about
    a gigabyte, as the frame's columns a few dozen megabytes. So the frame's distinct strings
    stay one text with their offsets, each string column an array of indexes into them, and a
    record is rebuilt (``record``) only for the rows a caller asks for.
    """

    dataset: str
    text: str  # the frame's distinct strings, concatenated
    offsets: array[int]  # string i is text[offsets[i]:offsets[i + 1]]
    keys: array[int]  # per row: the index of its key
    columns: tuple[array[int] | list[Any], ...]  # string indexes (array) or JSON values (list)

    def __len__(self) -> int:
        return len(self.keys)

    def string(self, index: int) -> str:
        return self.text[self.offsets[index] : self.offsets[index + 1]]

    def key(self, row: int) -> str:
        return self.string(self.keys[row])

    def record(self, row: int) -> Record:
        """The row's record, as ``decode_frame`` gives it."""
        values = [
            self.string(column[row]) if isinstance(column, array) else column[row]
            for column in self.columns
        ]
        # Records shorter than the widest were padded with None (no record holds a None).
        while values and values[-1] is None:
            values.pop()
        return values

    def rows(self) -> Iterator[tuple[str, Record]]:
        for row in range(len(self)):
            yield self.key(row), self.record(row)

    def string_indexes(self, value: str) -> list[int]:
        """The indexes of the strings equal to ``value`` (at most one, unless a frame was
        written by another encoder); a search of the text, not a table in memory."""
        last = len(self.offsets) - 1
        if not value:  # the empty string has no place of its own in the text
            return [i for i in range(last) if self.offsets[i] == self.offsets[i + 1]]
        found: list[int] = []
        start = self.text.find(value)
        while start >= 0:
            # The last string starting here: empty strings before it share its offset.
            index = bisect_right(self.offsets, start) - 1
            if (
                index < last
                and self.offsets[index] == start
                and self.offsets[index + 1] == start + len(value)
            ):
                found.append(index)
            start = self.text.find(value, start + 1)
        return found


def decode_columns(frame: bytes) -> ColumnFrame:
    """A frame (without its header) as columns; ``SnapshotRejected`` if it does not parse or
    refers outside its strings."""
    try:
        parsed = _Frame.model_validate_json(zlib.decompress(frame))
    except (zlib.error, ValidationError, UnicodeDecodeError) as error:
        raise SnapshotRejected(f"a frame does not parse: {error}") from error
    if parsed.d not in DATASET_NAMES:
        raise SnapshotRejected(f"a frame names an unknown dataset {parsed.d!r}")
    strings = parsed.s
    # Two bytes per index while a frame has fewer than 65,536 distinct strings (it always
    # has at the publisher's page sizes), four otherwise.
    typecode = "H" if len(strings) <= 0xFFFF else "I"
    try:
        keys = array(typecode, parsed.k)
        columns = tuple(
            array(typecode, column.v) if column.t == "s" else column.v for column in parsed.c
        )
    except (TypeError, OverflowError) as error:
        raise SnapshotRejected(f"a frame refers outside its strings: {error}") from error
    indexes = [keys, *(c for c in columns if isinstance(c, array))]
    if any(column and max(column) >= len(strings) for column in indexes):
        raise SnapshotRejected("a frame refers outside its strings")
    if any(len(column) != len(keys) for column in columns):
        raise SnapshotRejected("a frame's columns differ in length")
    offsets = array("I", accumulate(map(len, strings), initial=0))
    return ColumnFrame(parsed.d, "".join(strings), offsets, keys, columns)


def decode_frame(frame: bytes) -> tuple[str, list[tuple[str, Record]]]:
    """A frame (without its header) as its dataset and (key, record) pairs."""
    columns = decode_columns(frame)
    return columns.dataset, list(columns.rows())


@dataclass
class SnapshotWriter:
    """Stages a publish's pages as blocks; ``commit`` makes the blob visible with its manifest.

    A failure to write disables the writer (logged): the table snapshot is the source of
    truth, and an instance without a blob loads from the tables.
    """

    blobs: SnapshotBlobs
    run_id: str
    _blocks: list[str] = field(default_factory=list)
    _digest: Any = field(default_factory=hashlib.sha256)
    _records: int = 0
    _failed: bool = False

    @property
    def name(self) -> str:
        return self.blobs.name(self.run_id)

    async def add(self, dataset: str, records: Sequence[tuple[str, Record]]) -> None:
        if self._failed or not records:
            return
        frame = encode_frame(dataset, records)
        block_id = base64.b64encode(f"{len(self._blocks):08d}".encode()).decode()
        try:
            await self.blobs.store.stage_block(self.name, block_id, frame)
        except Exception:
            _log.warning("price snapshot blob %s: staging failed; none this run", self.name)
            self._failed = True
            return
        self._blocks.append(block_id)
        self._digest.update(frame)
        self._records += len(records)

    async def commit(self) -> bool:
        if self._failed:
            return False
        manifest = {
            "format": FORMAT,
            "runid": self.run_id,
            "frames": str(len(self._blocks)),
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

    def frames(self) -> Iterator[Frame]:
        """Decoded frames in publish order; ``SnapshotRejected`` if one does not parse."""
        for frame in self.column_frames():
            yield frame.dataset, list(frame.rows())

    def column_frames(self) -> Iterator[ColumnFrame]:
        """The frames in publish order, as columns; ``SnapshotRejected`` if one does not
        parse or holds another record count than its header says."""
        for offset, length, records in self.spans:
            frame = decode_columns(self.content[offset : offset + length])
            if len(frame) != records:
                raise SnapshotRejected("a frame holds another record count than its header")
            yield frame


async def read_snapshot(blobs: SnapshotBlobs, run_id: str) -> SnapshotContent:
    """Run ``run_id``'s blob, checked against its manifest (run, checksum, frames, records).

    Every check that needs no decoding is done here, before anything is built from it; a
    frame that does not decode is found while iterating (the caller then discards what it
    built and loads from the tables).
    """
    stored = await blobs.store.read(blobs.name(run_id))
    if stored is None:
        raise SnapshotRejected(f"no snapshot blob for run {run_id}")
    try:
        manifest = _Manifest.model_validate(stored.metadata)
    except ValidationError as error:
        raise SnapshotRejected(f"manifest unreadable: {error}") from error
    if manifest.runid != run_id:
        raise SnapshotRejected(f"stale: blob of run {manifest.runid}, current is {run_id}")
    content = stored.content
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
    if len(spans) != manifest.frames or records != manifest.records:
        raise SnapshotRejected(
            f"counts differ from the manifest: {len(spans)} frames / {records} records, "
            f"expected {manifest.frames} / {manifest.records}"
        )
    return SnapshotContent(content, spans)


async def drop_other_runs(blobs: SnapshotBlobs, keep: set[str]) -> None:
    """Delete this prefix's snapshot blobs of runs not in ``keep``."""
    wanted = {blobs.name(run_id) for run_id in keep if run_id}
    start = f"{blobs.prefix.lower()}snapshot-"
    for name in await blobs.store.names():
        if name.startswith(start) and name not in wanted:
            await blobs.store.delete(name)
