"""Entity models: BC's odd encodings normalised, payloads written exactly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.adapters.erp.jsonio import decode_json, encode_json
from shared.adapters.erp.models import (
    Customer,
    ItemContent,
    SalesOrder,
    SalesOrderCreate,
    SalesOrderLineCreate,
)


def customer(**fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": "0b2c7e7a-1111-4c1e-9f3d-0c5e8a6b1d20",
        "number": "C00001",
        "lastModifiedDateTime": "2025-01-01T10:00:00.000Z",
    }
    row.update(fields)
    return row


@pytest.mark.parametrize(("raw", "blocked"), [("_x0020_", " "), ("", " "), ("Ship", "Ship")])
def test_customer_blocked_blank_forms_become_a_space(raw: str, blocked: str) -> None:
    assert Customer.model_validate(customer(blocked=raw)).blocked == blocked


def test_unknown_blocked_value_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Customer.model_validate(customer(blocked="Sometimes"))


def test_empty_guid_and_extra_fields() -> None:
    parsed = Customer.model_validate(
        customer(paymentTermsId="00000000-0000-0000-0000-000000000000", newBcField=1)
    )
    assert parsed.payment_terms_id is None


def test_datetime_offsets_are_converted_to_utc() -> None:
    parsed = Customer.model_validate(customer(lastModifiedDateTime="2025-01-01T12:30:00+02:00"))
    assert parsed.last_modified_date_time == datetime(2025, 1, 1, 10, 30, tzinfo=UTC)


def test_sales_order_keeps_its_etag_and_blank_dates() -> None:
    order = SalesOrder.model_validate(
        {
            "@odata.etag": 'W/"JzE5OzEyOzAwOyc="',
            "id": "5b8f0c1e-0000-4000-8000-000000000001",
            "number": "S-ORD101001",
            "customerNumber": "C1",
            "requestedDeliveryDate": "0001-01-01",
            "totalAmountIncludingTax": 12.5,
        }
    )
    assert order.etag == 'W/"JzE5OzEyOzAwOyc="'
    assert order.requested_delivery_date is None


def test_item_content_accepts_odd_media_entries() -> None:
    content = ItemContent.model_validate(
        {
            "itemNumber": "A",
            "attributes": [{"name": "", "value": "orphan"}],
            "media": [
                {"id": "m1", "url": "not a url", "mimeType": "image/jpeg"},
                "https://x/y.jpg",
            ],
        }
    )
    assert content.media[0].url == "not a url"
    assert content.media[1].url == "https://x/y.jpg"
    assert content.attributes[0].name == ""


def test_order_payload_needs_lines_and_a_positive_quantity() -> None:
    with pytest.raises(ValidationError):
        SalesOrderCreate(customer_number="C", external_document_number="X", sales_order_lines=[])
    with pytest.raises(ValidationError):
        SalesOrderLineCreate(line_object_number="A", quantity=Decimal(0))
    with pytest.raises(ValidationError):
        SalesOrderCreate(
            customer_number="C",
            external_document_number="X" * 36,
            sales_order_lines=[SalesOrderLineCreate(line_object_number="A", quantity=Decimal(1))],
        )


def test_encoder_writes_decimals_as_exact_numbers_and_refuses_floats() -> None:
    body = {"a": Decimal("0.10"), "b": [Decimal("123456789012345678.000001")], "c": "ü"}
    encoded = encode_json(body)
    assert encoded == '{"a":0.10,"b":[123456789012345678.000001],"c":"ü"}'.encode()
    assert decode_json(encoded) == body
    with pytest.raises(TypeError, match="Decimal"):
        encode_json({"x": 0.1})


@pytest.mark.parametrize(
    ("model", "field", "wire", "meant"),
    [
        ("Item", "type", "Non_x002D_Inventory", "Non-Inventory"),
        ("SalesOrder", "status", "In_x0020_Review", "In Review"),
        ("PriceListLine", "source_type", "All_x0020_Customers", "All Customers"),
        ("Item", "type", "Non-Inventory", "Non-Inventory"),  # the plain form is accepted too
    ],
)
def test_enum_members_escaped_by_bc_are_read_as_meant(
    model: str, field: str, wire: str, meant: str
) -> None:
    from shared.adapters.erp import models

    rows: dict[str, dict[str, object]] = {
        "Item": {"id": str(uuid.uuid4()), "number": "I", "unitPrice": 1, "type": wire},
        "SalesOrder": {"id": str(uuid.uuid4()), "number": "S", "customerNumber": "C",
                       "status": wire},
        "PriceListLine": {"priceListCode": "P", "sourceType": wire, "assetType": "Item",
                          "assetNo": "I"},
    }  # fmt: skip
    stamp = {"lastModifiedDateTime": "2026-01-31T09:15:02.123Z"}
    parsed = getattr(models, model).model_validate({**rows[model], **stamp})
    assert getattr(parsed, field) == meant
