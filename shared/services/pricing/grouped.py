"""A dataset's snapshot rows kept as the blob's columns, found by a group key.

Built straight from the decoded frames: per row only an integer (its group), and one sort at
the end puts each group's rows together. No record, string or Decimal is made at load time; a
caller asks for one group's rows (an item's price lines, an item's units) when it needs them.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Hashable, Iterator
from itertools import accumulate, repeat
from operator import add, mul

from shared.adapters.stores.price_data import Record
from shared.adapters.stores.price_snapshot import ColumnFrame, SnapshotRejected


class GroupedRecords:
    """Rows of one dataset, grouped by the strings in ``group_columns`` (one or two columns).

    A one-column group is keyed by its string, a two-column group by the pair. Rows keep
    publish order within a group, so a caller that lets later rows win sees what a load of
    the whole table would have kept.
    """

    def __init__(self, group_columns: tuple[int] | tuple[int, int]) -> None:
        self._group_columns = group_columns
        self._frames: list[ColumnFrame] = []
        self._frame_starts: list[int] = []  # the first row number of each frame
        self._groups: dict[Hashable, int] = {}
        self._row_groups = array("I")  # per row while loading; dropped by finish()
        self._order = array("I")  # row numbers, group by group
        self._group_starts = array("I")  # where each group's rows begin in _order
        self._rows = 0

    def __len__(self) -> int:
        """Rows held (before any override a caller applies on top)."""
        return self._rows

    def add(self, frame: ColumnFrame) -> None:
        columns: list[array[int]] = []
        for position in self._group_columns:
            column = frame.columns[position] if position < len(frame.columns) else None
            if not isinstance(column, array):
                raise SnapshotRejected(f"a {frame.dataset} frame's group column is not strings")
            columns.append(column)
        # One integer per row for its group within the frame (for a pair: first * width +
        # second), mapped to the group's number here once per distinct value.
        width = len(frame.offsets)
        if len(columns) == 2:
            codes: list[int] = list(map(add, map(mul, columns[0], repeat(width)), columns[1]))
        else:
            codes = list(columns[0])
        local: dict[int, int] = {}
        for code in set(codes):
            group: Hashable = (
                (frame.string(code // width), frame.string(code % width))
                if len(columns) == 2
                else frame.string(code)
            )
            local[code] = self._groups.setdefault(group, len(self._groups))
        self._row_groups.extend(map(local.__getitem__, codes))
        self._frames.append(frame)
        self._frame_starts.append(self._rows)
        self._rows += len(frame)

    def finish(self) -> None:
        """Sort the rows into their groups (stable: publish order within a group)."""
        row_groups = self._row_groups
        self._order = array("I", sorted(range(self._rows), key=row_groups.__getitem__))
        counts = [0] * (len(self._groups) + 1)
        for group, count in Counter(row_groups).items():
            counts[group + 1] = count
        self._group_starts = array("I", accumulate(counts))
        self._row_groups = array("I")

    def groups(self) -> Iterator[Hashable]:
        return iter(self._groups)

    def __contains__(self, group: object) -> bool:
        return group in self._groups

    def rows(self, group: Hashable) -> list[tuple[str, Record]]:
        """The (key, record) rows of a group in publish order; none for an unknown group."""
        number = self._groups.get(group)
        if number is None:
            return []
        start, end = self._group_starts[number], self._group_starts[number + 1]
        return [self._row(row) for row in self._order[start:end]]

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
                    found.append((key, frame.record(row)))
        return found

    def _row(self, row: int) -> tuple[str, Record]:
        frame_number = bisect_right(self._frame_starts, row) - 1
        frame = self._frames[frame_number]
        at = row - self._frame_starts[frame_number]
        return frame.key(at), frame.record(at)
