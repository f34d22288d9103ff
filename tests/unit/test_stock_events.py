"""Validation of `inventory-events` messages and the dead-letter reasons they produce."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.stock import (
    InvalidEventReason,
    InvalidInventoryEvent,
    InventoryEventKind,
    parse_inventory_event,
)


def message(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventId": "3f1c-01",
        "sku": "1896-S",
        "location": "MAIN",
        "kind": "adjusted",
        "quantity": "-2.5",
        "sequence": 17,
        "occurredAt": "2024-05-01T14:00:00+02:00",
        "source": "wms",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not ...}


def reason_of(body: object) -> InvalidEventReason:
    with pytest.raises(InvalidInventoryEvent) as caught:
        parse_inventory_event(body)  # type: ignore[arg-type]
    return caught.value.reason


class TestValidMessages:
    def test_json_text_bytes_and_mapping_parse_alike(self) -> None:
        body = message()
        parsed = {
            parse_inventory_event(json.dumps(body)),
            parse_inventory_event(json.dumps(body).encode()),
            parse_inventory_event(body),
        }
        assert len(parsed) == 1
        event = parsed.pop()
        assert event.event_id == "3f1c-01"
        assert event.kind is InventoryEventKind.ADJUSTED
        assert event.quantity == Decimal("-2.5")
        assert event.sequence == 17
        assert event.key == ("1896-S", "MAIN")

    def test_time_is_normalised_to_utc(self) -> None:
        event = parse_inventory_event(message())
        assert event.occurred_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        assert event.occurred_at.utcoffset() is not None
        assert event.occurred_at.tzinfo is UTC

    def test_json_number_quantity_is_read_exactly(self) -> None:
        event = parse_inventory_event(
            '{"eventId":"a","sku":"S","location":"L","kind":'
            '"adjusted","quantity":0.1,"sequence":1,'
            '"occurredAt":"2024-05-01T00:00:00Z","source":"erp"}'
        )
        assert event.quantity == Decimal("0.1")

    def test_unknown_extra_fields_are_ignored(self) -> None:
        event = parse_inventory_event(message(batchNo="B-17", lot={"a": 1}))
        assert event.sequence == 17

    def test_zero_count_is_allowed(self) -> None:
        assert parse_inventory_event(message(kind="counted", quantity="0")).quantity == 0

    def test_negative_adjustment_is_allowed(self) -> None:
        assert parse_inventory_event(message(quantity="-40")).quantity == -40

    def test_round_trip_through_the_message_form(self) -> None:
        event = parse_inventory_event(message())
        body = event.to_message()
        assert body["quantity"] == "-2.5"
        assert body["occurredAt"] == "2024-05-01T12:00:00Z"
        assert parse_inventory_event(json.dumps(body)) == event


class TestDeadLetterReasons:
    @pytest.mark.parametrize("body", [b"\xff\xfe", "{", "[]", "null", '"text"', "42"])
    def test_not_a_json_object_is_unparseable(self, body: str | bytes) -> None:
        assert reason_of(body) is InvalidEventReason.UNPARSEABLE

    @pytest.mark.parametrize("kind", ["moved", "COUNTED", "", None, 3])
    def test_unknown_kind(self, kind: object) -> None:
        assert reason_of(message(kind=kind)) is InvalidEventReason.UNKNOWN_KIND

    def test_negative_count(self) -> None:
        body = message(kind="counted", quantity="-1")
        assert reason_of(body) is InvalidEventReason.NEGATIVE_COUNT

    @pytest.mark.parametrize("kind", ["reserved", "released"])
    @pytest.mark.parametrize("quantity", ["0", "-3"])
    def test_reservation_must_move_something(self, kind: str, quantity: str) -> None:
        body = message(kind=kind, quantity=quantity)
        assert reason_of(body) is InvalidEventReason.NON_POSITIVE_RESERVATION

    @pytest.mark.parametrize(
        "changes",
        [
            {"eventId": ...},
            {"eventId": ""},
            {"eventId": "x" * 129},
            {"sku": ""},
            {"sku": " 1896-S"},
            {"sku": "18\n96"},
            {"sku": "S" * 101},
            {"location": ...},
            {"location": "L" * 51},
            {"quantity": "NaN"},
            {"quantity": "Infinity"},
            {"quantity": "1.123456"},
            {"quantity": "1e13"},
            {"quantity": "lots"},
            {"sequence": 0},
            {"sequence": -1},
            {"sequence": "17"},
            {"sequence": 1.5},
            {"sequence": True},
            {"sequence": 2**63},
            {"occurredAt": "2024-05-01T12:00:00"},
            {"occurredAt": "yesterday"},
            {"source": ...},
            {"source": ""},
        ],
    )
    def test_malformed_field(self, changes: dict[str, Any]) -> None:
        assert reason_of(message(**changes)) is InvalidEventReason.INVALID_FIELD

    def test_description_names_every_bad_field(self) -> None:
        with pytest.raises(InvalidInventoryEvent) as caught:
            parse_inventory_event(message(sku="", sequence=0))
        error = caught.value
        assert error.dead_letter_reason == "invalid-field"
        assert "sku" in error.dead_letter_description
        assert "sequence" in error.dead_letter_description

    def test_description_is_bounded_for_the_broker(self) -> None:
        error = InvalidInventoryEvent(InvalidEventReason.INVALID_FIELD, "x" * 5000)
        assert len(error.dead_letter_description) == 1024

    def test_description_does_not_echo_message_content(self) -> None:
        with pytest.raises(InvalidInventoryEvent) as caught:
            parse_inventory_event(message(sku="secret-customer-note\n"))
        assert "secret-customer-note" not in caught.value.dead_letter_description
