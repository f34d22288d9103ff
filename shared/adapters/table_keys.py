"""Reversible encoding of business identifiers into Table storage keys.

PartitionKey and RowKey may not contain ``/ \\ # ?`` or control characters, but SKUs and
customer numbers from the ERP can (``AB/12#3``). Percent-encoding just those characters (and
``%`` itself, so decoding is unambiguous) keeps ordinary keys readable in Storage Explorer and
makes every identifier round-trip.
"""

from __future__ import annotations

from urllib.parse import unquote

MAX_KEY_LENGTH = 1024


class InvalidKey(ValueError):
    """The identifier cannot be stored as a table key (empty or too long once encoded)."""


# Every character that must be escaped: the forbidden four, ``%`` and the control ranges.
_ESCAPED = "/\\#?%" + "".join(chr(code) for code in (*range(0x20), *range(0x7F, 0xA0)))
# One C-level pass instead of a Python test per character (keys are encoded per request).
_ESCAPES = str.maketrans(
    {char: "".join(f"%{byte:02X}" for byte in char.encode("utf-8")) for char in _ESCAPED}
)


def encode_key(value: str) -> str:
    """Encode an identifier for use as PartitionKey or RowKey."""
    if not value:
        raise InvalidKey("a table key cannot be empty")
    encoded = value.translate(_ESCAPES)
    if len(encoded) > MAX_KEY_LENGTH:
        raise InvalidKey(f"table key longer than {MAX_KEY_LENGTH} characters once encoded")
    return encoded


def decode_key(key: str) -> str:
    """Invert ``encode_key``: every ``%`` in an encoded key starts an escape."""
    return unquote(key, encoding="utf-8", errors="strict")
