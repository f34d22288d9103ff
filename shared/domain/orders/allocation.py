"""Which locations serve each order line, from what is available to sell after reservations.

A channel sells from several locations and its availability answer is their sum, so an
order line the sum can serve is accepted: it goes to the single location with the most
stock when one can serve it whole (one ERP line, one shipment), else it is split over the
locations with the most stock. Quantities are whole sales units, so a line in BOX never
becomes a fraction of a box at a location.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class LineDemand:
    """One line to place: `quantity` sales units of `qty_per_unit` base units each."""

    line: int
    sku: str
    quantity: Decimal
    qty_per_unit: Decimal


@dataclass(frozen=True, slots=True)
class LineAllocation:
    """Part of a line served from one location, in the line's unit of measure."""

    location: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Shortage:
    """A line the channel's locations cannot serve; `available` is in the line's unit."""

    line: int
    sku: str
    requested: Decimal
    available: Decimal


@dataclass(frozen=True, slots=True)
class Backorder:
    """A short line of a backorderable item: `reserved` is held now, `backordered` is booked
    with it and waits in the ERP for stock (both in the line's unit)."""

    line: int
    sku: str
    reserved: Decimal
    backordered: Decimal


@dataclass(frozen=True, slots=True)
class AllocationResult:
    allocations: Mapping[int, tuple[LineAllocation, ...]]
    shortages: tuple[Shortage, ...]
    backorders: tuple[Backorder, ...] = ()


def _never(_: str) -> bool:
    return False


def _whole_units(base_quantity: Decimal, qty_per_unit: Decimal) -> Decimal:
    return (base_quantity / qty_per_unit).quantize(Decimal(1), rounding=ROUND_FLOOR)


def allocate(
    demands: Sequence[LineDemand],
    available: Mapping[str, Mapping[str, Decimal]],
    sells_from: Callable[[str], bool],
    *,
    partial: bool = False,
    backorderable: Callable[[str], bool] = _never,
) -> AllocationResult:
    """Place every line; `available` is base units per sku and location.

    Lines are placed in order and each placement uses up stock for the following lines of
    the same item. A line that cannot be served is reported as a shortage and takes nothing,
    or with `partial` (an order held for approval) takes what there is. A short line of an
    item that is `backorderable` is no shortage: it takes what there is (perhaps nothing)
    and the rest is reported as a backorder.
    """
    remaining = {
        sku: {loc: max(qty, _ZERO) for loc, qty in locations.items() if sells_from(loc)}
        for sku, locations in available.items()
    }
    allocations: dict[int, tuple[LineAllocation, ...]] = {}
    shortages: list[Shortage] = []
    backorders: list[Backorder] = []
    for demand in demands:
        stock = remaining.setdefault(demand.sku, {})
        units = {
            loc: _whole_units(qty, demand.qty_per_unit) for loc, qty in stock.items() if qty > 0
        }
        ranked = sorted(units, key=lambda loc: (-units[loc], loc))
        total = sum(units.values(), _ZERO)
        if total < demand.quantity and backorderable(demand.sku):
            backorders.append(Backorder(demand.line, demand.sku, total, demand.quantity - total))
        elif total < demand.quantity:
            shortages.append(Shortage(demand.line, demand.sku, demand.quantity, total))
            if not partial or total == 0:
                continue
        placed: list[LineAllocation] = []
        if ranked and units[ranked[0]] >= demand.quantity:
            placed.append(LineAllocation(ranked[0], demand.quantity))
        else:
            needed = demand.quantity
            for loc in ranked:
                take = min(units[loc], needed)
                if take > 0:
                    placed.append(LineAllocation(loc, take))
                    needed -= take
                if needed == 0:
                    break
        for part in placed:
            stock[part.location] -= part.quantity * demand.qty_per_unit
        allocations[demand.line] = tuple(placed)
    return AllocationResult(allocations, tuple(shortages), tuple(backorders))
