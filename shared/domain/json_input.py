"""The one JSON reader for everything that comes from outside: HTTP bodies, message bodies,
ERP responses, webhook payloads.

``json.loads`` alone accepts what an attacker or a broken peer can send: nesting deep enough
to exhaust the interpreter's recursion (a 500 or a poison message), numbers of thousands of
digits, the same key twice (which one wins is a guess), lone surrogates, NaN. This reader
refuses each of them with a ``JsonRejected`` that names the limit, so an HTTP edge answers a
4xx and a message handler dead-letters at once with the reason. Numbers with a fraction or an
exponent are read as ``Decimal``, never float.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True)
class JsonLimits:
    """Bounds for one document; the defaults suit request and message bodies."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 32
    max_number_chars: int = 40


DEFAULT_LIMITS = JsonLimits()


class JsonRejected(ValueError):
    """The document breaks a limit or is not JSON; ``reason`` is a stable, short name."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def read_json(data: bytes | str, limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """Parse `data` within `limits`; raise ``JsonRejected`` naming what is wrong."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise JsonRejected("too-large", f"{size} bytes, at most {limits.max_bytes} allowed")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JsonRejected("invalid-utf8", f"not UTF-8 at byte {error.start}") from None
    else:
        text = data
    try:
        value = json.loads(
            text,
            parse_float=_number(limits, Decimal),
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except JsonRejected:
        raise
    except RecursionError:
        raise JsonRejected("too-deep", f"nested more than {limits.max_depth} levels") from None
    except ValueError as error:  # also Python's own refusal of a 4,300-digit integer
        raise JsonRejected("invalid-json", str(error)[:200]) from None
    _check_shape(value, limits)
    return value


def _number(limits: JsonLimits, kind: type[Decimal]) -> Any:
    def parse(text: str) -> Decimal:
        if len(text) > limits.max_number_chars:
            raise JsonRejected(
                "number-too-long",
                f"a number of {len(text)} characters, at most {limits.max_number_chars} allowed",
            )
        try:
            return kind(text)
        except (ValueError, InvalidOperation):
            raise JsonRejected("invalid-json", f"not a number: {text[:40]}") from None

    return parse


def _no_constant(name: str) -> Any:
    raise JsonRejected("invalid-json", f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonRejected("duplicate-key", f"the key {key[:80]!r} appears twice in an object")
        result[key] = value
    return result


def _check_shape(value: Any, limits: JsonLimits) -> None:
    """Depth and integer size within bounds, and no lone surrogate (``"\\ud800"``: a valid
    JSON escape, but not text) in any key or string. Iterative: depth costs no recursion.
    (Integers are checked here rather than in a parse hook, which would cost a Python call
    per number; Python itself refuses integers of more than 4,300 digits while parsing.)"""
    max_depth = limits.max_depth
    int_bound = 10**limits.max_number_chars
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _text(item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= int_bound:
            raise JsonRejected(
                "number-too-long", f"an integer of more than {limits.max_number_chars} digits"
            )
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise JsonRejected("too-deep", f"nested more than {max_depth} levels")
            if isinstance(item, dict):
                for key in item:
                    _text(key)
                stack.extend((inner, depth + 1) for inner in item.values())
            else:
                stack.extend((inner, depth + 1) for inner in item)


def _text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRejected("invalid-unicode", "a string holds a lone surrogate") from None
