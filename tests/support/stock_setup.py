"""Setting an item's stock (in the ERP simulator, or by a WMS count on the bus) and a
customer's ERP financials, and waiting for the product to take them over, for end-to-end tests
that run through the local host."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from devtools.erp_sim.testing import custom_api
from tests.waiting import eventually

# An availability row's demand and supply figures, all cleared.
NO_DEMAND = {
    "reservedQuantity": 0,
    "reservedQtyOnSalesOrders": 0,
    "qtyOnSalesOrders": 0,
    "qtyOnPurchaseOrders": 0,
}


def sellable_item(api: httpx.Client, customer: str, skip: frozenset[str] = frozenset()) -> str:
    """An item `customer` can buy (priced, not blocked, sold in its base unit)."""
    for number in range(1, 41):
        sku = f"IT-{number:06d}"
        if sku in skip:
            continue
        body = {"customerId": customer, "lines": [{"sku": sku, "quantity": 1}]}
        if api.post("/api/prices/quote", json=body).status_code == 200:
            return sku
    raise AssertionError("no sellable item in the demo data")


def erp_rows(erp_url: str, sku: str) -> list[dict[str, Any]]:
    """The simulator's availability rows of `sku`, one per location, by location code."""
    response = httpx.get(
        f"{custom_api(erp_url)}/itemAvailabilityByLocation",
        params={"$filter": f"itemNumber eq '{sku}'"},
        timeout=10,
    )
    response.raise_for_status()
    return sorted(response.json()["value"], key=lambda row: row["locationCode"])


def patch_erp_row(erp_url: str, row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Change an availability row in the simulator (ETag-conditional); the row as it is now."""
    response = httpx.patch(
        f"{custom_api(erp_url)}/itemAvailabilityByLocation({row['id']})",
        json=changes,
        headers={"If-Match": row["@odata.etag"]},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


def availability(api: httpx.Client, sku: str, channel: str = "web") -> dict[str, Any]:
    """The product's availability answer for one item."""
    response = api.get("/api/availability", params={"skus": sku, "channel": channel})
    assert response.status_code == 200, response.text
    return dict(response.json()["items"][0])


def reconcile(api: httpx.Client, admin: dict[str, str], sku: str) -> None:
    """Run the reconciliation timer and wait until the item's projection took a newer read
    (the ERP's figures must differ from the projection's, or the run writes nothing)."""
    before = availability(api, sku)["asOf"] or ""
    started = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    assert api.post("/admin/functions/stock_reconcile", json={}, headers=admin).is_success

    def read_applied() -> bool:
        as_of = availability(api, sku)["asOf"] or ""
        return as_of > before and as_of >= started[:19]

    eventually(read_applied, 60)


def stock_only_at(
    api: httpx.Client, admin: dict[str, str], erp_url: str, sku: str, quantity: int
) -> str:
    """Make the ERP hold `quantity` of `sku` at one location, nothing else anywhere and no
    demand, and let reconciliation bring the projection there. Returns the location."""
    rows = erp_rows(erp_url, sku)
    assert rows, f"{sku} has no stock rows in the simulator"
    for index, row in enumerate(rows):
        patch_erp_row(erp_url, row, inventory=quantity if index == 0 else 0, **NO_DEMAND)
    reconcile(api, admin, sku)
    eventually(lambda: availability(api, sku)["available"] == str(quantity), 60)
    return str(rows[0]["locationCode"])


# The last count sequence sent per (sku, location) in this process: a count must carry a newer
# sequence than the one before it, or the projection ignores it as stale.
_count_sequences: dict[tuple[str, str], int] = {}


def count_stock(bus: ServiceBusClient, sku: str, location: str, quantity: int) -> None:
    """A WMS count on ``inventory-events``: on hand at `location` becomes `quantity`."""
    key = (sku, location)
    sequence = _count_sequences[key] = _count_sequences.get(key, 0) + 1
    body = {
        "eventId": f"{sku}|{location}|{sequence}",
        "sku": sku,
        "location": location,
        "kind": "counted",
        "quantity": str(quantity),
        "sequence": sequence,
        "occurredAt": datetime.now(UTC).isoformat(),
        "source": "wms",
    }
    with bus.get_queue_sender("inventory-events") as sender:
        sender.send_messages(ServiceBusMessage(json.dumps(body), message_id=body["eventId"]))


def set_financials(
    erp_url: str, customer: str, *, balance: str, overdue: str = "0", outstanding: str = "0"
) -> None:
    """Set a customer's balance, overdue and outstanding orders amounts in the simulator."""
    httpx.post(
        f"{erp_url}/_sim/customers/{customer}/financials",
        json={
            "balance": balance,
            "overdueAmount": overdue,
            "outstandingOrdersAmount": outstanding,
        },
        timeout=10,
    ).raise_for_status()
