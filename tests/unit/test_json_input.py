"""The one JSON reader at every edge: hostile documents are refused with a named reason."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.json_input import DEFAULT_LIMITS, JsonLimits, JsonRejected, read_json


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"[" * 100_000, "too-deep"),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "too-deep"),
        (b"[" * 33 + b"]" * 33, "too-deep"),
        (b'{"sku": "A", "sku": "B"}', "duplicate-key"),
        (b'"\xff\xfe"', "invalid-utf8"),
        (b'"\\ud800"', "invalid-unicode"),
        (b'{"\\udfff": 1}', "invalid-unicode"),
        (b"1" + b"0" * 40, "number-too-long"),
        (b"0." + b"1" * 40, "number-too-long"),
        (b"1" + b"0" * 5_000, "invalid-json"),
        (b"NaN", "invalid-json"),
        (b"[1, Infinity]", "invalid-json"),
        (b"{", "invalid-json"),
        (b"x" * (DEFAULT_LIMITS.max_bytes + 1), "too-large"),
    ],
)
def test_hostile_documents_are_refused_with_their_reason(document: bytes, reason: str) -> None:
    with pytest.raises(JsonRejected) as refused:
        read_json(document)
    assert refused.value.reason == reason


def test_numbers_are_exact_and_limits_are_inclusive() -> None:
    assert read_json(b'{"p": 12.50, "q": 3}') == {"p": Decimal("12.50"), "q": 3}
    assert read_json(b"[" * 32 + b"]" * 32) is not None
    assert read_json(b"9" * 40) == int("9" * 40)
    odd = "\u200f\u0301\u0000 right-to-left, combining, NUL"
    assert read_json(json.dumps(odd)) == odd


def test_strings_may_hold_brackets_without_counting_as_depth() -> None:
    text = json.dumps({"note": "[" * 1000})
    assert read_json(text) == {"note": "[" * 1000}


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=30,
    )
)
def test_any_plain_document_within_the_limits_reads_back_as_written(value: object) -> None:
    text = json.dumps(value)
    try:
        assert read_json(text.encode("utf-8", "surrogatepass"), JsonLimits(max_depth=64)) == value
    except JsonRejected as refused:
        # Only what the reader exists to refuse: lone surrogates hypothesis generates.
        assert refused.reason == "invalid-unicode"
