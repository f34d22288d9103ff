"""This product's pending reservations: stock promised to accepted orders not yet booked.

Keyed by order id, so a retried intake or a redelivered booking message cannot reserve or
release twice. The ERP's own reservations arrive as inventory events; when the booking flow
sees an order booked it releases the pending reservation here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from .availability import available_to_sell
from .errors import InsufficientStock, InvalidStockInput, ReservationConflict
from .position import StockPosition
from .quantities import ZERO, finite_quantity, identifier


@dataclass(frozen=True, slots=True)
class ReservationChange:
    """Result of a reserve or release; `changed` is False when the call repeated an earlier one."""

    position: StockPosition
    order_id: str
    quantity: Decimal
    changed: bool
    available_before: Decimal
    available_after: Decimal


def reserve(position: StockPosition, quantity: Decimal, order_id: str) -> ReservationChange:
    """Hold `quantity` for `order_id`, or raise `InsufficientStock` and hold nothing.

    Idempotent: the same order reserving the same quantity again changes nothing (and is not
    re-checked against availability, which already counts it). A different quantity for an
    order that already holds one raises `ReservationConflict`.
    """
    identifier(order_id, "order_id")
    if finite_quantity(quantity, "quantity") <= 0:
        raise InvalidStockInput(f"reservation quantity must be positive, got {quantity}")
    available = available_to_sell(position)
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
        updated, order_id, quantity, True, available, available_to_sell(updated)
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
