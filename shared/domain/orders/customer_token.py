"""The signed customer token: how a storefront proves which ERP customer its signed-in user is.

The storefront authenticates its own user; this product never sees that login. For the B2B
history routes the storefront sends, next to its function key, the header
``x-customer-token: v1.{channel}.{customer}.{expires}.{signature}``:

- ``channel``: the storefront channel (``CHANNELS``), whose shared secret (``CHANNEL_SECRETS``,
  the same secret that signs catalog webhooks) keys the signature;
- ``customer``: the ERP customer number, base64url without padding (numbers may hold dots);
- ``expires``: Unix seconds; at most `MAX_LIFETIME_SECONDS` ahead (short-lived, minted per
  session or per request);
- ``signature``: lowercase hex HMAC-SHA256 over ``"v1\\n{channel}\\n{customer}\\n{expires}"``
  (the customer number as plain text).

Pure: no clock and no settings; the caller hands in the time and the secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

VERSION = "v1"
MAX_LIFETIME_SECONDS = 3600
MAX_TOKEN_LENGTH = 512


class InvalidCustomerToken(ValueError):
    """The token is missing, malformed, expired, or not signed by a known channel."""


@dataclass(frozen=True)
class CustomerProof:
    channel: str
    customer_id: str
    expires: int


def _message(channel: str, customer_id: str, expires: int) -> bytes:
    return f"{VERSION}\n{channel}\n{customer_id}\n{expires}".encode()


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def sign(secret: bytes, channel: str, customer_id: str, expires: int) -> str:
    """The token a storefront of `channel` sends for `customer_id` until `expires`."""
    signature = hmac.new(secret, _message(channel, customer_id, expires), hashlib.sha256)
    return ".".join([VERSION, channel, _b64(customer_id), str(expires), signature.hexdigest()])


def verify(token: str | None, secrets: Mapping[str, bytes], now: int) -> CustomerProof:
    """The customer the token proves, or ``InvalidCustomerToken`` saying why not.

    The signature is compared in constant time, and only after the channel is known, so a
    forged token learns nothing but "invalid".
    """
    if not token:
        raise InvalidCustomerToken("no x-customer-token header")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidCustomerToken("token too long")
    parts = token.strip().split(".")
    if len(parts) != 5 or parts[0] != VERSION:
        raise InvalidCustomerToken("not a v1 customer token")
    _, channel, encoded, expires_text, signature = parts
    secret = secrets.get(channel)
    if secret is None:
        raise InvalidCustomerToken("unknown channel")
    try:
        customer_id = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
        expires = int(expires_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCustomerToken("malformed token") from None
    if not customer_id or not customer_id.isprintable():
        raise InvalidCustomerToken("malformed customer")
    expected = hmac.new(secret, _message(channel, customer_id, expires), hashlib.sha256)
    # Bytes, not str: compare_digest refuses non-ASCII text, and a header may carry any.
    if not hmac.compare_digest(expected.hexdigest().encode(), signature.lower().encode()):
        raise InvalidCustomerToken("bad signature")
    if expires <= now:
        raise InvalidCustomerToken("token expired")
    if expires - now > MAX_LIFETIME_SECONDS:
        raise InvalidCustomerToken(f"token lives longer than {MAX_LIFETIME_SECONDS} s")
    return CustomerProof(channel, customer_id, expires)
