from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.table_keys import InvalidKey, decode_key, encode_key

FORBIDDEN = set("/\\#?") | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("AB/12#3", "AB%2F12%233"),
        ("plain-SKU_1.0", "plain-SKU_1.0"),
        ("100%", "100%25"),
        ("a\\b?c", "a%5Cb%3Fc"),
        ("Größe/XL", "Größe%2FXL"),
    ],
)
def test_known_encodings(raw: str, encoded: str) -> None:
    assert encode_key(raw) == encoded
    assert decode_key(encoded) == raw


@given(st.text(min_size=1, max_size=200))
def test_any_identifier_round_trips_without_forbidden_characters(value: str) -> None:
    encoded = encode_key(value)
    assert not FORBIDDEN & set(encoded)
    assert decode_key(encoded) == value


def test_empty_and_oversized_keys_are_refused() -> None:
    with pytest.raises(InvalidKey):
        encode_key("")
    with pytest.raises(InvalidKey):
        encode_key("/" * 400)  # 1,200 characters once encoded
