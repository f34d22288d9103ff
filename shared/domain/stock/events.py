"""The `inventory-events` message contract and its validation.

A message is validated once, at the edge, into an `InventoryEvent`; anything that fails is
permanent (no retry can fix it) and raises `InvalidInventoryEvent` with the reason the
Service Bus handler dead-letters it with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from .errors import InvalidEventReason, InvalidInventoryEvent

# Business Central stores quantities with at most 5 decimals (Quantity precision 0:5); more
# digits mean a producer bug, and the bound on magnitude keeps sums exact and storable.
QUANTITY_DECIMAL_PLACES = 5
QUANTITY_LIMIT = Decimal(10) ** 12
# Table storage stores integers as Int64.
SEQUENCE_MAX = 2**63 - 1

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _printable_identifier(value: str) -> str:
    # Refuse rather than trim: silently trimming would merge "A " with "A".
    if value != value.strip() or _CONTROL_CHARACTERS.search(value):
        raise PydanticCustomError(
            "identifier", "must not have surrounding blanks or control characters"
        )
    return value


EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]  # Service Bus MessageId
Sku = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_printable_identifier)
]
LocationCode = Annotated[
    str, StringConstraints(min_length=1, max_length=50), AfterValidator(_printable_identifier)
]
SourceName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_printable_identifier)
]
Quantity = Annotated[
    Decimal,
    Field(
        allow_inf_nan=False,
        decimal_places=QUANTITY_DECIMAL_PLACES,
        ge=-QUANTITY_LIMIT,
        le=QUANTITY_LIMIT,
    ),
]


class InventoryEventKind(StrEnum):
    """What an event does to the projection.

    `counted` sets on hand (absolute); `adjusted` adds a delta to on hand; `reserved` and
    `released` add to / take from the ERP-reserved quantity.
    """

    ADJUSTED = "adjusted"
    COUNTED = "counted"
    RESERVED = "reserved"
    RELEASED = "released"


class InventoryEvent(BaseModel):
    """One stock change for one (sku, location), as the ERP/WMS publishes it.

    `sequence` increases per (sku, location) at the source, which is what lets the fold put
    out-of-order deliveries back in order and recognise redeliveries.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",  # adding fields to a contract is allowed; producers may be ahead of us
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    event_id: EventId = Field(alias="eventId")
    sku: Sku
    location: LocationCode
    kind: InventoryEventKind
    quantity: Quantity
    sequence: int = Field(ge=1, le=SEQUENCE_MAX, strict=True)
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    source: SourceName

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        # One clock for every comparison the fold and reconciliation make.
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _quantity_fits_kind(self) -> Self:
        if self.kind is InventoryEventKind.COUNTED and self.quantity < 0:
            raise PydanticCustomError(
                "negative_count",
                "a counted quantity must not be negative, got {quantity}",
                {"quantity": str(self.quantity)},
            )
        if self.kind in _RESERVATION_KINDS and self.quantity <= 0:
            raise PydanticCustomError(
                "non_positive_reservation",
                "a {kind} quantity must be greater than zero, got {quantity}",
                {"kind": str(self.kind), "quantity": str(self.quantity)},
            )
        return self

    @property
    def key(self) -> tuple[str, str]:
        """The (sku, location) projection this event belongs to."""
        return (self.sku, self.location)

    def to_message(self) -> dict[str, Any]:
        """The JSON-ready message body (quantity as a decimal string, time in ISO 8601 UTC)."""
        return self.model_dump(mode="json", by_alias=True)


_RESERVATION_KINDS = frozenset({InventoryEventKind.RESERVED, InventoryEventKind.RELEASED})


def parse_inventory_event(body: bytes | str | Mapping[str, Any]) -> InventoryEvent:
    """Validate one `inventory-events` message body.

    Raises `InvalidInventoryEvent` with the dead-letter reason: the body is not a JSON object
    (`unparseable`), names an unknown kind, counts a negative quantity, reserves or releases
    nothing, or has any other field missing or malformed (`invalid-field`).
    """
    try:
        if isinstance(body, bytes | str):
            return InventoryEvent.model_validate_json(body, by_alias=True)
        return InventoryEvent.model_validate(dict(body), by_alias=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise InvalidInventoryEvent(_reason_for(errors), _describe(errors)) from exc


# pydantic error types meaning the body is not a JSON object at all.
_NOT_AN_OBJECT = frozenset({"json_invalid", "json_type", "model_type", "model_attributes_type"})


def _reason_for(errors: list[ErrorDetails]) -> InvalidEventReason:
    types = {(error["type"], tuple(error["loc"])) for error in errors}
    if any(kind in _NOT_AN_OBJECT for kind, _ in types):
        return InvalidEventReason.UNPARSEABLE
    if ("enum", ("kind",)) in types:
        return InvalidEventReason.UNKNOWN_KIND
    if any(kind == "negative_count" for kind, _ in types):
        return InvalidEventReason.NEGATIVE_COUNT
    if any(kind == "non_positive_reservation" for kind, _ in types):
        return InvalidEventReason.NON_POSITIVE_RESERVATION
    return InvalidEventReason.INVALID_FIELD


def _describe(errors: list[ErrorDetails]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error["loc"]) or "message"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
