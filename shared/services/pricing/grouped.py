"""A dataset's snapshot rows kept as the blob's columns, found by a group key.

Built straight from the decoded frames: per row only an integer (its group), and one sort at
the end puts each group's rows together. No record, Decimal or per-row string is made at load
time; a caller asks for one group's rows (an item's price lines, an item's units) when it
needs them.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator
from itertools import accumulate

from shared.adapters.stores.price_data import Record
from shared.adapters.stores.price_snapshot import ColumnFrame, SnapshotRejected

_log = logging.getLogger(__name__)


class GroupNumbers:
    """Group key -> number, shared by the datasets grouped by the same kind of key (items,
    units and lines all by item number), so a quarter of a million keys are held once."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}


class GroupedRecords:
    """Rows of one dataset grouped by the string in ``group_column``.

    Rows keep publish order within a group, so a caller that lets later rows win sees what a
    load of the whole table would have kept.
    """

    def __init__(self, group_column: int, numbers: GroupNumbers | None = None) -> None:
        self._group_column = group_column
        self._numbers = numbers or GroupNumbers()
        self._frames: list[ColumnFrame] = []
        self._frame_starts: list[int] = []  # the first row number of each frame
        self._row_groups = array("I")  # per row while loading; dropped by finish()
        self._order = array("I")  # row numbers, group by group
        self._group_starts = array("I", [0])  # where each group's rows begin in _order
        self._rows = 0

    def __len__(self) -> int:
        """Rows held (before any override a caller applies on top)."""
        return self._rows

    def add(self, frame: ColumnFrame) -> None:
        position = self._group_column
        column = frame.columns[position] if position < len(frame.columns) else None
        if not isinstance(column, array):
            raise SnapshotRejected(f"a {frame.dataset} frame's group column is not strings")
        # The frame's string index -> group number, once per distinct value (inlined: this
        # runs for every item of the catalog three times during a cold start).
        # The dictionary keeps the first string of each key, so every item number is held
        # once however many frames name it.
        numbers, text, offsets = self._numbers.numbers, frame.text, frame.offsets
        number = numbers.setdefault
        distinct = set(column)
        if distinct and max(distinct) >= len(offsets) - 1:
            raise SnapshotRejected(f"a {frame.dataset} frame refers outside its strings")
        local = {
            index: number(text[offsets[index] : offsets[index + 1]], len(numbers))
            for index in distinct
        }
        self._row_groups.extend(map(local.__getitem__, column))
        self._frames.append(frame)
        self._frame_starts.append(self._rows)
        self._rows += len(frame)

    def finish(self) -> None:
        """Sort the rows into their groups (stable: publish order within a group)."""
        row_groups = self._row_groups
        self._order = array("I", sorted(range(self._rows), key=row_groups.__getitem__))
        counts = [0] * (len(self._numbers.numbers) + 1)
        for group, count in Counter(row_groups).items():
            counts[group + 1] = count
        self._group_starts = array("I", accumulate(counts))
        self._row_groups = array("I")

    def _span(self, group: str) -> tuple[int, int]:
        number = self._numbers.numbers.get(group)
        if number is None or number + 1 >= len(self._group_starts):
            return 0, 0
        return self._group_starts[number], self._group_starts[number + 1]

    def groups(self) -> Iterator[str]:
        """The groups that have rows here."""
        return (group for group in self._numbers.numbers if group in self)

    def __contains__(self, group: object) -> bool:
        if not isinstance(group, str):
            return False
        start, end = self._span(group)
        return end > start

    def rows(self, group: str) -> list[tuple[str, Record]]:
        """The (key, record) rows of a group in publish order; none for an unknown group."""
        start, end = self._span(group)
        found: list[tuple[str, Record]] = []
        for row in self._order[start:end]:
            try:
                found.append(self._row(row))
            except SnapshotRejected as error:  # never served, like an invalid ERP row
                _log.warning("snapshot row %s of group %s not served: %s", row, group, error)
        return found

    def rows_with_key(self, key: str) -> list[tuple[str, Record]]:
        """Every row whose key is ``key``, in publish order: a search of the frames' text
        (milliseconds per million rows), for the rare look-up by key."""
        found: list[tuple[str, Record]] = []
        for frame in self._frames:
            for index in frame.string_indexes(key):
                row = -1
                while True:
                    try:
                        row = frame.keys.index(index, row + 1)
                    except ValueError:
                        break
                    try:
                        found.append((key, frame.record(row)))
                    except SnapshotRejected as error:
                        _log.warning("snapshot row of key %s not served: %s", key, error)
        return found

    def _row(self, row: int) -> tuple[str, Record]:
        frame_number = bisect_right(self._frame_starts, row) - 1
        frame = self._frames[frame_number]
        at = row - self._frame_starts[frame_number]
        return frame.key(at), frame.record(at)
