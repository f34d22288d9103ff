"""What travels on ``inventory-events``: the WMS/ERP event contract, plus ERP stock snapshots.

Two kinds of message share the queue, so every stock change goes through one handler:

- Inventory events (the product contract): ``counted`` / ``adjusted`` / ``reserved`` /
  ``released`` with a ``sequence`` that increases per (sku, location) at the source. The
  domain folds them in sequence order.
- ERP stock snapshots: absolute figures this product read back from Business Central's
  ``itemAvailabilityByLocation`` (after a change notification, or in reconciliation). They
  look like a ``counted`` event (same field names, so a generic consumer can read them) but
  carry ``source = "erp-snapshot"``, the ERP's reservations outside its sales-order demand
  (``reservedQuantity``), its outstanding sales-order demand (``qtyOnSalesOrders``), expected
  receipts (``qtyOnPurchaseOrders``) and ``occurredAt`` = the time the read was sent. Their
  ``sequence`` is that time in microseconds and is *not* folded:
  the WMS numbers its events per key and a second numbering on the same key would collide
  with it. A snapshot is applied with the domain's ``reconcile`` / ``apply_correction``,
  which compare times instead: it never overwrites an event newer than the read, and events
  that occurred before the read are recognised as already included ("covered").

``erp-snapshot`` is therefore a reserved source name; a producer must not use it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from shared.adapters.erp.models import ItemAvailability
from shared.domain.json_input import JsonRejected, read_json
from shared.domain.stock import (
    ErpStockFigures,
    InvalidEventReason,
    InvalidInventoryEvent,
    InventoryEvent,
    parse_inventory_event,
)
from shared.domain.stock.events import QUANTITY_LIMIT, EventId, LocationCode, Quantity, Sku

INVENTORY_QUEUE = "inventory-events"
SNAPSHOT_SOURCE: Final = "erp-snapshot"
SnapshotOrigin = Literal["notification", "reconciliation"]


# A quantity the ERP reports: never negative, exact to five decimals like Business Central.
ErpQuantity = Annotated[
    Decimal, Field(ge=0, le=QUANTITY_LIMIT, decimal_places=5, allow_inf_nan=False)
]


class ErpStockSnapshot(BaseModel):
    """Business Central's stock figures of one (sku, location) as of ``as_of``.

    ``erp_reserved`` is what the ERP reserved *outside* its sales-order demand (reservations
    for sales lines are inside ``erp_demand`` already). Demand and expected receipts are
    optional so a snapshot queued by an older version still applies (it leaves them as
    they are).
    """

    model_config = ConfigDict(
        frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True
    )

    event_id: EventId = Field(alias="eventId")
    sku: Sku
    location: LocationCode
    kind: Literal["counted"] = "counted"
    # Business Central may allow negative inventory, so unlike a WMS count this can be < 0.
    on_hand: Quantity = Field(alias="quantity")
    erp_reserved: ErpQuantity = Field(alias="reservedQuantity")
    erp_demand: ErpQuantity | None = Field(None, alias="qtyOnSalesOrders")
    expected: ErpQuantity | None = Field(None, alias="qtyOnPurchaseOrders")
    sequence: int = Field(ge=1, strict=True)
    as_of: AwareDatetime = Field(alias="occurredAt")
    source: Literal["erp-snapshot"] = SNAPSHOT_SOURCE
    origin: SnapshotOrigin = "notification"
    erp_modified_at: AwareDatetime | None = Field(default=None, alias="erpModifiedAt")

    @field_validator("as_of", "erp_modified_at")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    @property
    def key(self) -> tuple[str, str]:
        """The (sku, location) projection this snapshot corrects."""
        return (self.sku, self.location)

    def to_message(self) -> dict[str, Any]:
        """The JSON-ready body (decimal strings, ISO 8601 UTC times)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @property
    def figures(self) -> ErpStockFigures:
        """The figures the domain reconciles the position with."""
        return ErpStockFigures(self.on_hand, self.erp_reserved, self.erp_demand, self.expected)


InventoryMessage = InventoryEvent | ErpStockSnapshot


def erp_figures(row: ItemAvailability) -> ErpStockFigures:
    """The domain's figures from one ``itemAvailabilityByLocation`` row.

    Business Central's demand (``qtyOnSalesOrders``, the outstanding quantity of sales lines)
    already holds the units its sales lines reserved (``reservedQtyOnSalesOrders``), so only
    the rest of ``reservedQuantity`` is reserved on top of the demand. Negative figures (a
    reservation entry ahead of its demand) count as zero.
    """
    zero = Decimal(0)
    other_reserved = max(row.reserved_quantity - row.reserved_qty_on_sales_orders, zero)
    return ErpStockFigures(
        on_hand=row.inventory,
        reserved=other_reserved,
        demand=max(row.qty_on_sales_orders, zero),
        expected=max(row.qty_on_purchase_orders, zero),
    )


def stock_snapshot(
    sku: str,
    location: str,
    figures: ErpStockFigures,
    as_of: datetime,
    origin: SnapshotOrigin,
    erp_modified_at: datetime | None = None,
) -> ErpStockSnapshot:
    """A snapshot message; its id is derived from its content, so a re-send is recognisable."""
    as_of = as_of.astimezone(UTC)
    digest = hashlib.sha256(
        "\x1f".join(
            [
                sku,
                location,
                str(figures.on_hand),
                str(figures.reserved),
                str(figures.demand),
                str(figures.expected),
                as_of.isoformat(),
                origin,
            ]
        ).encode("utf-8")
    ).hexdigest()
    return ErpStockSnapshot(
        event_id=f"erp-{digest[:40]}",
        sku=sku,
        location=location,
        on_hand=figures.on_hand,
        erp_reserved=max(figures.reserved, Decimal(0)),
        erp_demand=figures.demand,
        expected=figures.expected,
        sequence=max(1, int(as_of.timestamp() * 1_000_000)),
        as_of=as_of,
        origin=origin,
        erp_modified_at=erp_modified_at,
    )


def snapshot_of_row(
    row: ItemAvailability, as_of: datetime, origin: SnapshotOrigin
) -> ErpStockSnapshot:
    """The snapshot message for one ERP row read at ``as_of``."""
    return stock_snapshot(
        row.item_number,
        row.location_code,
        erp_figures(row),
        as_of,
        origin,
        row.last_modified_date_time,
    )


def parse_inventory_message(body: bytes | str) -> InventoryMessage:
    """Validate one message body; raise ``InvalidInventoryEvent`` (dead-letter it) if bad."""
    try:
        data = read_json(body)
    except JsonRejected as refused:
        # Deep nesting, huge numbers, duplicate keys...: dead-lettered at once, with why.
        raise InvalidInventoryEvent(InvalidEventReason.UNPARSEABLE, str(refused)) from None
    if isinstance(data, dict) and data.get("source") == SNAPSHOT_SOURCE:
        try:
            return ErpStockSnapshot.model_validate(data, by_alias=True)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in item['loc']) or 'message'}: {item['msg']}"
                for item in error.errors(include_url=False, include_input=False)
            )
            raise InvalidInventoryEvent(InvalidEventReason.INVALID_FIELD, problems) from None
    if isinstance(data, dict):
        return parse_inventory_event(data)
    # Not a JSON object: let the domain name the reason (unparseable).
    return parse_inventory_event(body)
