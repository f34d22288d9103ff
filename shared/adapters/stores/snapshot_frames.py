"""The snapshot blob's frames: one ERP page of one dataset, column by column.

Format 2 (written since the price book builds from the columns) is laid out so that decoding
copies bytes instead of parsing numbers: after zlib, a small JSON header (dataset, row
count, index width, the non-string columns' values), the lengths of the frame's distinct
strings (SKUs, codes and decimals repeat a lot), the strings as one UTF-8 text, then the keys
and every string column as little-endian arrays of indexes into those strings. A format-3
blob holds the same frames plus a directory (``snapshot_directory``). Format 1
(JSON throughout: ``{"d", "k", "s", "c"}``) is still read, so blobs written before stay
usable.

A frame that does not parse raises ``SnapshotRejected`` when decoded, a row that refers outside
its frame's strings when it is read.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.adapters.stores.price_data import DATASET_NAMES, Record

# A format-2 body starts with the header's length and the text's length in bytes (big-endian),
# then come the header, the string lengths, the text and the index arrays.
LENGTHS = struct.Struct(">II")
_BIG_ENDIAN = sys.byteorder == "big"


class SnapshotRejected(ValueError):
    """The blob cannot be served: missing, stale, torn or malformed (the reason says which)."""


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
        try:
            return self.text[self.offsets[index] : self.offsets[index + 1]]
        except IndexError:
            raise SnapshotRejected("a frame refers outside its strings") from None

    def key(self, row: int) -> str:
        return self.string(self.keys[row])

    def record(self, row: int) -> Record:
        """The row's record as the publisher wrote it."""
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


def little_endian(values: array[int]) -> bytes:
    if _BIG_ENDIAN:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def encode_frame(dataset: str, records: Sequence[tuple[str, Record]]) -> bytes:
    """One page of records as a format-2 frame, its length and record count in front."""
    strings: dict[str, int] = {}

    def intern(value: str) -> int:
        found = strings.get(value)
        if found is None:
            found = strings[value] = len(strings)
        return found

    keys = [intern(key) for key, _ in records]
    width = max((len(record) for _, record in records), default=0)
    string_columns: list[list[int]] = []
    columns: list[dict[str, Any]] = []
    for position in range(width):
        values = [record[position] if position < len(record) else None for _, record in records]
        if all(type(value) is str for value in values):
            string_columns.append([intern(str(value)) for value in values])
            columns.append({"t": "s"})
        else:
            columns.append({"t": "j", "v": values})
    typecode = "H" if len(strings) <= 0xFFFF else "I"
    header = json.dumps(
        {"d": dataset, "n": len(records), "w": typecode, "s": len(strings), "c": columns},
        separators=(",", ":"),
    ).encode("utf-8")
    text = "".join(strings).encode("utf-8")
    parts = [
        LENGTHS.pack(len(header), len(text)),
        header,
        little_endian(array("I", map(len, strings))),
        text,
        little_endian(array(typecode, keys)),
        *(little_endian(array(typecode, column)) for column in string_columns),
    ]
    packed = zlib.compress(b"".join(parts), 1)
    return struct.pack(">II", len(packed), len(records)) + packed


class _Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    t: Literal["s", "j"]
    v: list[Any] | None = None


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid")

    d: str
    n: int = Field(ge=0)
    w: Literal["H", "I"]
    s: int = Field(ge=0)
    c: list[_Column]


class BodyReader:
    """Takes the parts of a format-2 body in order; any shortfall is a torn frame."""

    def __init__(self, body: bytes, what: str = "a frame") -> None:
        self._body = memoryview(body)
        self._what = what
        self._at = 0

    def take(self, size: int) -> memoryview:
        if size < 0 or self._at + size > len(self._body):
            raise SnapshotRejected(f"{self._what} does not parse: it is shorter than its parts")
        part = self._body[self._at : self._at + size]
        self._at += size
        return part

    def indexes(self, typecode: str, count: int) -> array[int]:
        values = array(typecode)
        values.frombytes(self.take(count * values.itemsize))
        if _BIG_ENDIAN:
            values.byteswap()
        return values

    def done(self) -> bool:
        return self._at == len(self._body)


def decode_columns(frame: bytes, format: str = "2") -> ColumnFrame:
    """A frame (without its length prefix) as columns; ``SnapshotRejected`` if it does not
    parse or refers outside its strings."""
    try:
        body = zlib.decompress(frame)
    except zlib.error as error:
        raise SnapshotRejected(f"a frame does not parse: {error}") from error
    decoded = _decode_v1(body) if format == "1" else _decode_v2(body)
    if decoded.dataset not in DATASET_NAMES:
        raise SnapshotRejected(f"a frame names an unknown dataset {decoded.dataset!r}")
    # An index past the frame's strings is found when its row is read (``string`` raises
    # SnapshotRejected): checking every index here would double the decoding time, and a
    # blob whose checksum matches holds only what the publisher's encoder wrote.
    if any(len(column) != len(decoded.keys) for column in decoded.columns):
        raise SnapshotRejected("a frame's columns differ in length")
    return decoded


def _decode_v2(body: bytes) -> ColumnFrame:
    reader = BodyReader(body)
    header_size, text_size = LENGTHS.unpack(reader.take(LENGTHS.size))
    try:
        header = _Header.model_validate_json(bytes(reader.take(header_size)))
        lengths = reader.indexes("I", header.s)
        text = str(reader.take(text_size), "utf-8")
    except (ValidationError, UnicodeDecodeError) as error:
        raise SnapshotRejected(f"a frame does not parse: {error}") from error
    offsets = array("I", accumulate(lengths, initial=0))
    if offsets[-1] != len(text):
        raise SnapshotRejected("a frame does not parse: its strings do not fill its text")
    keys = reader.indexes(header.w, header.n)
    columns = tuple(
        reader.indexes(header.w, header.n) if column.t == "s" else column.v or []
        for column in header.c
    )
    if not reader.done():
        raise SnapshotRejected("a frame does not parse: bytes left over")
    return ColumnFrame(header.d, text, offsets, keys, columns)


class _FrameV1(BaseModel):
    model_config = ConfigDict(extra="forbid")

    d: str
    k: list[int]
    s: list[str]
    c: list[_ColumnV1]


class _ColumnV1(BaseModel):
    model_config = ConfigDict(extra="forbid")

    t: Literal["s", "j"]
    v: list[Any]


_FrameV1.model_rebuild()


def _decode_v1(body: bytes) -> ColumnFrame:
    try:
        parsed = _FrameV1.model_validate_json(body)
    except (ValidationError, UnicodeDecodeError) as error:
        raise SnapshotRejected(f"a frame does not parse: {error}") from error
    strings = parsed.s
    typecode = "H" if len(strings) <= 0xFFFF else "I"
    try:
        keys = array(typecode, parsed.k)
        columns = tuple(
            array(typecode, column.v) if column.t == "s" else column.v for column in parsed.c
        )
    except (TypeError, OverflowError) as error:
        raise SnapshotRejected(f"a frame refers outside its strings: {error}") from error
    offsets = array("I", accumulate(map(len, strings), initial=0))
    return ColumnFrame(parsed.d, "".join(strings), offsets, keys, columns)


def decode_frame(frame: bytes, format: str = "2") -> tuple[str, list[tuple[str, Record]]]:
    """A frame (without its length prefix) as its dataset and (key, record) pairs."""
    columns = decode_columns(frame, format)
    return columns.dataset, list(columns.rows())
