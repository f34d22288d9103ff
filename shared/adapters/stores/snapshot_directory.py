"""The snapshot blob's directory: each dataset's rows listed by the value quotes look them up by.

ERP pages are not in item order, so an item's price lines lie scattered over hundreds of
frames. Grouping a million rows by item on every cold start took most of the start; since
format 3 the publisher does it once and writes the result as the blob's last frame. For each
grouped dataset (``price_data.GROUP_FIELDS``): the distinct values sorted (as the frames hold
strings: their lengths, then one UTF-8 text), where each value's rows begin, and the dataset's
row numbers (counted across its frames in publish order) value by value, publish order kept
within a value. A reader finds a value by binary search over the sorted text and builds
nothing at load time.

Layout after zlib: the header's length and 0 (big-endian, as a frame's parts), a JSON header
(per section: dataset, field, value count, row count, text bytes), then per section the value
lengths, the text, the starts and the row numbers as little-endian uint32 arrays.
"""

from __future__ import annotations

import zlib
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.adapters.stores.price_data import GROUP_FIELDS, Record
from shared.adapters.stores.snapshot_frames import (
    LENGTHS,
    BodyReader,
    SnapshotRejected,
    little_endian,
)


def group_rows(row_groups: array[int], groups: int) -> tuple[array[int], array[int]]:
    """Row numbers sorted into their groups (stable: publish order within a group) and where
    each group's rows begin (``groups + 1`` entries), from each row's group number."""
    order = array("I", sorted(range(len(row_groups)), key=row_groups.__getitem__))
    counts = [0] * (groups + 1)
    for group, count in Counter(row_groups).items():
        counts[group + 1] = count
    return order, array("I", accumulate(counts))


class _SortedValues(Sequence[str]):
    """The sorted values as a sequence of strings sliced from one text (for ``bisect``)."""

    def __init__(self, text: str, offsets: array[int]) -> None:
        self._text = text
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        return self._text[self._offsets[index] : self._offsets[index + 1]]


class GroupDirectory:
    """One dataset's rows by value: ``rows_of(value)`` is a binary search and a slice."""

    def __init__(self, values: Sequence[str], starts: array[int], order: array[int]) -> None:
        if len(starts) != len(values) + 1 or starts[0] != 0 or starts[-1] != len(order):
            raise SnapshotRejected("the directory does not parse: its starts do not fit")
        self._values = values
        self._starts = starts
        self._order = order

    @property
    def rows(self) -> int:
        return len(self._order)

    def check_rows(self, rows: int) -> None:
        """``SnapshotRejected`` unless the directory lists exactly the dataset's ``rows``."""
        if len(self._order) != rows:
            raise SnapshotRejected(
                f"the directory lists {len(self._order)} rows, the frames hold {rows}"
            )
        if self._order and max(self._order) >= rows:
            raise SnapshotRejected(f"the directory names a row past the frames' {rows}")

    def rows_of(self, value: str) -> array[int]:
        """The value's row numbers in publish order (none for a value not listed)."""
        at = bisect_left(self._values, value)
        if at == len(self._values) or self._values[at] != value:
            return array("I")
        return self._order[self._starts[at] : self._starts[at + 1]]

    def values(self) -> Iterator[str]:
        return iter(self._values)


class DirectoryBuilder:
    """Collects each grouped dataset's row values while the publisher writes its frames."""

    def __init__(self) -> None:
        self._numbers: dict[str, dict[str, int]] = {name: {} for name in GROUP_FIELDS}
        self._row_groups: dict[str, array[int]] = {name: array("I") for name in GROUP_FIELDS}

    def add(self, dataset: str, records: Sequence[tuple[str, Record]]) -> None:
        field = GROUP_FIELDS.get(dataset)
        if field is None:
            return
        numbers = self._numbers[dataset]
        number = numbers.setdefault
        self._row_groups[dataset].extend(
            number(str(record[field]) if field < len(record) else "", len(numbers))
            for _, record in records
        )

    def encode(self) -> bytes:
        """The directory as a frame: its length and a record count of 0 in front."""
        sections: list[_Section] = []
        parts: list[bytes] = []
        for dataset, numbers in self._numbers.items():
            values = sorted(numbers)
            rank = array("I", [0]) * len(values)
            for position, value in enumerate(values):
                rank[numbers[value]] = position
            ranked = array("I", map(rank.__getitem__, self._row_groups[dataset]))
            order, starts = group_rows(ranked, len(values))
            text = "".join(values).encode("utf-8")
            sections.append(
                _Section(
                    d=dataset, f=GROUP_FIELDS[dataset], k=len(values), r=len(order), t=len(text)
                )
            )
            parts += [
                little_endian(array("I", (len(value) for value in values))),
                text,
                little_endian(starts),
                little_endian(order),
            ]
        header = _Header(s=sections).model_dump_json()
        body = LENGTHS.pack(len(header), 0) + header.encode("utf-8") + b"".join(parts)
        packed = zlib.compress(body, 1)
        return LENGTHS.pack(len(packed), 0) + packed


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    d: str
    f: int = Field(ge=0)
    k: int = Field(ge=0)
    r: int = Field(ge=0)
    t: int = Field(ge=0)


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid")

    s: list[_Section]


def decode_directory(frame: bytes) -> dict[str, GroupDirectory]:
    """A directory frame (without its length prefix) by dataset; ``SnapshotRejected`` if it
    does not parse or groups a dataset by another field than this code reads."""
    try:
        reader = BodyReader(zlib.decompress(frame), "the directory")
        header_size, _ = LENGTHS.unpack(reader.take(LENGTHS.size))
        header = _Header.model_validate_json(bytes(reader.take(header_size)))
        directories: dict[str, GroupDirectory] = {}
        for section in header.s:
            if GROUP_FIELDS.get(section.d) != section.f:
                raise SnapshotRejected(f"the directory groups {section.d!r} by another field")
            lengths = reader.indexes("I", section.k)
            text = str(reader.take(section.t), "utf-8")
            offsets = array("I", accumulate(lengths, initial=0))
            if offsets[-1] != len(text):
                raise SnapshotRejected("the directory does not parse: values and text differ")
            starts = reader.indexes("I", section.k + 1)
            order = reader.indexes("I", section.r)
            directories[section.d] = GroupDirectory(_SortedValues(text, offsets), starts, order)
    except (zlib.error, ValidationError, UnicodeDecodeError) as error:
        raise SnapshotRejected(f"the directory does not parse: {error}") from error
    if not reader.done():
        raise SnapshotRejected("the directory does not parse: bytes left over")
    return directories
