"""This product's pending reservations: stock promised to accepted orders not yet booked.

Keyed by order id, so a retried intake or a redelivered booking message cannot reserve or
release twice. When the booking flow sees an order booked, `hand_over` turns its pending hold
into booked demand in the same write, so the units stay out of availability until an ERP
read shows the order's demand (and then they are counted there, once). A booking that fails
or is cancelled before it reached the ERP gives the units back with `release`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from .availability import available_to_sell
from .errors import InsufficientStock, InvalidStockInput, ReservationConflict
from .position import BookedDemand, StockPosition
from .quantities import ZERO, aware_utc, finite_quantity, identifier


@dataclass(frozen=True, slots=True)
class ReservationChange:
    """Result of a reserve or release; `changed` is False when the call repeated an earlier one."""

    position: StockPosition
    order_id: str
    quantity: Decimal
    changed: bool
    available_before: Decimal
    available_after: Decimal


def reserve(
    position: StockPosition, quantity: Decimal, order_id: str, *, with_expected: bool = False
) -> ReservationChange:
    """Hold `quantity` for `order_id`, or raise `InsufficientStock` and hold nothing.

    Idempotent: the same order reserving the same quantity again changes nothing (and is not
    re-checked against availability, which already counts it). A different quantity for an
    order that already holds one raises `ReservationConflict`. `with_expected` lets the
    order's channel sell expected receipts, as its availability answer shows them.
    """
    identifier(order_id, "order_id")
    if finite_quantity(quantity, "quantity") <= 0:
        raise InvalidStockInput(f"reservation quantity must be positive, got {quantity}")
    available = available_to_sell(position, with_expected=with_expected)
    existing = position.reservations.get(order_id)
    if existing is not None:
        if existing != quantity:
            raise ReservationConflict(order_id, existing, quantity)
        return ReservationChange(position, order_id, existing, False, available, available)
    if quantity > available:
        raise InsufficientStock(position.sku, position.location, quantity, available)
    reservations = {**position.reservations, order_id: quantity}
    updated = replace(position, reservations=reservations)
    return ReservationChange(
        updated,
        order_id,
        quantity,
        True,
        available,
        available_to_sell(updated, with_expected=with_expected),
    )


def release(position: StockPosition, order_id: str) -> ReservationChange:
    """Give back what `order_id` holds; releasing an order that holds nothing changes nothing."""
    identifier(order_id, "order_id")
    available = available_to_sell(position)
    existing = position.reservations.get(order_id)
    if existing is None:
        return ReservationChange(position, order_id, ZERO, False, available, available)
    reservations = {key: value for key, value in position.reservations.items() if key != order_id}
    updated = replace(position, reservations=reservations)
    return ReservationChange(
        updated, order_id, existing, True, available, available_to_sell(updated)
    )


def hand_over(position: StockPosition, order_id: str, booked_at: datetime) -> ReservationChange:
    """The ERP booked `order_id`: its pending hold becomes booked demand, with no gap.

    When an ERP read that started after `booked_at` was applied already (`demand_as_of` is
    later), the ERP's demand includes the order and the hold is simply dropped; otherwise
    the quantity stays counted as `booked` until such a read arrives. An order that holds
    nothing here (handed over before, or never held) changes nothing, so repeating is safe.
    """
    identifier(order_id, "order_id")
    at = aware_utc(booked_at, "booked_at")
    available = available_to_sell(position)
    existing = position.reservations.get(order_id)
    if existing is None:
        return ReservationChange(position, order_id, ZERO, False, available, available)
    reservations = {key: value for key, value in position.reservations.items() if key != order_id}
    booked = dict(position.booked)
    read_includes_it = position.demand_as_of is not None and position.demand_as_of > at
    if not read_includes_it:
        booked[order_id] = BookedDemand(existing, at)
    updated = replace(position, reservations=reservations, booked=booked)
    return ReservationChange(
        updated, order_id, existing, True, available, available_to_sell(updated)
    )
