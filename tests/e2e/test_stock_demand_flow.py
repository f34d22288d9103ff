"""No oversell after booking: the ERP's sales-order demand, end to end through the runner.

The story this module replays is the one that used to oversell: an item with 517 available,
an order for 516 accepted and booked, and a few seconds later the units were back in
availability. Here every figure comes from the ERP simulator (no WMS events), so the
projection's view is checked against the ERP's own at every step: at once after booking,
after a reconciliation, after a change notification, after the order ships
(``Microsoft.NAV.shipAndInvoice``) and after an order is cancelled (deleted) in the ERP.

A private stack (function app, Service Bus stand-in, ERP simulator) on free ports; only the
session's Azurite is shared, under a table prefix of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from devtools.erp_sim.testing import standard_api
from devtools.stack import LocalStack
from tests.e2e.conftest import PrivateStack
from tests.support.stock_setup import (
    availability,
    erp_rows,
    patch_erp_row,
    reconcile,
    sellable_item,
    set_financials,
    stock_only_at,
)
from tests.waiting import eventually

pytestmark = pytest.mark.slow

CUSTOMER = "C00001"


@pytest.fixture(scope="module")
def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
    env = {
        "ORDER_BOOKING_CLAIM_SECONDS": "10",
    }
    with private_stack("dem", env=env) as started:
        yield started


@pytest.fixture(scope="module")
def prepared(api: httpx.Client, admin: dict[str, str], erp_url: str) -> str:
    """Prices published, webhook subscriptions in place, a generous credit limit; returns the
    availability subscription's id (for the simulator's notify route)."""
    assert api.post("/admin/functions/price_publish_full", json={}, headers=admin).is_success
    # A large credit balance in the customer's favour: room for every order here.
    set_financials(erp_url, CUSTOMER, balance="-100000000")
    assert api.post("/admin/functions/erp_subscriptions", json={}, headers=admin).is_success

    def availability_subscription() -> str | None:
        # A custom page's subscription lives at its own API's root, not at api/v2.0.
        root = "contoso/commerceSync/v1.0"
        listed = httpx.get(f"{erp_url}/v2.0/local/sandbox/api/{root}/subscriptions").json()
        return next(
            (
                s["subscriptionId"]
                for s in listed["value"]
                if s["resource"].endswith("itemAvailabilityByLocation")
            ),
            None,
        )

    subscription = eventually(availability_subscription, 60)
    body = {"customerId": CUSTOMER, "lines": [{"sku": "IT-000001", "quantity": 1}]}
    eventually(lambda: api.post("/api/prices/quote", json=body).status_code == 200, 60)
    return str(subscription)


def _line(api: httpx.Client, sku: str, location: str) -> dict[str, Any]:
    return next(
        line for line in availability(api, sku)["locations"] if line["location"] == location
    )


def _notify(erp_url: str, subscription: str, row: dict[str, Any]) -> None:
    sent = httpx.post(
        f"{erp_url}/_sim/notify",
        json={"subscriptionId": subscription, "changeType": "updated", "entityId": row["id"]},
        timeout=10,
    ).json()
    assert sent["deliveries"][0]["status"] == 202, sent


def _order(api: httpx.Client, sku: str, quantity: int) -> httpx.Response:
    body = {
        "customerId": CUSTOMER,
        "externalOrderId": f"shop-{uuid.uuid4().hex[:8]}",
        "channel": "web",
        "lines": [{"sku": sku, "quantity": quantity}],
    }
    return api.post("/api/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})


def _booked(api: httpx.Client, order_id: str) -> dict[str, Any]:
    def status() -> dict[str, Any] | None:
        order = api.get(f"/api/orders/{order_id}").json()
        return order if order["status"] == "booked" else None

    return dict(eventually(status, 60))


def _erp_order(erp_url: str, order_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{standard_api(erp_url)}/salesOrders",
        params={"$filter": f"externalDocumentNumber eq '{order_id}'"},
        timeout=10,
    )
    found = response.json()["value"]
    assert len(found) == 1, found
    return dict(found[0])


def test_a_booked_order_stays_out_of_availability_until_shipped_or_cancelled(
    api: httpx.Client, admin: dict[str, str], erp_url: str, prepared: str
) -> None:
    sku = sellable_item(api, CUSTOMER)
    location = stock_only_at(api, admin, erp_url, sku, 517)

    first = _order(api, sku, 516)
    assert first.status_code == 202, first.text
    order_id = first.json()["orderId"]
    _booked(api, order_id)
    # At once: the hold or the booked demand keeps the units out, never neither.
    assert availability(api, sku)["available"] == "1"
    line = eventually(lambda: (found := _line(api, sku, location))["pendingHolds"] == "0" and found)
    assert (line["onHand"], line["erpDemand"], line["available"]) == ("517", "516", "1")

    # After a reconciliation: the ERP's own demand replaces the booked figure, once.
    reconcile(api, admin, sku)
    line = _line(api, sku, location)
    assert (line["erpDemand"], line["reserved"], line["available"]) == ("516", "0", "1")
    erp_row = erp_rows(erp_url, sku)[0]
    assert erp_row["qtyOnSalesOrders"] == 516 and erp_row["inventory"] == 517

    # After a change notification (receipts expected: shown, not sold on this channel).
    erp_row = patch_erp_row(erp_url, erp_row, qtyOnPurchaseOrders=40)
    _notify(erp_url, prepared, erp_row)
    line = eventually(lambda: (found := _line(api, sku, location))["expected"] == "40" and found)
    assert (line["erpDemand"], line["available"]) == ("516", "1")

    # A second order cannot have what the first one booked.
    second = _order(api, sku, 2)
    assert second.status_code == 422, second.text
    violation = second.json()["violations"][0]
    assert violation["rule"] == "insufficient-stock" and violation["sku"] == sku
    assert "available to sell 1" in violation["detail"]

    # The order ships: on hand and demand drop together, availability stays 1.
    erp_order = _erp_order(erp_url, order_id)
    posted = httpx.post(
        f"{standard_api(erp_url)}/salesOrders({erp_order['id']})/Microsoft.NAV.shipAndInvoice",
        timeout=10,
    )
    assert posted.status_code == 204, posted.text
    erp_row = erp_rows(erp_url, sku)[0]
    assert (erp_row["inventory"], erp_row["qtyOnSalesOrders"]) == (1, 0)
    _notify(erp_url, prepared, erp_row)
    line = eventually(lambda: (found := _line(api, sku, location))["onHand"] == "1" and found)
    assert (line["erpDemand"], line["available"]) == ("0", "1")

    # Another order takes the last unit; cancelled in the ERP, the unit comes back once.
    last = _order(api, sku, 1)
    assert last.status_code == 202, last.text
    last_id = last.json()["orderId"]
    _booked(api, last_id)
    assert availability(api, sku)["available"] == "0"
    erp_order = _erp_order(erp_url, last_id)
    deleted = httpx.delete(
        f"{standard_api(erp_url)}/salesOrders({erp_order['id']})",
        headers={"If-Match": erp_order["@odata.etag"]},
        timeout=10,
    )
    assert deleted.status_code == 204, deleted.text
    _notify(erp_url, prepared, erp_rows(erp_url, sku)[0])
    line = eventually(lambda: (found := _line(api, sku, location))["available"] == "1" and found)
    assert (line["onHand"], line["erpDemand"], line["pendingHolds"]) == ("1", "0", "0")
    # And a reconciliation (something else moved, so it writes) does not count it again.
    patch_erp_row(erp_url, erp_rows(erp_url, sku)[0], qtyOnPurchaseOrders=41)
    reconcile(api, admin, sku)
    line = _line(api, sku, location)
    assert (line["expected"], line["erpDemand"], line["available"]) == ("41", "0", "1")


def test_racing_orders_never_take_more_than_is_available_while_bookings_complete(
    api: httpx.Client, admin: dict[str, str], erp_url: str, prepared: str
) -> None:
    # Not the item of the other test's story.
    sku = sellable_item(api, CUSTOMER, skip=frozenset({sellable_item(api, CUSTOMER)}))
    location = stock_only_at(api, admin, erp_url, sku, 30)

    # Twelve orders of 4 against 30 units, four at a time: the first ones are booked (and
    # their holds handed over to the ERP's demand) while the later ones are still checked.
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: _order(api, sku, 4), range(12)))
    accepted = [answer.json()["orderId"] for answer in answers if answer.status_code == 202]
    refused = [answer.json() for answer in answers if answer.status_code == 422]
    assert len(accepted) + len(refused) == 12, [a.text for a in answers]
    assert 4 * len(accepted) <= 30
    assert len(accepted) == 7, "with 30 units, seven orders of 4 fit and should be accepted"
    for order_id in accepted:
        _booked(api, order_id)
    line = eventually(lambda: (found := _line(api, sku, location))["pendingHolds"] == "0" and found)
    assert (line["erpDemand"], line["available"]) == ("28", "2")
    # The ERP agrees: exactly the accepted orders, each once.
    assert erp_rows(erp_url, sku)[0]["qtyOnSalesOrders"] == 28
    reconcile(api, admin, sku)
    assert availability(api, sku)["available"] == "2"
