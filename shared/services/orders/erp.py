"""The sales order this product asks Business Central to create for one of its orders.

One ERP line per (order line, location), with the unit of measure and the location the
product reserved at. A line served whole from one location is sent without a price, so the
ERP prices it with its own rules (the re-validation: a difference shows in the booked total
and in the order's history). A line split over locations carries the accepted unit price and
discount, because pricing each part alone could miss a quantity break.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from uuid import UUID

from pydantic import Field

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.models import SalesOrderCreate, SalesOrderLineCreate
from shared.domain.orders import Order, OrderLine

_LOCATION_REFRESH_SECONDS = 60.0


class OrderPayload(SalesOrderCreate):
    """A v2.0 ``salesOrder`` deep insert with ship-to fields."""

    ship_to_name: str | None = Field(default=None, max_length=100)
    ship_to_contact: str | None = Field(default=None, max_length=100)
    ship_to_address_line1: str | None = Field(default=None, max_length=100)
    ship_to_address_line2: str | None = Field(default=None, max_length=50)
    ship_to_city: str | None = Field(default=None, max_length=30)
    ship_to_state: str | None = Field(default=None, max_length=30)
    ship_to_post_code: str | None = Field(default=None, max_length=20)
    ship_to_country: str | None = Field(default=None, max_length=10)
    email: str | None = Field(default=None, max_length=80)
    phone_number: str | None = Field(default=None, max_length=30)


class LocationDirectory:
    """Location codes to BC location ids, read once per process and again on a miss."""

    def __init__(self) -> None:
        self._ids: dict[str, UUID] = {}
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def id_of(self, erp: ErpClient, code: str) -> UUID | None:
        found = self._ids.get(code)
        if found is not None:
            return found
        async with self._lock:
            if code not in self._ids and (
                time.monotonic() - self._read_at > _LOCATION_REFRESH_SECONDS
            ):
                self._ids = {loc.code: loc.id async for loc in erp.iter_locations()}
                self._read_at = time.monotonic()
        return self._ids.get(code)


async def sales_order_payload(
    order: Order, erp: ErpClient, locations: LocationDirectory
) -> OrderPayload:
    """The deep-insert body for `order` (reads the location directory on first use)."""
    lines: list[SalesOrderLineCreate] = []
    for line in order.lines:
        split = len(line.allocations) > 1
        for location, quantity in _parts(line):
            lines.append(
                SalesOrderLineCreate(
                    line_object_number=line.sku,
                    quantity=quantity,
                    unit_of_measure_code=line.unit_of_measure,
                    location_id=await locations.id_of(erp, location) if location else None,
                    unit_price=line.unit_price if split else None,
                    discount_percent=line.line_discount_percent if split else None,
                )
            )
    ship_to = {key: value for key, value in order.ship_to.items() if value}
    return OrderPayload.model_validate(
        {
            "customer_number": order.customer_no,
            "external_document_number": order.order_id,
            "currency_code": order.currency,
            "order_date": order.created_at.date(),
            "sales_order_lines": lines,
            **ship_to,
        }
    )


def _parts(line: OrderLine) -> list[tuple[str | None, Decimal]]:
    """(location, quantity) per ERP line. A line approved short of stock (held for approval
    with only part of it there) is booked whole: the rest goes with its first location (or
    the ERP's default location when nothing was there), where the ERP backorders it."""
    parts: list[tuple[str | None, Decimal]] = [(a.location, a.quantity) for a in line.allocations]
    rest = line.quantity - sum((quantity for _, quantity in parts), Decimal(0))
    if rest > 0:
        if parts:
            parts[0] = (parts[0][0], parts[0][1] + rest)
        else:
            parts.append((None, rest))
    return parts
