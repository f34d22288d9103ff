"""In-memory storage of one entity set: rows by id, ids in sorted order, equality indexes.

Rows are stored as the JSON-ready dicts the API returns, so serving a page is a slice of
references and one ``json.dumps``; nothing is copied per request. Paging walks the sorted id
list, which does not shift when rows change, so a row is seen exactly once across pages.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable
from typing import Any

from devtools.erp_sim.schema import EntitySetSpec

Row = dict[str, Any]


class DuplicateKey(Exception):
    """A row with this key already exists."""


class EntitySet:
    """Rows of one entity set with a stable key order and optional equality indexes."""

    def __init__(self, spec: EntitySetSpec) -> None:
        self.spec = spec
        self.rows: dict[str, Row] = {}
        self.order: list[str] = []
        self.indexes: dict[str, dict[Any, list[str]]] = {name: {} for name in spec.indexed}
        # Rows written since load(): a delta read past every loaded timestamp only needs these.
        self.changed: set[str] = set()
        self.loaded_max_modified = ""

    def __len__(self) -> int:
        return len(self.rows)

    def load(self, rows: Iterable[Row]) -> None:
        """Replace the content in one go (sorting once instead of inserting one by one)."""
        key = self.spec.key
        self.rows = {row[key]: row for row in rows}
        self.order = sorted(self.rows)
        self.changed = set()
        self.loaded_max_modified = max(
            (str(row.get("lastModifiedDateTime") or "") for row in self.rows.values()), default=""
        )
        for name in self.indexes:
            index: dict[Any, list[str]] = {}
            for row_id, row in self.rows.items():
                value = row.get(name)
                bucket = index.get(value)
                if bucket is None:
                    index[value] = [row_id]
                else:
                    bucket.append(row_id)
            self.indexes[name] = index

    def get(self, row_id: str) -> Row | None:
        return self.rows.get(row_id)

    def find(self, name: str, value: Any) -> list[Row]:
        """Rows whose indexed field ``name`` equals ``value``, in key order."""
        ids = self.indexes[name].get(value, ())
        return [self.rows[row_id] for row_id in sorted(ids)]

    def find_one(self, name: str, value: Any) -> Row | None:
        ids = self.indexes[name].get(value)
        return self.rows[ids[0]] if ids else None

    def candidate_ids(self, name: str, values: Iterable[Any]) -> list[str]:
        """Sorted ids of rows whose indexed field is one of ``values``."""
        index = self.indexes[name]
        found: set[str] = set()
        for value in values:
            found.update(index.get(value, ()))
        return sorted(found)

    def insert(self, row: Row) -> None:
        row_id = row[self.spec.key]
        if row_id in self.rows:
            raise DuplicateKey(row_id)
        self.rows[row_id] = row
        insort(self.order, row_id)
        self.changed.add(row_id)
        for name, index in self.indexes.items():
            index.setdefault(row.get(name), []).append(row_id)

    def update(self, row: Row, changes: dict[str, Any]) -> None:
        """Apply ``changes`` to a stored row in place, keeping the indexes right."""
        row_id = row[self.spec.key]
        for name, index in self.indexes.items():
            if name in changes and changes[name] != row.get(name):
                self._unindex(index, row.get(name), row_id)
                index.setdefault(changes[name], []).append(row_id)
        row.update(changes)
        self.changed.add(row_id)

    def mark_changed(self, row_id: str) -> None:
        if row_id in self.rows:
            self.changed.add(row_id)

    def changed_since(self, bound: str, inclusive: bool) -> list[str] | None:
        """Sorted ids that can have lastModifiedDateTime after ``bound``, when that is only
        rows written since load(); None when loaded rows may match too."""
        if bound < self.loaded_max_modified or (inclusive and bound == self.loaded_max_modified):
            return None
        return sorted(self.changed)

    def delete(self, row_id: str) -> Row | None:
        row = self.rows.pop(row_id, None)
        if row is None:
            return None
        self.changed.discard(row_id)
        position = bisect_right(self.order, row_id) - 1
        if position >= 0 and self.order[position] == row_id:
            del self.order[position]
        for name, index in self.indexes.items():
            self._unindex(index, row.get(name), row_id)
        return row

    @staticmethod
    def _unindex(index: dict[Any, list[str]], value: Any, row_id: str) -> None:
        bucket = index.get(value)
        if bucket is None:
            return
        if row_id in bucket:
            bucket.remove(row_id)
        if not bucket:
            del index[value]
