"""The stored form of a position: a JSON-ready dict, validated again when read back.

The storage layer keeps this in the position's table entity next to a few queryable
columns. Size: a quiet position serialises to about 3 KB; a full hold buffer (1,000 events)
to about 270 KB, beyond Table storage's 64 KiB per string property (the entity limit is
1 MiB), so the JSON is split across several properties or `FoldPolicy.max_held` is lowered
(about 200 held events fit one property). Stored state is outside data on the way back in,
so it is validated like a message; a version field lets the shape evolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidStockInput
from .events import InventoryEvent
from .position import BookedDemand, ConsumedEvent, HeldEvent, StockPosition
from .sequences import SequenceRange

RECORD_VERSION = 1


class _HeldRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event: InventoryEvent
    held_at: AwareDatetime = Field(alias="heldAt")


class _BookedRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    quantity: Decimal = Field(allow_inf_nan=False, gt=0)
    booked_at: AwareDatetime = Field(alias="bookedAt")


class _PositionRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)

    version: Literal[1] = Field(alias="v")
    sku: str
    location: str
    on_hand: Decimal = Field(alias="onHand", allow_inf_nan=False)
    erp_reserved: Decimal = Field(alias="erpReserved", allow_inf_nan=False)
    safety_stock: Decimal = Field(alias="safetyStock", allow_inf_nan=False)
    reservations: dict[str, Decimal]
    # Added after version 1 shipped: absent in older records, which had no demand figures.
    erp_demand: Decimal = Field(Decimal(0), alias="erpDemand", allow_inf_nan=False)
    expected: Decimal = Field(Decimal(0), allow_inf_nan=False)
    booked: dict[str, _BookedRecord] = Field(default_factory=dict)
    demand_as_of: AwareDatetime | None = Field(None, alias="demandAsOf")
    last_sequence: int = Field(alias="lastSequence", ge=0)
    last_counted_sequence: int = Field(alias="lastCountedSequence", ge=0)
    last_event_at: AwareDatetime | None = Field(alias="lastEventAt")
    recent_events: list[tuple[int, str]] = Field(alias="recentEvents")
    held: list[_HeldRecord]
    missing: list[tuple[int, int]]
    reconciled_as_of: AwareDatetime | None = Field(alias="reconciledAsOf")


def position_to_record(position: StockPosition) -> dict[str, Any]:
    """The position as a JSON-ready dict (decimal strings, ISO 8601 UTC times)."""
    return {
        "v": RECORD_VERSION,
        "sku": position.sku,
        "location": position.location,
        "onHand": str(position.on_hand),
        "erpReserved": str(position.erp_reserved),
        "safetyStock": str(position.safety_stock),
        "reservations": {order: str(qty) for order, qty in position.reservations.items()},
        "erpDemand": str(position.erp_demand),
        "expected": str(position.expected),
        "booked": {
            order: {"quantity": str(entry.quantity), "bookedAt": _iso(entry.booked_at)}
            for order, entry in position.booked.items()
        },
        "demandAsOf": _iso(position.demand_as_of),
        "lastSequence": position.last_sequence,
        "lastCountedSequence": position.last_counted_sequence,
        "lastEventAt": _iso(position.last_event_at),
        "recentEvents": [[seen.sequence, seen.event_id] for seen in position.recent_events],
        "held": [
            {"event": held.event.to_message(), "heldAt": _iso(held.held_at)}
            for held in position.held
        ],
        "missing": [[gap.first, gap.last] for gap in position.missing],
        "reconciledAsOf": _iso(position.reconciled_as_of),
    }


def position_from_record(record: Mapping[str, Any] | str | bytes) -> StockPosition:
    """Rebuild a stored position; raise `InvalidStockInput` if the record is corrupt."""
    try:
        if isinstance(record, str | bytes):
            parsed = _PositionRecord.model_validate_json(record, by_alias=True)
        else:
            parsed = _PositionRecord.model_validate(dict(record), by_alias=True)
        return StockPosition(
            sku=parsed.sku,
            location=parsed.location,
            on_hand=parsed.on_hand,
            erp_reserved=parsed.erp_reserved,
            safety_stock=parsed.safety_stock,
            reservations=parsed.reservations,
            erp_demand=parsed.erp_demand,
            expected=parsed.expected,
            booked={
                order: BookedDemand(entry.quantity, entry.booked_at)
                for order, entry in parsed.booked.items()
            },
            demand_as_of=parsed.demand_as_of,
            last_sequence=parsed.last_sequence,
            last_counted_sequence=parsed.last_counted_sequence,
            last_event_at=parsed.last_event_at,
            recent_events=tuple(
                ConsumedEvent(sequence, event_id) for sequence, event_id in parsed.recent_events
            ),
            held=tuple(HeldEvent(held.event, held.held_at) for held in parsed.held),
            missing=tuple(SequenceRange(first, last) for first, last in parsed.missing),
            reconciled_as_of=parsed.reconciled_as_of,
        )
    except (ValidationError, InvalidStockInput) as exc:
        raise InvalidStockInput(f"stored stock position is invalid: {exc}") from exc


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
