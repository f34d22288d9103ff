"""The simulator after an order is created: release, partial shipments, invoices, line changes.

Pinned against Microsoft's sources:
- salesShipments (APIV2 - Sales Shipments, page 30062 in microsoft/ALAppExtensions
  Apps/W1/APIV2/app/src/pages/APIV2SalesShipments.Page.al): read-only (Editable = false), key
  SystemId, ``orderNumber`` = the order's "Order No.", ``invoiceDate`` = the shipment's
  Document Date, lines in ``salesShipmentLines``; no shipping agent / package tracking field
  (hence the custom page ``salesShipmentTracking``).
- salesOrderLines (APIV2 - Sales Order Lines): ``shippedQuantity`` = "Quantity Shipped",
  ``invoicedQuantity`` = "Quantity Invoiced".
- salesInvoices (learn.microsoft.com .../api-reference/v2.0/resources/dynamics_salesinvoice):
  ``dueDate``, ``remainingAmount``, ``status`` (Draft, In Review, Open, Paid, Canceled,
  Corrective), ``orderNumber``; ``$expand=salesInvoiceLines``.
- salesOrder ``status`` is Draft / In Review / Open (Sales Order Entity Buffer Status); BC's
  "Released" shows as ``Open``; posting releases the order; a fully shipped and invoiced
  order is deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from devtools.erp_sim.testing import custom_api, running_simulator, standard_api


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running_simulator(seed=42, items=120, customers=30) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        _ok(http.post("/_sim/reset", json={"seed": 42, "items": 120, "customers": 30}))
        yield http


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 300, f"{response.status_code}: {response.text}"
    return response


def _stock(client: httpx.Client, base_url: str, item: str, location: str) -> dict[str, Any]:
    rows = _ok(
        client.get(
            f"{custom_api(base_url)}/itemAvailabilityByLocation",
            params={"$filter": f"itemNumber eq '{item}' and locationCode eq '{location}'"},
        )
    ).json()["value"]
    return dict(rows[0])


def _demand(client: httpx.Client, base_url: str, item: str) -> Decimal:
    rows = _ok(
        client.get(
            f"{custom_api(base_url)}/itemAvailabilityByLocation",
            params={"$filter": f"itemNumber eq '{item}'"},
        )
    ).json()["value"]
    return sum((Decimal(str(row["qtyOnSalesOrders"])) for row in rows), Decimal(0))


def _order(client: httpx.Client, base_url: str) -> dict[str, Any]:
    std = standard_api(base_url)
    body = {
        "customerNumber": "C00001",
        "externalDocumentNumber": "ORD-TEST-1",
        "salesOrderLines": [
            {"lineObjectNumber": "IT-000001", "quantity": 5},
            {"lineObjectNumber": "IT-000016", "quantity": 4},
        ],
    }
    created = _ok(client.post(f"{std}/salesOrders", json=body)).json()
    return dict(
        _ok(
            client.get(f"{std}/salesOrders({created['id']})", params={"$expand": "salesOrderLines"})
        ).json()
    )


def test_two_partial_shipments_then_an_invoice(client: httpx.Client, base_url: str) -> None:
    std = standard_api(base_url)
    order = _order(client, base_url)
    assert order["status"] == "Draft"
    first = order["salesOrderLines"][0]
    location = "MAIN"
    stock_before = _stock(client, base_url, "IT-000001", location)

    _ok(client.post(f"/_sim/salesOrders/{order['number']}/status", json={"status": "Released"}))
    released = _ok(client.get(f"{std}/salesOrders({order['id']})")).json()
    assert released["status"] == "Open"  # BC's Released on the API page

    one = _ok(
        client.post(
            f"/_sim/salesOrders/{order['id']}/ship",
            json={
                "lines": [{"sequence": first["sequence"], "quantity": 2}],
                "shippingAgentCode": "DHL",
                "packageTrackingNumber": "TRK-1",
            },
        )
    ).json()["shipment"]
    stock_mid = _stock(client, base_url, "IT-000001", location)
    assert Decimal(str(stock_mid["inventory"])) == Decimal(str(stock_before["inventory"])) - 2
    assert (
        Decimal(str(stock_mid["qtyOnSalesOrders"]))
        == Decimal(str(stock_before["qtyOnSalesOrders"])) - 2
    )
    two = _ok(
        client.post(
            f"/_sim/salesOrders/{order['id']}/ship",
            json={"shippingAgentCode": "UPS", "packageTrackingNumber": "TRK-2"},
        )
    ).json()["shipment"]
    assert one["number"] != two["number"]

    shipments = _ok(
        client.get(
            f"{std}/salesShipments",
            params={
                "$filter": f"orderNumber eq '{order['number']}'",
                "$expand": "salesShipmentLines",
            },
        )
    ).json()["value"]
    assert [s["number"] for s in shipments] == sorted([one["number"], two["number"]]) or len(
        shipments
    ) == 2
    shipped = {
        (s["number"], line["lineObjectNumber"]): line["quantity"]
        for s in shipments
        for line in s["salesShipmentLines"]
    }
    assert shipped[(one["number"], "IT-000001")] == 2
    assert shipped[(two["number"], "IT-000001")] == 3
    assert shipped[(two["number"], "IT-000016")] == 4
    tracking = _ok(
        client.get(
            f"{custom_api(base_url)}/salesShipmentTracking",
            params={"$filter": f"orderNumber eq '{order['number']}'"},
        )
    ).json()["value"]
    assert {t["shipmentNumber"]: t["packageTrackingNumber"] for t in tracking} == {
        one["number"]: "TRK-1",
        two["number"]: "TRK-2",
    }
    lines = _ok(client.get(f"{std}/salesOrders({order['id']})/salesOrderLines")).json()["value"]
    assert [line["shippedQuantity"] for line in lines] == [5, 4]
    assert [line["invoicedQuantity"] for line in lines] == [0, 0]

    invoice = _ok(client.post(f"/_sim/salesOrders/{order['id']}/invoice")).json()["invoice"]
    assert invoice["status"] == "Open"
    assert invoice["remainingAmount"] == invoice["totalAmountIncludingTax"]
    assert (
        invoice["dueDate"]
        == (datetime.fromisoformat(invoice["postingDate"]) + timedelta(days=30)).date().isoformat()
    )
    read = _ok(
        client.get(f"{std}/salesInvoices({invoice['id']})", params={"$expand": "salesInvoiceLines"})
    ).json()
    assert read["orderNumber"] == order["number"]
    assert Decimal(str(read["totalAmountExcludingTax"])) == Decimal(
        str(order["totalAmountExcludingTax"])
    )
    assert len(read["salesInvoiceLines"]) == 2
    # Fully shipped and invoiced: Business Central deletes the order.
    assert client.get(f"{std}/salesOrders({order['id']})").status_code == 404


def test_lines_change_and_delete_only_while_open(client: httpx.Client, base_url: str) -> None:
    std = standard_api(base_url)
    order = _order(client, base_url)
    first, second = order["salesOrderLines"]
    url = f"{std}/salesOrders({order['id']})/salesOrderLines"
    before = _demand(client, base_url, "IT-000016")

    assert client.delete(f"{url}({second['id']})").status_code == 400  # no If-Match
    _ok(client.delete(f"{url}({second['id']})", headers={"If-Match": second["@odata.etag"]}))
    # The line's 4 units are no longer sales-order demand.
    assert _demand(client, base_url, "IT-000016") == before - 4

    changed = _ok(
        client.patch(f"{url}({first['id']})", json={"quantity": 3}, headers={"If-Match": "*"})
    ).json()
    assert changed["quantity"] == 3
    header = _ok(client.get(f"{std}/salesOrders({order['id']})")).json()
    assert header["lastModifiedDateTime"] > order["lastModifiedDateTime"]
    assert Decimal(str(header["totalAmountExcludingTax"])) == Decimal(
        str(changed["amountExcludingTax"])
    )

    _ok(client.post(f"/_sim/salesOrders/{order['id']}/status", json={"status": "Released"}))
    refused = client.patch(f"{url}({first['id']})", json={"quantity": 1}, headers={"If-Match": "*"})
    assert refused.status_code == 400
    assert "Status must be equal to 'Open'" in refused.json()["error"]["message"]


def test_ship_and_invoice_posts_a_shipment_and_an_invoice(
    client: httpx.Client, base_url: str
) -> None:
    std = standard_api(base_url)
    order = _order(client, base_url)
    response = client.post(f"{std}/salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")
    assert response.status_code == 204
    invoices = _ok(
        client.get(
            f"{std}/salesInvoices", params={"$filter": f"orderNumber eq '{order['number']}'"}
        )
    ).json()["value"]
    shipments = _ok(
        client.get(
            f"{std}/salesShipments", params={"$filter": f"orderNumber eq '{order['number']}'"}
        )
    ).json()["value"]
    assert len(invoices) == 1 and len(shipments) == 1
    assert invoices[0]["externalDocumentNumber"] == "ORD-TEST-1"


def test_posted_documents_are_read_only_and_subscribable(
    client: httpx.Client, base_url: str
) -> None:
    std = standard_api(base_url)
    assert client.post(f"{std}/salesShipments", json={}).status_code == 405
    subscription = {
        "notificationUrl": "http://127.0.0.1:9/none",
        "resource": "api/v2.0/companies(7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20)/salesShipments",
        "clientState": "x",
    }
    _ok(client.post("/_sim/config", json={"subscriptionHandshake": False}))
    root = std.split("/companies(")[0]
    assert client.post(f"{root}/subscriptions", json=subscription).status_code == 201


def test_history_generator_pages(client: httpx.Client, base_url: str) -> None:
    std = standard_api(base_url)
    _ok(client.post("/_sim/customers/C00002/history", json={"invoices": 250, "paidShare": 0.5}))
    rows = _ok(
        client.get(
            f"{std}/salesInvoices",
            params={"$filter": "customerNumber eq 'C00002'", "$count": "true"},
            headers={"Prefer": "odata.maxpagesize=100"},
        )
    ).json()
    assert len(rows["value"]) == 100 and "@odata.nextLink" in rows
    assert {row["status"] for row in rows["value"]} == {"Open", "Paid"}
    assert datetime.now(UTC).date().isoformat() >= rows["value"][0]["invoiceDate"]


def test_a_credit_memo_applies_to_its_invoice(client: httpx.Client, base_url: str) -> None:
    """salesCreditMemos (APIV2 - Sales Credit Memos, page 30038): ``invoiceNumber`` is the
    "Applies-to Doc. No." of the invoice it credits; lines in ``salesCreditMemoLines``."""
    std = standard_api(base_url)
    order = _order(client, base_url)
    shipped = _ok(
        client.post(f"/_sim/salesOrders/{order['id']}/ship", json={"invoice": True})
    ).json()
    invoice = shipped["invoice"]
    first_line = order["salesOrderLines"][0]
    memo = _ok(
        client.post(
            f"/_sim/salesInvoices/{invoice['number']}/creditMemo",
            json={"lines": [{"sequence": first_line["sequence"], "quantity": 1}]},
        )
    ).json()["creditMemo"]
    read = _ok(
        client.get(
            f"{std}/salesCreditMemos",
            params={
                "$filter": f"invoiceNumber eq '{invoice['number']}'",
                "$expand": "salesCreditMemoLines",
            },
        )
    ).json()["value"]
    assert [m["number"] for m in read] == [memo["number"]]
    assert read[0]["externalDocumentNumber"] == "ORD-TEST-1"
    assert [(li["lineObjectNumber"], li["quantity"]) for li in read[0]["salesCreditMemoLines"]] == [
        ("IT-000001", 1)
    ]
    after = _ok(client.get(f"{std}/salesInvoices({invoice['id']})")).json()
    assert Decimal(str(after["remainingAmount"])) == Decimal(
        str(invoice["remainingAmount"])
    ) - Decimal(str(memo["totalAmountIncludingTax"]))
    too_much = client.post(
        f"/_sim/salesInvoices/{invoice['number']}/creditMemo",
        json={"lines": [{"sequence": first_line["sequence"], "quantity": 99}]},
    )
    assert too_much.status_code == 400
