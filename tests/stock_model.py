"""An independent reference model of the stock fold, for property tests (not the product's).

Written from the contract, not from `shared/domain/stock/fold.py`: a deduplicated stream of
events applied in sequence order. `counted` sets on hand, `adjusted` adds to it, `reserved`
and `released` move the ERP-reserved quantity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from shared.domain.stock import InventoryEvent, InventoryEventKind


@dataclass(frozen=True)
class ModelPosition:
    on_hand: Decimal
    erp_reserved: Decimal
    last_sequence: int
    last_event_at: datetime | None


def fold_in_order(stream: list[InventoryEvent]) -> ModelPosition:
    """What one key's position must end as after every event of `stream` arrived once."""
    on_hand = Decimal(0)
    reserved = Decimal(0)
    unique = {event.event_id: event for event in stream}.values()
    ordered = sorted(unique, key=lambda event: event.sequence)
    for event in ordered:
        if event.kind is InventoryEventKind.COUNTED:
            on_hand = event.quantity
        elif event.kind is InventoryEventKind.ADJUSTED:
            on_hand += event.quantity
        elif event.kind is InventoryEventKind.RESERVED:
            reserved += event.quantity
        else:
            reserved -= event.quantity
    return ModelPosition(
        on_hand=on_hand,
        erp_reserved=reserved,
        last_sequence=max((event.sequence for event in ordered), default=0),
        last_event_at=max((event.occurred_at for event in ordered), default=None),
    )
