"""Order ids that Business Central can store and find again.

The id becomes the sales order's ``externalDocumentNumber`` (Code[35], which BC upper-cases),
so it is upper case from the start: ``ORD-`` + 26 Crockford base32 characters of a ULID
(48-bit millisecond time + 80 random bits). Ids sort by creation time, which keeps the
operations view readable, and never collide in practice.
"""

from __future__ import annotations

import re

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
PREFIX = "ORD-"
_PATTERN = re.compile(r"^ORD-[0-9A-HJKMNP-TV-Z]{26}$")
_TIME_BITS = 48
_RANDOM_BYTES = 10


class InvalidOrderId(ValueError):
    """Not an order id this product issued."""


def new_order_id(unix_ms: int, random_bytes: bytes) -> str:
    """An order id for a moment (milliseconds since the epoch) and 10 random bytes."""
    if not 0 <= unix_ms < 2**_TIME_BITS:
        raise InvalidOrderId("time out of range for an order id")
    if len(random_bytes) != _RANDOM_BYTES:
        raise InvalidOrderId(f"need exactly {_RANDOM_BYTES} random bytes")
    value = (unix_ms << 80) | int.from_bytes(random_bytes, "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return PREFIX + "".join(reversed(chars))


def is_order_id(value: str) -> bool:
    """Whether `value` has the shape of an order id (a cheap check before any lookup)."""
    return bool(_PATTERN.match(value))
