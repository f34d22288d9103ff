"""The projection of one (sku, location): what the ERP/WMS says plus this product's holds.

A `StockPosition` is immutable; the fold, reservations and reconciliation each return a new
one, so the storage layer can compare, persist with an ETag and retry without surprises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from .errors import InvalidStockInput
from .events import InventoryEvent
from .quantities import ZERO, aware_utc, finite_quantity, identifier
from .sequences import Ranges


@dataclass(frozen=True, slots=True)
class HeldEvent:
    """An event that arrived before an earlier sequence; `held_at` starts its hold timeout.

    The timeout runs from arrival, not from `occurred_at`: a backlog drained hours late must
    still get its chance to be put back in order.
    """

    event: InventoryEvent
    held_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "held_at", aware_utc(self.held_at, "held_at"))


@dataclass(frozen=True, slots=True, order=True)
class ConsumedEvent:
    """The identity of an event the position has folded in, for redelivery detection."""

    sequence: int
    event_id: str


@dataclass(frozen=True, slots=True)
class BookedDemand:
    """An order this product booked in the ERP, counted as ERP demand until a read shows it.

    The pending hold of an order becomes this in the same write that releases the hold, so
    the units never come back into availability between the booking and the next ERP read.
    `booked_at` is no earlier than the ERP's commit (the time the booking was recorded after
    the ERP answered): an ERP read started after it is certain to include the order.
    """

    quantity: Decimal
    booked_at: datetime

    def __post_init__(self) -> None:
        if finite_quantity(self.quantity, "booked quantity") <= 0:
            raise InvalidStockInput("booked quantity must be positive")
        object.__setattr__(self, "booked_at", aware_utc(self.booked_at, "booked_at"))


def _empty_reservations() -> Mapping[str, Decimal]:
    return MappingProxyType({})


def _empty_booked() -> Mapping[str, BookedDemand]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StockPosition:
    """Stock of one item at one location, as this product knows it.

    - `on_hand`, `erp_reserved`: owned by the ERP/WMS, changed only by inventory events and
      ERP reads. `erp_reserved` holds the ERP's reservations that are *not* part of its
      sales-order demand (a reservation for a sales line is already inside `erp_demand`).
      It is a plain sum of deltas (it may dip below zero while a `released` overtakes its
      `reserved`); availability counts a negative value as zero.
    - `erp_demand`: the ERP's outstanding sales-order quantity (not yet shipped), as of the
      last ERP read; `expected`: open purchase-order quantity (receipts on their way).
    - `reservations`: this product's pending reservations per order id (orders accepted but
      not yet booked in the ERP); `pending_reserved` is their sum.
    - `booked`: orders this product booked whose demand no ERP read has shown yet (see
      `BookedDemand`); `demand` counts them on top of `erp_demand`.
    - `safety_stock`: never sold, from configuration or the ERP item card.
    - `last_sequence`: every sequence up to it is folded in, bridged by a count, or recorded in
      `missing`; `last_counted_sequence`: the newest `counted` event folded in.
    - `last_event_at`: the newest `occurred_at` among folded events (reconciliation compares it
      with the ERP snapshot time).
    - `recent_events`: the newest consumed events by sequence (bounded), to spot a redelivered
      event id that comes back with another sequence.
    - `held`: events waiting for an earlier sequence, sorted by sequence.
    - `missing`: sequences below `last_sequence` never seen, so a straggler is still folded in.
    - `reconciled_as_of`: ERP snapshot time of the last correction; events that occurred at or
      before it are already inside the corrected quantities.
    - `demand_as_of`: time of the ERP read that `erp_demand` comes from; an order booked
      before it is inside that figure.
    """

    sku: str
    location: str
    on_hand: Decimal = ZERO
    erp_reserved: Decimal = ZERO
    safety_stock: Decimal = ZERO
    reservations: Mapping[str, Decimal] = field(default_factory=_empty_reservations)
    erp_demand: Decimal = ZERO
    expected: Decimal = ZERO
    booked: Mapping[str, BookedDemand] = field(default_factory=_empty_booked)
    demand_as_of: datetime | None = None
    last_sequence: int = 0
    last_counted_sequence: int = 0
    last_event_at: datetime | None = None
    recent_events: tuple[ConsumedEvent, ...] = ()
    held: tuple[HeldEvent, ...] = ()
    missing: Ranges = ()
    reconciled_as_of: datetime | None = None

    def __post_init__(self) -> None:
        identifier(self.sku, "sku")
        identifier(self.location, "location")
        finite_quantity(self.on_hand, "on_hand")
        finite_quantity(self.erp_reserved, "erp_reserved")
        if finite_quantity(self.safety_stock, "safety_stock") < 0:
            raise InvalidStockInput("safety_stock must not be negative")
        reservations = dict(self.reservations)
        for order_id, quantity in reservations.items():
            identifier(order_id, "order id")
            if finite_quantity(quantity, "reservation") <= 0:
                raise InvalidStockInput(f"reservation of order {order_id} must be positive")
        object.__setattr__(self, "reservations", MappingProxyType(reservations))
        finite_quantity(self.erp_demand, "erp_demand")
        finite_quantity(self.expected, "expected")
        booked = dict(self.booked)
        for order_id, entry in booked.items():
            identifier(order_id, "order id")
            if not isinstance(entry, BookedDemand):
                raise InvalidStockInput(f"booked demand of order {order_id} is not BookedDemand")
        object.__setattr__(self, "booked", MappingProxyType(booked))
        self._check_sequences()
        for name in ("last_event_at", "reconciled_as_of", "demand_as_of"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, aware_utc(value, name))

    def _check_sequences(self) -> None:
        if not 0 <= self.last_counted_sequence <= self.last_sequence:
            raise InvalidStockInput("need 0 <= last_counted_sequence <= last_sequence")
        sequences = [held.event.sequence for held in self.held]
        if sequences != sorted(set(sequences)) or any(s <= self.last_sequence for s in sequences):
            raise InvalidStockInput("held events must be unique, sorted and after last_sequence")
        if any(held.event.key != self.key for held in self.held):
            raise InvalidStockInput("held events must belong to this position")
        if self.missing and self.missing[-1].last >= self.last_sequence:
            raise InvalidStockInput("missing sequences must lie below last_sequence")
        if any(a.last + 1 >= b.first for a, b in zip(self.missing, self.missing[1:], strict=False)):
            raise InvalidStockInput("missing ranges must be sorted and apart")

    @classmethod
    def new(cls, sku: str, location: str, safety_stock: Decimal = ZERO) -> StockPosition:
        """An empty position for an item and location no event has touched yet."""
        return cls(sku=sku, location=location, safety_stock=safety_stock)

    @property
    def key(self) -> tuple[str, str]:
        """(sku, location): the identity, and the storage partition of the position."""
        return (self.sku, self.location)

    @property
    def pending_reserved(self) -> Decimal:
        """Quantity held by this product's orders that the ERP has not booked yet."""
        return sum(self.reservations.values(), ZERO)

    @property
    def booked_demand(self) -> Decimal:
        """Demand of orders booked here that no ERP read has shown yet."""
        return sum((entry.quantity for entry in self.booked.values()), ZERO)

    @property
    def demand(self) -> Decimal:
        """Outstanding sales-order demand: the ERP's (never below zero) plus handed-over orders."""
        return max(self.erp_demand, ZERO) + self.booked_demand

    @property
    def reserved(self) -> Decimal:
        """ERP reservations outside the sales-order demand, never below zero."""
        return max(self.erp_reserved, ZERO)

    @property
    def committed(self) -> Decimal:
        """Everything promised away: demand, other ERP reservations, this product's holds."""
        return self.demand + self.reserved + self.pending_reserved

    @property
    def known_event_ids(self) -> frozenset[str]:
        """Event ids a redelivery would repeat: recently consumed and currently held."""
        return frozenset(
            [consumed.event_id for consumed in self.recent_events]
            + [held.event.event_id for held in self.held]
        )

    @property
    def oldest_held_at(self) -> datetime | None:
        """When the longest-waiting held event arrived (None when nothing is held)."""
        return min((held.held_at for held in self.held), default=None)

    def gap_deadline(self, hold_timeout: timedelta) -> datetime | None:
        """When a sweep must fold this position again so held events stop waiting.

        Held events only move when the fold runs; if no further event for this position
        arrives, a periodic sweep calls `apply_events(position, (), now, hold_timeout)` for
        positions whose deadline has passed.
        """
        oldest = self.oldest_held_at
        return None if oldest is None else oldest + hold_timeout


def set_safety_stock(position: StockPosition, quantity: Decimal) -> StockPosition:
    """The position with a new safety stock (configuration or the ERP item card changed)."""
    return replace(position, safety_stock=quantity)
