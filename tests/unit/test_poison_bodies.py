"""Bodies no retry can fix are rejected with a reason, never raised as an exception.

An exception would make the host abandon the message (and its whole batch) until
MaxDeliveryCount; these must be dead-lettered at once instead.
"""

from __future__ import annotations

import pytest

from functions.messages import Rejected, parse_message
from shared.services.inventory.messages import InvalidInventoryEvent, parse_inventory_message
from shared.services.operations.selftest import ProbeMessage
from tests.received import received_message

DEEP = [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 5_000 + b"]" * 5_000]


@pytest.mark.parametrize("body", DEEP, ids=["arrays", "objects", "balanced"])
def test_deeply_nested_json_is_an_unparseable_inventory_event(body: bytes) -> None:
    with pytest.raises(InvalidInventoryEvent) as raised:
        parse_inventory_message(body)
    assert raised.value.dead_letter_reason == "unparseable"


@pytest.mark.parametrize("body", DEEP, ids=["arrays", "objects", "balanced"])
def test_deeply_nested_json_is_rejected_by_every_other_trigger(body: bytes) -> None:
    with pytest.raises(Rejected) as raised:
        parse_message(received_message(body), ProbeMessage)
    assert raised.value.reason in {"InvalidJson", "InvalidMessage"}
    assert raised.value.description
