"""A dataset's snapshot rows kept as the blob's columns, found by a group key.

A blob of format 3 carries a directory (``snapshot_directory``): the rows are found through
it and loading only keeps the frames. An older blob's rows are grouped here, straight from the
decoded frames: per row only an integer (its group), and one sort at the end puts each group's
rows together. Either way no record, Decimal or per-row string is made at load time; a caller
asks for one group's rows (an item's price lines, an item's units) when it needs them, and a
row is served only if its group field holds the group asked for.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_right
from collections.abc import Iterator

from shared.adapters.stores.price_data import Record
from shared.adapters.stores.price_snapshot import ColumnFrame, GroupDirectory, SnapshotRejected
from shared.adapters.stores.snapshot_directory import group_rows

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

    def __init__(
        self,
        group_column: int,
        numbers: GroupNumbers | None = None,
        directory: GroupDirectory | None = None,
    ) -> None:
        self._group_column = group_column
        self._directory = directory
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
        if self._directory is None:
            self._number_rows(frame, column)
        self._frames.append(frame)
        self._frame_starts.append(self._rows)
        self._rows += len(frame)

    def _number_rows(self, frame: ColumnFrame, column: array[int]) -> None:
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

    def finish(self) -> None:
        """Check the directory against the frames, or (without one) sort the rows into their
        groups (stable: publish order within a group)."""
        if self._directory is not None:
            self._directory.check_rows(self._rows)
            return
        self._order, self._group_starts = group_rows(self._row_groups, len(self._numbers.numbers))
        self._row_groups = array("I")

    def _group_rows(self, group: str) -> array[int]:
        if self._directory is not None:
            return self._directory.rows_of(group)
        number = self._numbers.numbers.get(group)
        if number is None or number + 1 >= len(self._group_starts):
            return array("I")
        return self._order[self._group_starts[number] : self._group_starts[number + 1]]

    def groups(self) -> Iterator[str]:
        """The groups that have rows here."""
        if self._directory is not None:
            return self._directory.values()
        return (group for group in self._numbers.numbers if group in self)

    def __contains__(self, group: object) -> bool:
        return isinstance(group, str) and len(self._group_rows(group)) > 0

    def rows(self, group: str) -> list[tuple[str, Record]]:
        """The (key, record) rows of a group in publish order; none for an unknown group."""
        found: list[tuple[str, Record]] = []
        for row in self._group_rows(group):
            try:
                frame, at = self._locate(row)
                if frame.string(frame.columns[self._group_column][at]) != group:
                    raise SnapshotRejected("the directory lists it under another group")
                found.append((frame.key(at), frame.record(at)))
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

    def _locate(self, row: int) -> tuple[ColumnFrame, int]:
        frame_number = bisect_right(self._frame_starts, row) - 1
        if frame_number < 0 or row >= self._rows:
            raise SnapshotRejected("a row number outside the frames")
        return self._frames[frame_number], row - self._frame_starts[frame_number]
