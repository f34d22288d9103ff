"""The catalog webhook signature: what a receiver accepts and what it refuses, and why."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.domain.content.signing import (
    CHANNEL_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NaiveDatetime,
    SignatureExpired,
    SignatureInvalid,
    sign,
    verify,
)

NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
SECRET = b"local-web-secret"
BODY = b'{"batchId":"b-1","upserts":[],"deletes":[]}'


def test_round_trip_verifies() -> None:
    headers = sign(BODY, SECRET, NOW, channel="web")
    verify(BODY, headers, SECRET, NOW)
    assert headers[CHANNEL_HEADER] == "web"


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    # The wire format is a contract with storefronts: recompute it independently.
    headers = sign(BODY, SECRET, NOW)
    timestamp = str(int(NOW.timestamp()))
    expected = hmac.new(SECRET, timestamp.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: f"v1={expected}"}


def test_timestamp_is_unix_seconds_whatever_the_offset() -> None:
    same_instant = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert sign(BODY, SECRET, same_instant) == sign(BODY, SECRET, NOW)


def test_tampered_body_is_invalid() -> None:
    headers = sign(BODY, SECRET, NOW)
    with pytest.raises(SignatureInvalid):
        verify(BODY.replace(b"b-1", b"b-2"), headers, SECRET, NOW)


def test_wrong_secret_is_invalid() -> None:
    headers = sign(BODY, b"another-secret", NOW)
    with pytest.raises(SignatureInvalid):
        verify(BODY, headers, SECRET, NOW)


def test_changed_timestamp_is_invalid_because_it_is_signed() -> None:
    headers = sign(BODY, SECRET, NOW)
    headers[TIMESTAMP_HEADER] = str(int(NOW.timestamp()) + 1)
    with pytest.raises(SignatureInvalid):
        verify(BODY, headers, SECRET, NOW)


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_missing_header_is_invalid(missing: str) -> None:
    headers = sign(BODY, SECRET, NOW)
    del headers[missing]
    with pytest.raises(SignatureInvalid, match="missing"):
        verify(BODY, headers, SECRET, NOW)


@pytest.mark.parametrize(
    "signature",
    ["", "v2=" + "0" * 64, "v1=", "v1=xyz", "v1=" + "é" * 64, "sha256=" + "a" * 64],
)
def test_malformed_signature_is_invalid(signature: str) -> None:
    headers = sign(BODY, SECRET, NOW)
    headers[SIGNATURE_HEADER] = signature
    with pytest.raises(SignatureInvalid):
        verify(BODY, headers, SECRET, NOW)


@pytest.mark.parametrize("timestamp", ["", "abc", "-5", "1.5", "١٢٣"])
def test_malformed_timestamp_is_invalid(timestamp: str) -> None:
    headers = sign(BODY, SECRET, NOW)
    headers[TIMESTAMP_HEADER] = timestamp
    with pytest.raises(SignatureInvalid):
        verify(BODY, headers, SECRET, NOW)


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in sign(BODY, SECRET, NOW).items()}
    verify(BODY, headers, SECRET, NOW)


def test_uppercase_hex_digest_is_accepted() -> None:
    headers = sign(BODY, SECRET, NOW)
    scheme, _, digest = headers[SIGNATURE_HEADER].partition("=")
    headers[SIGNATURE_HEADER] = f"{scheme}={digest.upper()}"
    verify(BODY, headers, SECRET, NOW)


def test_expired_timestamp_is_refused() -> None:
    headers = sign(BODY, SECRET, NOW - timedelta(minutes=5, seconds=1))
    with pytest.raises(SignatureExpired, match="old"):
        verify(BODY, headers, SECRET, NOW)


def test_future_timestamp_is_refused() -> None:
    headers = sign(BODY, SECRET, NOW + timedelta(minutes=5, seconds=1))
    with pytest.raises(SignatureExpired, match="future"):
        verify(BODY, headers, SECRET, NOW)


@pytest.mark.parametrize("skew", [timedelta(minutes=-5), timedelta(0), timedelta(minutes=5)])
def test_timestamps_at_the_tolerance_edge_are_accepted(skew: timedelta) -> None:
    verify(BODY, sign(BODY, SECRET, NOW + skew), SECRET, NOW)


def test_custom_tolerance_applies() -> None:
    headers = sign(BODY, SECRET, NOW - timedelta(seconds=31))
    verify(BODY, headers, SECRET, NOW, tolerance=timedelta(minutes=1))
    with pytest.raises(SignatureExpired):
        verify(BODY, headers, SECRET, NOW, tolerance=timedelta(seconds=30))


def test_forged_and_stale_is_invalid_not_expired() -> None:
    # Expired must only ever describe a genuine signature, so a forged old one says invalid.
    headers = sign(BODY, b"attacker", NOW - timedelta(hours=1))
    with pytest.raises(SignatureInvalid):
        verify(BODY, headers, SECRET, NOW)


def test_rotation_accepts_old_and_new_secret() -> None:
    old, new = b"old-secret", b"new-secret"
    accepted = [new, old]
    verify(BODY, sign(BODY, old, NOW), accepted, NOW)
    verify(BODY, sign(BODY, new, NOW), accepted, NOW)
    with pytest.raises(SignatureInvalid):
        verify(BODY, sign(BODY, b"retired-secret", NOW), accepted, NOW)


def test_sender_may_offer_several_signatures_during_rotation() -> None:
    old = sign(BODY, b"old-secret", NOW)[SIGNATURE_HEADER]
    new = sign(BODY, b"new-secret", NOW)[SIGNATURE_HEADER]
    headers = {TIMESTAMP_HEADER: str(int(NOW.timestamp())), SIGNATURE_HEADER: f"{old}, {new}"}
    verify(BODY, headers, [b"new-secret"], NOW)
    verify(BODY, headers, b"old-secret", NOW)
    with pytest.raises(SignatureInvalid):
        verify(BODY, headers, b"third-secret", NOW)


def test_verify_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one"):
        verify(BODY, sign(BODY, SECRET, NOW), [], NOW)


def test_naive_clock_is_refused() -> None:
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(NaiveDatetime):
        sign(BODY, SECRET, naive)
    with pytest.raises(NaiveDatetime):
        verify(BODY, sign(BODY, SECRET, NOW), SECRET, naive)
