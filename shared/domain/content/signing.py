"""Signing of storefront catalog webhooks: HMAC-SHA256 over the timestamped body.

The product signs every batch it pushes to a channel; the receiver (a storefront, or the local
storefront simulator) verifies it. The timestamp is part of the signed bytes so a captured
request cannot be replayed outside the tolerance window; within the window the receiver keeps
the (timestamp, signature) pairs it has seen. Pure code: the caller passes the clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

SIGNATURE_HEADER = "x-signature"
TIMESTAMP_HEADER = "x-signature-timestamp"
CHANNEL_HEADER = "x-channel"
SCHEME = "v1"
DEFAULT_TOLERANCE = timedelta(minutes=5)
_SHA256_HEX_LENGTH = 64
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class SigningError(Exception):
    """Base class of every signing error, so a receiver can catch the family."""


class SignatureInvalid(SigningError):
    """The signature headers are missing or malformed, or no accepted secret produced them."""


class SignatureExpired(SigningError):
    """The signature is genuine but its timestamp is outside the tolerance (old or future)."""


class NaiveDatetime(SigningError, ValueError):
    """A clock reading without a timezone: Unix seconds would depend on the host's zone."""


def sign(
    body: bytes, secret: bytes, now: datetime, *, channel: str | None = None
) -> dict[str, str]:
    """Headers that authenticate `body` for a receiver sharing `secret`, signed at `now`.

    `channel`, when given, adds the `x-channel` header naming the receiving channel.
    """
    timestamp = str(_unix_seconds(now))
    headers = {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: f"{SCHEME}={_digest(secret, timestamp, body)}",
    }
    if channel is not None:
        headers[CHANNEL_HEADER] = channel
    return headers


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: bytes | Sequence[bytes],
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> None:
    """Return when `headers` sign `body` with one of the accepted secrets within `tolerance`.

    `secret` may be one secret or several (old and new during a rotation). The signature is
    checked before the time so `SignatureExpired` always means "genuine but stale" (clock
    skew or a late retry), never "forged". Raises `SignatureInvalid` or `SignatureExpired`.
    """
    secrets = [secret] if isinstance(secret, bytes | bytearray) else list(secret)
    if not secrets:
        raise ValueError("verify needs at least one accepted secret")
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} must be Unix seconds")
    offered = _offered_digests(_header(headers, SIGNATURE_HEADER))
    if not _any_matches(offered, secrets, timestamp, body):
        raise SignatureInvalid("no accepted secret produced this signature")
    age = _unix_seconds(now) - int(timestamp)
    if abs(age) > tolerance.total_seconds():
        direction = "old" if age > 0 else "in the future"
        raise SignatureExpired(f"signature timestamp is {abs(age)}s {direction}")


def _digest(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _any_matches(
    offered: Sequence[str], secrets: Sequence[bytes], timestamp: str, body: bytes
) -> bool:
    # Every combination is compared (no early exit) so timing does not reveal which matched.
    matched = False
    for candidate in secrets:
        expected = _digest(bytes(candidate), timestamp, body)
        for digest in offered:
            matched |= hmac.compare_digest(expected, digest)
    return matched


def _offered_digests(value: str) -> list[str]:
    # A sender rotating secrets may send several "v1=" entries separated by commas;
    # entries of other schemes are ignored so a future scheme can be added alongside.
    digests: list[str] = []
    for entry in value.split(","):
        scheme, separator, digest = entry.strip().partition("=")
        if separator and scheme == SCHEME and _is_sha256_hex(digest):
            digests.append(digest.lower())
    if not digests:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} has no {SCHEME}= entry")
    return digests


def _is_sha256_hex(value: str) -> bool:
    # compare_digest refuses non-ASCII text, and anything else could never match anyway.
    return len(value) == _SHA256_HEX_LENGTH and all(c in _HEX_DIGITS for c in value)


def _header(headers: Mapping[str, str], name: str) -> str:
    # HTTP header names are case-insensitive; a plain dict from a test or another
    # framework may carry any casing.
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if value is None or not value.strip():
        raise SignatureInvalid(f"{name} header is missing")
    return value.strip()


def _unix_seconds(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise NaiveDatetime("signing needs a timezone-aware datetime")
    return int(moment.timestamp())
