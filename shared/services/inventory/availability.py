"""Available to sell per item for a storefront channel, answered from the stock projection.

No ERP call on this path: the projection is kept current by inventory events (seconds) and
healed by reconciliation (hourly). An item/location no event, notification or reconciliation
has touched yet has no position: it is answered as available 0 with no locations (and
``asOf`` null), never by a live ERP read; reconciliation seeds every ERP row into the
projection on its first run, so this only happens for items the ERP itself has no stock row for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from shared.adapters.ports import TableStorage
from shared.adapters.stores.stock import positions_of
from shared.domain.stock import (
    ChannelAllocation,
    StockPosition,
    UnknownChannel,
    channel_availability,
    set_safety_stock,
)
from shared.services.errors import Rejected
from shared.services.http_contract import DecimalString, Timestamp, WireModel
from shared.services.inventory.policy import StockPolicy

_LOOKUP_CONCURRENCY = 16
_MAX_SKU_LENGTH = 100
MAX_SKUS_CAP = 1000


class AvailabilityQuery(BaseModel):
    """``?skus=A,B&channel=web``: SKUs comma-separated (URL-encoded), channel optional."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # The hard cap is the setting's upper bound; AVAILABILITY_MAX_SKUS (resolve) is the real one.
    skus: list[Annotated[str, Field(min_length=1, max_length=_MAX_SKU_LENGTH)]] = Field(
        min_length=1,
        max_length=MAX_SKUS_CAP,
        description="Comma-separated SKUs; at most AVAILABILITY_MAX_SKUS (default 100).",
    )
    channel: str | None = Field(None, max_length=40, description="A storefront channel name.")

    @field_validator("skus", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        parts = [part.strip() for part in value.split(",")]
        if not any(parts):
            raise PydanticCustomError("missing_skus", "give at least one SKU")
        if any(not part for part in parts):
            raise PydanticCustomError("empty_sku", "a SKU between two commas is empty")
        if len(parts) > MAX_SKUS_CAP:
            # Counted before repeats are folded: the contract bounds what is sent.
            raise PydanticCustomError(
                "too_many_skus", "at most {cap} SKUs per request", {"cap": MAX_SKUS_CAP}
            )
        for part in parts:
            if len(part) > _MAX_SKU_LENGTH or not part.isprintable():
                raise PydanticCustomError(
                    "invalid_sku",
                    "SKU {sku!r} is longer than 100 characters or has control characters",
                    {"sku": part[:120]},
                )
        # Same SKU twice is one question; keep the caller's order.
        return list(dict.fromkeys(parts))

    @field_validator("channel", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        # `channel=` (empty) means no channel, as if the parameter were left out.
        return None if isinstance(value, str) and not value.strip() else value


class InvalidAvailabilityQuery(Rejected):
    """The query names too many SKUs or an unknown channel; ``field`` says which parameter."""

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(
            "Invalid request", detail, [{"rule": rule, "field": field, "detail": detail}]
        )
        self.field = field
        self.rule = rule


@dataclass(frozen=True)
class AvailabilityRequest:
    skus: tuple[str, ...]
    allocation: ChannelAllocation


def resolve(query: AvailabilityQuery, policy: StockPolicy, max_skus: int) -> AvailabilityRequest:
    """Apply the configured limits; raise ``InvalidAvailabilityQuery`` naming the parameter."""
    if len(query.skus) > max_skus:
        raise InvalidAvailabilityQuery(
            "skus", "too-many-skus", f"at most {max_skus} SKUs per request, got {len(query.skus)}"
        )
    if query.channel is None:
        allocation = ChannelAllocation("*", None)
    else:
        try:
            allocation = policy.channel(query.channel)
        except UnknownChannel:
            raise InvalidAvailabilityQuery(
                "channel", "unknown-channel", f"channel {query.channel!r} is not configured"
            ) from None
    return AvailabilityRequest(tuple(query.skus), allocation)


def _as_of(positions: Sequence[StockPosition]) -> datetime | None:
    moments = [
        moment
        for position in positions
        for moment in (position.last_event_at, position.reconciled_as_of)
        if moment is not None
    ]
    return max(moments, default=None)


async def _one(
    tables: TableStorage, sku: str, allocation: ChannelAllocation, policy: StockPolicy
) -> dict[str, Any]:
    stored = await positions_of(tables, sku)
    positions = [
        set_safety_stock(entry.position, policy.safety_stock)
        if entry.position.safety_stock != policy.safety_stock
        else entry.position
        for entry in stored
    ]
    answer = channel_availability(sku, positions, allocation)
    allowed = [p for p in positions if allocation.allows(p.location)]
    as_of = _as_of(allowed)
    return {
        "sku": sku,
        "available": answer.available,
        "locations": [
            {
                "location": line.location,
                "available": line.available,
                "onHand": line.on_hand,
                "erpDemand": line.erp_demand,
                "reserved": line.reserved,
                "pendingHolds": line.pending_holds,
                "safetyStock": line.safety_stock,
                "expected": line.expected,
            }
            for line in answer.locations
        ],
        "asOf": as_of.isoformat().replace("+00:00", "Z") if as_of else None,
    }


async def availability(
    tables: TableStorage, request: AvailabilityRequest, policy: StockPolicy
) -> dict[str, Any]:
    """The contract's ``{"items": [...]}`` for the request, in the order the SKUs were asked."""
    gate = asyncio.Semaphore(_LOOKUP_CONCURRENCY)

    async def guarded(sku: str) -> dict[str, Any]:
        async with gate:
            return await _one(tables, sku, request.allocation, policy)

    items = await asyncio.gather(*(guarded(sku) for sku in request.skus))
    return {"items": list(items)}


class LocationAvailability(WireModel):
    """One location: available = onHand - erpDemand - reserved - pendingHolds - safetyStock
    (+ expected where the channel sells expected receipts), never below zero."""

    location: str
    available: DecimalString
    on_hand: DecimalString
    erp_demand: DecimalString = Field(
        description="Outstanding sales-order quantity in the ERP, with orders booked here that "
        "no ERP read has shown yet."
    )
    reserved: DecimalString = Field(description="ERP reservations outside its sales-order demand.")
    pending_holds: DecimalString = Field(
        description="Held for orders accepted here and not yet booked in the ERP."
    )
    safety_stock: DecimalString
    expected: DecimalString = Field(
        description="Receipts expected from open purchase orders; counted in available only "
        "for channels the sync policy lets sell them."
    )


class ItemAvailability(WireModel):
    sku: str
    available: DecimalString
    locations: list[LocationAvailability]
    as_of: Timestamp | None = Field(description="The newest event or reconciliation behind it.")


class AvailabilityAnswer(WireModel):
    """200 of ``GET /api/availability``, items in the order the SKUs were asked."""

    items: list[ItemAvailability]
