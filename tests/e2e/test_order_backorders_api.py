"""Backorders end to end through the runner (issue 19): the sync policy's
``insufficient-stock: backorder`` (``SYNC_POLICY``), HTTP intake, Service Bus booking, the ERP
simulator, reconciliation.

10 ordered of an item with 4 available: accepted, 4 held, 6 backordered; a replay answers the
same bytes; booked once in the ERP with quantity 10; availability of the item 0 afterwards,
never negative, before and after the ERP's figures take over.

Its own function app, Service Bus stand-in and ERP simulator on free ports, sharing only the
session's Azurite under its own table prefix. Every figure comes from the ERP simulator.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from devtools.erp_sim.reference import ITEM_CATEGORIES
from devtools.erp_sim.testing import standard_api
from devtools.stack import LocalStack
from tests.e2e.conftest import PrivateStack
from tests.support.stock_setup import (
    availability,
    erp_rows,
    reconcile,
    sellable_item,
    set_financials,
    stock_only_at,
)
from tests.waiting import eventually

pytestmark = pytest.mark.slow

CUSTOMER = "C00001"
# Every category of the demo data may be backordered; short lines of other items are refused.
POLICY = {
    "orders": {
        "approvals": {
            "rules": {"insufficient-stock": "backorder"},
            "backorder": {"itemCategories": [code for code, _ in ITEM_CATEGORIES]},
        }
    }
}


@pytest.fixture(scope="module")
def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
    with private_stack("bko", policy=POLICY) as started:
        yield started


@pytest.fixture(scope="module")
def published(api: httpx.Client, admin: dict[str, str], erp_url: str) -> None:
    assert api.post("/admin/functions/price_publish_full", json={}, headers=admin).is_success
    set_financials(erp_url, CUSTOMER, balance="-100000000")
    body = {"customerId": CUSTOMER, "lines": [{"sku": "IT-000001", "quantity": 1}]}
    eventually(lambda: api.post("/api/prices/quote", json=body).status_code == 200, 60)


def _never_negative(item: dict[str, Any]) -> bool:
    return Decimal(item["available"]) >= 0 and all(
        Decimal(line["available"]) >= 0 for line in item["locations"]
    )


def test_ten_ordered_with_four_available_hold_four_backorder_six_and_book_ten_once(
    api: httpx.Client, admin: dict[str, str], erp_url: str, published: None
) -> None:
    sku = sellable_item(api, CUSTOMER)
    location = stock_only_at(api, admin, erp_url, sku, 4)

    body = {
        "customerId": CUSTOMER,
        "externalOrderId": f"shop-{uuid.uuid4().hex[:8]}",
        "channel": "web",
        "lines": [{"sku": sku, "quantity": 10}],
    }
    key = {"Idempotency-Key": uuid.uuid4().hex}
    answer = api.post("/api/orders", json=body, headers=key)
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    order_id = accepted["orderId"]
    assert accepted["status"] == "accepted"
    line = accepted["lines"][0]
    assert (line["quantity"], line["reserved"], line["backordered"]) == (10, 4, 6)
    assert line["allocations"] == [{"location": location, "quantity": 4}]
    # The same key and body: the first answer, byte for byte.
    again = api.post("/api/orders", json=body, headers=key)
    assert (again.status_code, again.content) == (202, answer.content)
    # The four are held (or already handed over as booked demand): none left, none negative.
    item = availability(api, sku)
    assert item["available"] == "0" and _never_negative(item)

    view = eventually(
        lambda: (
            (found := api.get(f"/api/orders/{order_id}").json())["status"] == "booked" and found
        ),
        60,
    )
    assert [(li["reserved"], li["backordered"]) for li in view["lines"]] == [(4, 6)]
    assert view["history"][0]["detail"] == f"backordered: {sku} 6"
    erp = httpx.get(
        f"{standard_api(erp_url)}/salesOrders",
        params={"$filter": f"externalDocumentNumber eq '{order_id}'"},
        timeout=10,
    ).json()["value"]
    assert len(erp) == 1, erp
    erp_lines = httpx.get(
        f"{standard_api(erp_url)}/salesOrders({erp[0]['id']})/salesOrderLines", timeout=10
    ).json()["value"]
    assert sum(Decimal(str(li["quantity"])) for li in erp_lines) == 10
    assert Decimal(str(erp[0]["totalAmountExcludingTax"])) == Decimal(accepted["totalAmount"])
    assert sum(row["qtyOnSalesOrders"] for row in erp_rows(erp_url, sku)) == 10

    # After booking: availability 0, not negative.
    item = availability(api, sku)
    assert item["available"] == "0" and _never_negative(item)
    # After the ERP's figures take over (a reconciliation): on hand 4, demand 10, still 0.
    reconcile(api, admin, sku)
    item = availability(api, sku)
    at = next(li for li in item["locations"] if li["location"] == location)
    assert (at["onHand"], at["erpDemand"], at["pendingHolds"]) == ("4", "10", "0")
    assert item["available"] == "0" and _never_negative(item)
