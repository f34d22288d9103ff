"""Sets of missing sequence numbers, kept as sorted inclusive ranges.

A position remembers the sequences below its `last_sequence` it has never seen (bridged by a
count, or skipped when a gap timed out), so a straggler can still be recognised and folded in
exactly. A gap can span millions of numbers after a source reset, hence ranges, not sets.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from .errors import InvalidStockInput


@dataclass(frozen=True, slots=True, order=True)
class SequenceRange:
    """Sequence numbers `first` to `last`, both included."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if self.first < 1 or self.last < self.first:
            raise InvalidStockInput(f"invalid sequence range {self.first}..{self.last}")

    def __contains__(self, sequence: object) -> bool:
        return isinstance(sequence, int) and self.first <= sequence <= self.last

    @property
    def size(self) -> int:
        """How many sequence numbers the range holds."""
        return self.last - self.first + 1


Ranges = tuple[SequenceRange, ...]


def ranges_contain(ranges: Ranges, sequence: int) -> bool:
    """Whether `sequence` is in one of the sorted, disjoint `ranges`."""
    index = bisect_right(ranges, SequenceRange(sequence, 2**63)) - 1
    return index >= 0 and sequence in ranges[index]


def add_range(ranges: Ranges, first: int, last: int) -> Ranges:
    """`ranges` plus `first..last`, merged so the result stays sorted, disjoint and minimal."""
    if last < first:
        return ranges
    merged: list[SequenceRange] = []
    new = SequenceRange(first, last)
    for existing in ranges:
        if existing.last + 1 < new.first or new.last + 1 < existing.first:
            merged.append(existing)
        else:
            new = SequenceRange(min(new.first, existing.first), max(new.last, existing.last))
    merged.append(new)
    return tuple(sorted(merged))


def remove_sequence(ranges: Ranges, sequence: int) -> Ranges:
    """`ranges` without `sequence` (splitting the range that held it)."""
    result: list[SequenceRange] = []
    for existing in ranges:
        if sequence not in existing:
            result.append(existing)
            continue
        if existing.first < sequence:
            result.append(SequenceRange(existing.first, sequence - 1))
        if sequence < existing.last:
            result.append(SequenceRange(sequence + 1, existing.last))
    return tuple(result)


def keep_newest(ranges: Ranges, limit: int) -> tuple[Ranges, Ranges]:
    """(kept, dropped): at most `limit` ranges, dropping the oldest (lowest) first.

    Stragglers for the oldest gaps are the least likely to still arrive, and reconciliation
    corrects whatever they would have changed.
    """
    if len(ranges) <= limit:
        return ranges, ()
    cut = len(ranges) - limit
    return ranges[cut:], ranges[:cut]
