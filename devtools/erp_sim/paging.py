"""Server-driven paging over an entity set in key order, with an opaque ``$skiptoken``.

The token carries the last key returned, not an offset: rows added, changed or removed
between two page requests cannot shift the window, so every row that exists throughout is
returned exactly once.
"""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


class SkipTokenError(Exception):
    """The ``$skiptoken`` was not issued by this simulator."""


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    last_key: str | None
    has_more: bool


def encode_skiptoken(last_key: str) -> str:
    raw = json.dumps({"k": last_key}, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_skiptoken(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        key = decoded["k"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise SkipTokenError("The $skiptoken is not valid.") from exc
    if not isinstance(key, str):
        raise SkipTokenError("The $skiptoken is not valid.")
    return key


def select_page(
    keys: list[str],
    rows: dict[str, Row],
    *,
    after: str | None,
    skip: int,
    limit: int,
    predicate: Callable[[Row], bool] | None,
) -> Page:
    """Up to ``limit`` rows after key ``after`` that pass ``predicate``, skipping ``skip``.

    ``has_more`` is only true when another matching row exists, so a full last page never
    leads the client to an empty one.
    """
    start = bisect_right(keys, after) if after is not None else 0
    if predicate is None:
        start += skip
        chosen = keys[start : start + limit]
        return Page(
            [rows[key] for key in chosen], chosen[-1] if chosen else None, start + limit < len(keys)
        )
    page_rows: list[Row] = []
    last_key: str | None = None
    to_skip = skip
    for position in range(start, len(keys)):
        key = keys[position]
        row = rows[key]
        if not predicate(row):
            continue
        if to_skip:
            to_skip -= 1
            continue
        if len(page_rows) >= limit:
            return Page(page_rows, last_key, True)
        page_rows.append(row)
        last_key = key
    return Page(page_rows, last_key, False)


def count_matching(
    keys: list[str], rows: dict[str, Row], predicate: Callable[[Row], bool] | None
) -> int:
    if predicate is None:
        return len(keys)
    return sum(1 for key in keys if predicate(rows[key]))
