"""JSON in and out without float: money and quantities stay exact Decimals end to end."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID


class JsonDecodeFailed(ValueError):
    """The body is not JSON at all."""


def decode_json(content: bytes) -> Any:
    """Parse a response body, reading every JSON number with a fraction as Decimal."""
    try:
        return json.loads(content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonDecodeFailed(str(exc)) from exc


def encode_json(value: Any) -> bytes:
    """Serialise a payload, writing Decimals as JSON numbers (BC's Edm.Decimal) exactly."""
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    # Hand-rolled only because the stdlib encoder cannot emit a Decimal as a bare number.
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send non-finite decimal {value}")
        return format(value, "f")
    if isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        raise TypeError("floats are not sent to the ERP; use Decimal")
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    if isinstance(value, UUID):
        return json.dumps(str(value))
    if isinstance(value, Enum):
        return _encode(value.value)
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}:{_encode(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
