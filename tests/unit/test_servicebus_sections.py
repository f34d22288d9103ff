"""Message sections in the order real clients write them (pyamqp puts delivery annotations last)."""

from __future__ import annotations

import pytest
from proton import Described, symbol, ulong

from devtools.servicebus.sections import (
    AMQP_VALUE,
    APPLICATION_PROPERTIES,
    DATA,
    DELIVERY_ANNOTATIONS,
    FOOTER,
    HEADER,
    PROPERTIES,
    MalformedMessage,
    encode_value,
    split_message,
)


def section(code: int, value: object) -> bytes:
    return encode_value(Described(ulong(code), value))


HEADER_BYTES = section(HEADER, [True])
PROPERTIES_BYTES = section(PROPERTIES, ["id-1"])
APP_BYTES = section(APPLICATION_PROPERTIES, {"k": "v"})
BODY_BYTES = section(DATA, b"payload")
FOOTER_BYTES = section(FOOTER, {symbol("f"): 1})
DELIVERY_BYTES = section(DELIVERY_ANNOTATIONS, {symbol("x-opt-hop"): 1})


@pytest.mark.parametrize(
    "layout",
    [
        [HEADER_BYTES, DELIVERY_BYTES, PROPERTIES_BYTES, APP_BYTES, BODY_BYTES, FOOTER_BYTES],
        [HEADER_BYTES, PROPERTIES_BYTES, APP_BYTES, BODY_BYTES, FOOTER_BYTES, DELIVERY_BYTES],
        [HEADER_BYTES, PROPERTIES_BYTES, APP_BYTES, BODY_BYTES, DELIVERY_BYTES, FOOTER_BYTES],
    ],
    ids=["spec-order", "pyamqp-order", "between-body-and-footer"],
)
def test_delivery_annotations_are_dropped_wherever_they_are(layout: list[bytes]) -> None:
    parts = split_message(b"".join(layout))
    assert parts.message_id == "id-1"
    assert parts.application_properties == {"k": "v"}
    assert parts.data_payloads == [b"payload"]
    # The body passed on is the body and footer only: the hop's annotations are gone.
    assert parts.body_raw == BODY_BYTES + FOOTER_BYTES


def test_properties_after_the_body_are_still_refused_with_a_reason() -> None:
    with pytest.raises(MalformedMessage, match="after the body"):
        split_message(BODY_BYTES + PROPERTIES_BYTES)


def test_a_value_body_is_kept() -> None:
    parts = split_message(HEADER_BYTES + section(AMQP_VALUE, "text") + DELIVERY_BYTES)
    assert parts.has_non_data_body
    assert parts.body_raw == section(AMQP_VALUE, "text")
