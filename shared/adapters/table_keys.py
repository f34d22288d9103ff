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


def _needs_escape(char: str) -> bool:
    code = ord(char)
    return char in "/\\#?%" or code < 0x20 or 0x7F <= code <= 0x9F


def encode_key(value: str) -> str:
    """Encode an identifier for use as PartitionKey or RowKey."""
    if not value:
        raise InvalidKey("a table key cannot be empty")
    encoded = "".join(
        "".join(f"%{byte:02X}" for byte in char.encode("utf-8")) if _needs_escape(char) else char
        for char in value
    )
    if len(encoded) > MAX_KEY_LENGTH:
        raise InvalidKey(f"table key longer than {MAX_KEY_LENGTH} characters once encoded")
    return encoded


def decode_key(key: str) -> str:
    """Invert ``encode_key``: every ``%`` in an encoded key starts an escape."""
    return unquote(key, encoding="utf-8", errors="strict")
