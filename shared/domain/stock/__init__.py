"""Stock available-to-sell: the inventory event fold per (sku, location), pure and exact.

Pure domain code: no I/O. How the layers above use it:

1. The `inventory-events` handler calls `parse_inventory_event` on each message; an
   `InvalidInventoryEvent` is dead-lettered at once with its `dead_letter_reason` and
   `dead_letter_description`.
2. Valid events are grouped by `event.key`; for each key the service loads the stored
   position (`position_from_record`, or `StockPosition.new`) with its ETag and calls
   `apply_events`. It writes `position_to_record(result.new_position)` conditional on the
   ETag (with dedup markers for `result.consumed_event_ids` in the same transaction when
   kept, see `FoldResult`); on 412 it reloads and folds again (the fold is pure, so the
   retry is exact).
3. `detect_crossing` on `result.available_before/after` (and on channel totals) gives the
   alerts to publish.
4. A sweep calls `apply_events(position, (), now, hold_timeout)` for positions past
   `gap_deadline`, and the reconciliation timer calls `reconcile` / `apply_correction`.
5. Order intake calls `reserve` / `release`; booking calls `hand_over` once the ERP has the
   order; availability answers use `available_to_sell`,
   `channel_availability` and `ChannelAllocations`.
"""

from .availability import (
    ChannelAllocation,
    ChannelAllocations,
    LocationAvailability,
    SkuAvailability,
    available_to_sell,
    channel_availability,
)
from .errors import (
    InsufficientStock,
    InvalidEventReason,
    InvalidInventoryEvent,
    InvalidStockInput,
    PositionMismatch,
    ReservationConflict,
    StaleCorrection,
    StockError,
    UnknownChannel,
)
from .events import InventoryEvent, InventoryEventKind, parse_inventory_event
from .fold import (
    DEFAULT_FOLD_POLICY,
    FoldPolicy,
    FoldResult,
    GapReason,
    SequenceGap,
    apply_events,
)
from .position import BookedDemand, ConsumedEvent, HeldEvent, StockPosition, set_safety_stock
from .reconcile import (
    ErpStockFigures,
    ReconcileOutcome,
    Reconciliation,
    StockCorrection,
    apply_correction,
    reconcile,
)
from .records import position_from_record, position_to_record
from .reservations import ReservationChange, hand_over, release, reserve
from .sequences import SequenceRange
from .thresholds import (
    AlertScope,
    CrossingDirection,
    StockLevel,
    StockThresholds,
    Threshold,
    ThresholdCrossing,
    detect_crossing,
)

__all__ = [
    "DEFAULT_FOLD_POLICY",
    "AlertScope",
    "BookedDemand",
    "ChannelAllocation",
    "ChannelAllocations",
    "ConsumedEvent",
    "CrossingDirection",
    "ErpStockFigures",
    "FoldPolicy",
    "FoldResult",
    "GapReason",
    "HeldEvent",
    "InsufficientStock",
    "InvalidEventReason",
    "InvalidInventoryEvent",
    "InvalidStockInput",
    "InventoryEvent",
    "InventoryEventKind",
    "LocationAvailability",
    "PositionMismatch",
    "ReconcileOutcome",
    "Reconciliation",
    "ReservationChange",
    "ReservationConflict",
    "SequenceGap",
    "SequenceRange",
    "SkuAvailability",
    "StaleCorrection",
    "StockCorrection",
    "StockError",
    "StockLevel",
    "StockPosition",
    "StockThresholds",
    "Threshold",
    "ThresholdCrossing",
    "UnknownChannel",
    "apply_correction",
    "apply_events",
    "available_to_sell",
    "channel_availability",
    "detect_crossing",
    "hand_over",
    "parse_inventory_event",
    "position_from_record",
    "position_to_record",
    "reconcile",
    "release",
    "reserve",
    "set_safety_stock",
]
