"""JSON in and out without float: money and quantities stay exact Decimals end to end."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from shared.domain.json_input import JsonLimits, JsonRejected, read_json

# Business Central answers pages of up to 20,000 entities; a few hundred MB is far beyond
# any real page but still a bound. Its documents nest a handful of levels.
ERP_LIMITS = JsonLimits(max_bytes=512 * 1024 * 1024, max_depth=16, max_number_chars=40)


class JsonDecodeFailed(ValueError):
    """The body is not JSON within the reader's limits."""


def decode_json(content: bytes) -> Any:
    """Parse a response body, reading every JSON number with a fraction as Decimal."""
    try:
        return read_json(content, ERP_LIMITS)
    except JsonRejected as exc:
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
