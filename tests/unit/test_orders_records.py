"""Order rows, idempotency hashes, message ids and the ERP payload: shapes that must not drift."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from shared.adapters.erp.models import Location
from shared.adapters.stores.idempotency_keys import request_hash
from shared.adapters.stores.order_rows import (
    OrderRowTooLarge,
    order_entity,
    order_from_entity,
    pack_json,
    unpack_json,
)
from shared.domain.orders import (
    BookingClaim,
    LineAllocation,
    Order,
    OrderLine,
    OrderRule,
    OrderStatus,
    OrderViolation,
    accept,
    claim_booking,
)
from shared.services.orders.erp import LocationDirectory, sales_order_payload
from shared.services.orders.messages import OrderMessage, booking_message_id, status_event

D = Decimal
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MAIN, EAST = uuid4(), uuid4()


def _order() -> Order:
    whole = OrderLine(
        0,
        "AB/12#3",
        D(2),
        "PCS",
        D(1),
        D("9.50000"),
        D(5),
        D("18.05"),
        D("9.5"),
        (LineAllocation("MAIN", D(2)),),
    )
    split = OrderLine(
        1,
        "ÜBER-GRÖSSE-1",
        D(3),
        "BOX",
        D(12),
        D("100"),
        D(0),
        D("300.00"),
        None,
        (LineAllocation("MAIN", D(2)), LineAllocation("EAST", D(1))),
    )
    return Order(
        order_id="ORD-01JD7Q0000000000000000000A",
        status=OrderStatus.PENDING,
        customer_no="C00001",
        channel="web",
        currency="USD",
        external_order_id="shop-42",
        created_at=NOW,
        updated_at=NOW,
        lines=(whole, split),
        total_amount=D("318.05"),
        credit_amount=D("318.05"),
        correlation_id="corr-1",
        ship_to={"ship_to_city": "Köln", "ship_to_name": "Ada"},
        violations=(OrderViolation(OrderRule.PRICE_MISMATCH, "x", "A", 0, {"unitPrice": "1"}),),
    )


def test_an_order_row_round_trips_every_field() -> None:
    order = claim_booking(
        accept(_order(), NOW),
        0,
        1,
        BookingClaim("tok", NOW + timedelta(minutes=3)),
        NOW,
        delivery_count=2,
    )
    order = replace(order, erp_total_amount=D("318.05"), erp_order_number="S-ORD1")
    again = order_from_entity(order_entity(order))
    assert again == order
    assert again.claim is not None and again.claim.until == NOW + timedelta(minutes=3)


def test_large_json_is_chunked_and_refused_beyond_an_entity() -> None:
    entity: dict[str, Any] = {}
    pack_json(entity, "data", ["x" * 1000] * 100)
    assert entity["dataChunks"] == 4 and unpack_json(entity, "data") == ["x" * 1000] * 100
    with pytest.raises(OrderRowTooLarge):
        pack_json({}, "data", "y" * 2_000_000)


def test_the_request_hash_ignores_layout_but_not_content() -> None:
    body = {
        "customerId": "C1",
        "lines": [{"sku": "A", "quantity": 1, "expectedUnitPrice": D("12.50")}],
    }
    reordered = {
        "lines": [{"expectedUnitPrice": D("12.5"), "quantity": 1, "sku": "A"}],
        "customerId": "C1",
    }
    assert request_hash(body) == request_hash(reordered)
    changed = {
        "customerId": "C1",
        "lines": [{"sku": "A", "quantity": 2, "expectedUnitPrice": D("12.50")}],
    }
    assert request_hash(body) != request_hash(changed)


def test_booking_message_ids_keep_the_order_id_first_and_differ_per_attempt() -> None:
    order_id = _order().order_id
    assert booking_message_id(order_id, 0, 1) == order_id
    ids = {booking_message_id(order_id, g, a) for g in range(3) for a in range(1, 4)}
    assert len(ids) == 9
    parsed = OrderMessage.model_validate({"orderId": order_id, "attempt": 2, "extra": "ignored"})
    assert (parsed.generation, parsed.attempt) == (0, 2)


def test_a_status_event_says_whether_the_erp_changed_the_price() -> None:
    booked = replace(
        _order(), status=OrderStatus.BOOKED, erp_order_number="S1", erp_total_amount=D("320.00")
    )
    event = status_event(booked, NOW)
    assert event["status"] == "booked" and event["erpOrderNumber"] == "S1"
    assert event["priceChanged"] is True and event["totalAmount"] == "318.05"


class _Erp:
    """Only what the payload needs: the location list."""

    def __init__(self) -> None:
        self.reads = 0

    async def iter_locations(self) -> AsyncIterator[Location]:
        self.reads += 1
        for code, ident in (("MAIN", MAIN), ("EAST", EAST)):
            yield Location(id=ident, code=code)


async def test_the_payload_has_one_line_per_location_and_prices_only_split_lines() -> None:
    erp = _Erp()
    directory = LocationDirectory()
    payload = await sales_order_payload(_order(), erp, directory)  # type: ignore[arg-type]
    body = payload.to_body()
    assert body["externalDocumentNumber"] == _order().order_id
    assert body["currencyCode"] == "USD" and body["shipToCity"] == "Köln"
    lines = body["salesOrderLines"]
    assert [(x["lineObjectNumber"], x["quantity"], x["unitOfMeasureCode"]) for x in lines] == [
        ("AB/12#3", D(2), "PCS"),
        ("ÜBER-GRÖSSE-1", D(2), "BOX"),
        ("ÜBER-GRÖSSE-1", D(1), "BOX"),
    ]
    # The whole line is priced by the ERP (the re-validation); split parts carry our price.
    assert "unitPrice" not in lines[0] and "discountPercent" not in lines[0]
    assert lines[1]["unitPrice"] == D("100") and lines[2]["discountPercent"] == D(0)
    assert [UUID(str(x["locationId"])) for x in lines] == [MAIN, MAIN, EAST]
    await sales_order_payload(_order(), erp, directory)  # type: ignore[arg-type]
    assert erp.reads == 1  # the directory is read once per process
