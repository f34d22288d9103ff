"""The simulator takes a sales order line above the inventory there is, as Business Central does.

Pinned against Microsoft's source: Base Application codeunit 311 "Item-Check Avail."
(microsoft/BCApps; ``SalesLineCheck`` -> ``SalesLineShowWarning`` -> ``ShowWarning``) compares
the line's outstanding quantity with what is available and, when it is short, shows the
notification "The available inventory for item %1 is lower than the entered quantity at this
location." -- a warning, not an error: the line is created with its full quantity, and that
quantity is outstanding demand ("Qty. on Sales Order") until shipped. Shipping then posts what
is shipped and leaves the rest outstanding (``shippedQuantity`` on APIV2 - Sales Order Lines).
Backorders (issue 19) book the whole ordered quantity relying on this.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from devtools.erp_sim.testing import custom_api, running_simulator, standard_api

SKU = "IT-000001"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running_simulator(seed=42, items=40, customers=12) as url:
        yield url


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 300, f"{response.status_code}: {response.text}"
    return response


def _main_row(client: httpx.Client, base_url: str) -> dict[str, Any]:
    rows = _ok(
        client.get(
            f"{custom_api(base_url)}/itemAvailabilityByLocation",
            params={"$filter": f"itemNumber eq '{SKU}' and locationCode eq 'MAIN'"},
        )
    ).json()["value"]
    return dict(rows[0])


def test_a_line_above_inventory_is_created_whole_and_counts_as_demand_until_shipped(
    base_url: str,
) -> None:
    with httpx.Client(timeout=30) as client:
        row = _main_row(client, base_url)
        _ok(
            client.patch(
                f"{custom_api(base_url)}/itemAvailabilityByLocation({row['id']})",
                json={"inventory": 4, "qtyOnSalesOrders": 0},
                headers={"If-Match": row["@odata.etag"]},
            )
        )
        std = standard_api(base_url)
        main = next(
            loc
            for loc in _ok(client.get(f"{std}/locations")).json()["value"]
            if loc["code"] == "MAIN"
        )
        created = client.post(
            f"{std}/salesOrders",
            json={
                "customerNumber": "C00001",
                "externalDocumentNumber": "ORD-BACKORDER-PIN",
                "salesOrderLines": [
                    {"lineObjectNumber": SKU, "quantity": 10, "locationId": main["id"]}
                ],
            },
        )
        # A warning in BC, never a refusal: 201 with the whole line.
        assert created.status_code == 201, created.text
        order = _ok(
            client.get(
                f"{std}/salesOrders({created.json()['id']})",
                params={"$expand": "salesOrderLines"},
            )
        ).json()
        line = order["salesOrderLines"][0]
        assert Decimal(str(line["quantity"])) == 10
        after = _main_row(client, base_url)
        assert (after["inventory"], after["qtyOnSalesOrders"]) == (4, 10)

        # Shipping the four there are leaves six outstanding, still in the demand.
        _ok(
            client.post(
                f"{base_url}/_sim/salesOrders/{order['id']}/ship",
                json={"lines": [{"sequence": line["sequence"], "quantity": 4}]},
            )
        )
        shipped = _main_row(client, base_url)
        assert (shipped["inventory"], shipped["qtyOnSalesOrders"]) == (0, 6)
        lines = _ok(client.get(f"{std}/salesOrders({order['id']})/salesOrderLines")).json()
        assert Decimal(str(lines["value"][0]["shippedQuantity"])) == 4
