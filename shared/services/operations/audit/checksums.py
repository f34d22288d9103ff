"""Order-independent row digests and the comparison of two sides of one dataset.

Each row is hashed from its key and the fields the product copies (a 64-bit BLAKE2b of their
canonical JSON) and the hashes are *summed* modulo 2**64, so the ERP's page order, the order
of table partitions or a retried page does not change the checksum, while a repeated row does
(a XOR would let two copies cancel out). Pure functions: no I/O here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from shared.services.operations.audit.models import DatasetComparison, Digest, IssueList, RowIssue

_MODULUS = 2**64


def _canonical(value: object) -> object:
    if isinstance(value, Decimal):
        # "10", "10.0" and "1E+1" are the same quantity on both sides.
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, datetime | timedelta):
        return str(value)
    return value


def row_hash(key: str, fields: Sequence[object]) -> int:
    """A 64-bit hash of one row's key and copied fields."""
    text = json.dumps(
        [key, *(_canonical(f) for f in fields)],
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


@dataclass
class Accumulator:
    """Count and checksum built one row at a time, in any order."""

    count: int = 0
    checksum: int = 0

    def add(self, digest: int) -> None:
        self.count += 1
        self.checksum = (self.checksum + digest) % _MODULUS

    def digest(self) -> Digest:
        return Digest(count=self.count, checksum=f"{self.checksum:016x}")


@dataclass(frozen=True)
class RowState:
    """One row of one side: its hash and when that side last changed it (None: unknown)."""

    digest: int
    changed_at: datetime | None


def digest_of(rows: Mapping[str, RowState]) -> Digest:
    total = Accumulator()
    for state in rows.values():
        total.add(state.digest)
    return total.digest()


def truncated(issues: Sequence[RowIssue], limit: int) -> IssueList:
    """The first ``limit`` issues (by key, so a report is stable between runs) and the total."""
    ordered = sorted(issues, key=lambda issue: issue.key)
    return IssueList(total=len(ordered), rows=ordered[: max(limit, 0)])


def _age(now: datetime, *moments: datetime | None) -> timedelta | None:
    known = [m for m in moments if m is not None]
    return now - max(known) if known else None


def _issue(key: str, age: timedelta | None, objective: timedelta) -> RowIssue:
    # A row whose change time is unknown cannot be shown to be within the policy.
    over = age is None or age > objective
    return RowIssue(
        key=key,
        age_seconds=None if age is None else int(age.total_seconds()),
        over_policy=over,
    )


def compare_rows(
    name: str,
    product_side: str,
    erp: Mapping[str, RowState],
    product: Mapping[str, RowState],
    *,
    now: datetime,
    objective: timedelta,
    limit: int,
    excluded: int = 0,
) -> DatasetComparison:
    """Missing, extra and differing rows, each judged against the freshness objective.

    Missing or differing rows are "older than policy" when the newest change on either side
    is older than the objective (the product had the time it is allowed and still differs).
    Extra rows have no ERP change time (the ERP deleted them or never had them), so they
    always count against the objective.
    """
    missing = [
        _issue(key, _age(now, state.changed_at), objective)
        for key, state in erp.items()
        if key not in product
    ]
    extra = [
        RowIssue(key=key, age_seconds=None, over_policy=True) for key in product if key not in erp
    ]
    differing = [
        _issue(key, _age(now, state.changed_at, product[key].changed_at), objective)
        for key, state in erp.items()
        if key in product and product[key].digest != state.digest
    ]
    erp_digest, product_digest = digest_of(erp), digest_of(product)
    over = sum(1 for issue in (*missing, *extra, *differing) if issue.over_policy)
    return DatasetComparison(
        name=name,
        product_side=product_side,
        erp=erp_digest,
        product=product_digest,
        missing=truncated(missing, limit),
        extra=truncated(extra, limit),
        differing=truncated(differing, limit),
        over_policy=over,
        objective_seconds=int(objective.total_seconds()),
        excluded=excluded,
        in_sync=erp_digest == product_digest and not (missing or extra or differing),
    )
