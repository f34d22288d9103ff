"""The ERP simulator over real HTTP: Business Central shapes, paging, ETags, rules, faults."""

from __future__ import annotations

import base64
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devtools.erp_sim.testing import custom_api, running_simulator, standard_api

COMPANY_ID = "7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20"
BLANK_DATE = "0001-01-01"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running_simulator(seed=42, items=300, customers=60) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        _ok(
            http.post(
                "/_sim/reset",
                json={
                    "seed": 42,
                    "items": 300,
                    "customers": 60,
                    "anchorDate": _today().isoformat(),
                },
            )
        )
        _ok(http.post("/_sim/faults", json={}))
        _ok(
            http.post(
                "/_sim/limits",
                json={
                    "maxConcurrent": 5,
                    "requestsPerWindow": 6000,
                    "windowSeconds": 300,
                    "queueSize": 95,
                    "queueTimeoutSeconds": 480,
                },
            )
        )
        _ok(http.post("/_sim/config", json={"creditCheck": False, "reserveOnOrder": False}))
        yield http


@pytest.fixture
def std(base_url: str) -> str:
    return standard_api(base_url)


@pytest.fixture
def cus(base_url: str) -> str:
    return custom_api(base_url)


@pytest.fixture
def fixtures(client: httpx.Client) -> dict[str, Any]:
    return dict(_ok(client.get("/_sim/info")).json()["fixtures"])


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 300, f"{response.status_code}: {response.text}"
    return response


def _read_all(
    client: httpx.Client, url: str, *, page_size: int | None = None, **params: str
) -> tuple[list[dict[str, Any]], int]:
    headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
    rows: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    first = True
    while next_url is not None:
        response = _ok(client.get(next_url, params=params if first else None, headers=headers))
        first = False
        pages += 1
        body = response.json()
        rows.extend(body["value"])
        next_url = body.get("@odata.nextLink")
    return rows, pages


def _one(client: httpx.Client, url: str, flt: str) -> dict[str, Any]:
    rows = _ok(client.get(url, params={"$filter": flt})).json()["value"]
    assert len(rows) == 1, rows
    return dict(rows[0])


def _today() -> date:
    return datetime.now(UTC).date()


def _odata(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ---- addressing and shapes ----------------------------------------------------------------


def test_companies_lists_the_demo_company(client: httpx.Client, base_url: str) -> None:
    body = _ok(client.get("/v2.0/any-tenant/production/api/v2.0/companies")).json()
    assert [c["id"] for c in body["value"]] == [COMPANY_ID]
    company = body["value"][0]
    assert company["name"] == "CRONUS Demo"
    assert {"id", "systemVersion", "name", "displayName", "businessProfileId"} <= company.keys()
    custom = _ok(client.get("/v2.0/t/e/api/contoso/commerceSync/v1.0/companies")).json()
    assert custom["value"][0]["id"] == COMPANY_ID
    single = _ok(client.get(f"/v2.0/t/e/api/v2.0/companies({COMPANY_ID})")).json()
    assert single["name"] == "CRONUS Demo"
    unknown = client.get("/v2.0/t/e/api/v2.0/companies(00000000-0000-0000-0000-000000000001)/items")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "BadRequest_NotFound"


def test_entity_sets_live_on_the_right_api(
    client: httpx.Client, std: str, cus: str, base_url: str
) -> None:
    for name in ("items", "customers", "salesOrders", "salesQuotes", "locations", "itemCategories"):
        assert _ok(client.get(f"{std}/{name}", params={"$top": "1"})).json()["value"] is not None
    for name in (
        "priceListLines",
        "itemAvailabilityByLocation",
        "customerPricingProfiles",
        "customerCreditSummaries",
        "itemContent",
    ):
        assert _ok(client.get(f"{cus}/{name}", params={"$top": "1"})).json()["value"]
        wrong = client.get(f"{std}/{name}")
        assert wrong.status_code == 404, name
    assert client.get(f"{cus}/items").status_code == 404
    other_pages = custom_api(base_url, publisher="acme", group="sync", version="v2.5")
    assert client.get(f"{other_pages}/priceListLines", params={"$top": "1"}).status_code == 200
    locations = _ok(client.get(f"{std}/locations")).json()["value"]
    assert sorted(row["code"] for row in locations) == ["EAST", "MAIN", "WEST"]
    refused = client.post(f"{std}/locations", json={"code": "NORTH"})
    assert refused.status_code == 405
    assert refused.json()["error"]["code"] == "BadRequest_MethodNotAllowed"


def test_rows_carry_etags_timestamps_and_bc_field_names(
    client: httpx.Client, std: str, cus: str
) -> None:
    item = _ok(client.get(f"{std}/items", params={"$top": "1"})).json()["value"][0]
    for field in (
        "@odata.etag", "id", "number", "displayName", "type", "blocked", "gtin", "inventory",
        "unitPrice", "priceIncludesTax", "unitCost", "baseUnitOfMeasureCode",
        "itemCategoryCode", "lastModifiedDateTime",
    ):  # fmt: skip
        assert field in item, field
    assert item["@odata.etag"].startswith('W/"')
    modified = datetime.fromisoformat(item["lastModifiedDateTime"])
    assert modified.tzinfo is not None and modified < datetime.now(UTC)
    line = _ok(client.get(f"{cus}/priceListLines", params={"$top": "1"})).json()["value"][0]
    assert set(line) >= {
        "priceListCode", "sourceType", "sourceNo", "assetType", "assetNo", "variantCode",
        "unitOfMeasureCode", "minimumQuantity", "amountType", "unitPrice", "lineDiscountPercent",
        "allowLineDisc", "startingDate", "endingDate", "currencyCode", "lastModifiedDateTime",
    }  # fmt: skip
    assert isinstance(line["unitPrice"], int | float)
    customer = _ok(client.get(f"{std}/customers", params={"$top": "1"})).json()["value"][0]
    detail = _ok(client.get(f"{std}/customers({customer['id']})/customerFinancialDetails")).json()
    assert len(detail["value"]) == 1
    assert detail["value"][0]["balance"] == customer["balanceDue"]
    assert {"balance", "totalSalesExcludingTax", "overdueAmount"} <= detail["value"][0].keys()


def test_money_survives_decimal_conversion(client: httpx.Client, cus: str) -> None:
    rows, _ = _read_all(client, f"{cus}/priceListLines")
    fine = 0
    for row in rows:
        price = Decimal(str(row["unitPrice"]))
        assert price == price.quantize(Decimal("0.00001"))
        if price != price.quantize(Decimal("0.01")):
            fine += 1
    assert fine > 0, "some prices should have 3-5 decimals"


# ---- paging -------------------------------------------------------------------------------


def test_paging_with_maxpagesize_returns_every_row_exactly_once(
    client: httpx.Client, cus: str
) -> None:
    everything = _ok(client.get(f"{cus}/priceListLines")).json()
    assert "@odata.nextLink" not in everything
    all_ids = [row["id"] for row in everything["value"]]
    assert len(all_ids) > 500

    page_size = 97
    seen: list[str] = []
    url: str | None = f"{cus}/priceListLines"
    pages = 0
    while url is not None:
        response = _ok(client.get(url, headers={"Prefer": f"odata.maxpagesize={page_size}"}))
        assert response.headers["Preference-Applied"] == f"odata.maxpagesize={page_size}"
        body = response.json()
        assert len(body["value"]) <= page_size
        seen.extend(row["id"] for row in body["value"])
        pages += 1
        if pages == 2:
            # Change rows already read and rows still ahead: neither may repeat or vanish.
            for row in [*body["value"][:3], *everything["value"][-3:]]:
                patched = client.patch(
                    f"{cus}/priceListLines({row['id']})",
                    json={"allowLineDisc": not row["allowLineDisc"]},
                    headers={"If-Match": "*"},
                )
                _ok(patched)
        url = body.get("@odata.nextLink")
        if url is not None:
            assert url.startswith(cus.split("/v2.0/")[0])
            assert "$skiptoken=" in url
    assert pages == math.ceil(len(all_ids) / page_size)
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(all_ids)


def test_paging_with_filter_top_and_skip(client: httpx.Client, cus: str) -> None:
    discounts, pages = _read_all(
        client, f"{cus}/priceListLines", page_size=10, **{"$filter": "amountType eq 'Discount'"}
    )
    assert pages > 1
    assert all(row["amountType"] == "Discount" for row in discounts)
    everything, _ = _read_all(client, f"{cus}/priceListLines")
    expected = {row["id"] for row in everything if row["amountType"] == "Discount"}
    assert [row["id"] for row in discounts] == sorted(expected)

    top, pages = _read_all(client, f"{cus}/priceListLines", page_size=10, **{"$top": "25"})
    assert len(top) == 25 and pages == 3
    skipped = _ok(client.get(f"{cus}/priceListLines", params={"$skip": "5", "$top": "3"})).json()
    assert [row["id"] for row in skipped["value"]] == [row["id"] for row in everything[5:8]]
    counted = _ok(
        client.get(
            f"{cus}/priceListLines",
            params={"$count": "true", "$top": "1", "$filter": "amountType eq 'Discount'"},
        )
    ).json()
    assert counted["@odata.count"] == len(expected)
    bad = client.get(f"{cus}/priceListLines", params={"$skiptoken": "not-a-token"})
    assert bad.status_code == 400


def test_select_and_expand(client: httpx.Client, std: str) -> None:
    rows = _ok(client.get(f"{std}/items", params={"$select": "number,unitPrice", "$top": "2"}))
    for row in rows.json()["value"]:
        assert set(row) == {"@odata.etag", "number", "unitPrice"}
    assert client.get(f"{std}/items", params={"$select": "nope"}).status_code == 400
    assert client.get(f"{std}/items", params={"$expand": "salesOrderLines"}).status_code == 400


# ---- filters ------------------------------------------------------------------------------


def test_filter_by_last_modified_after_patch(client: httpx.Client, std: str) -> None:
    items, _ = _read_all(client, f"{std}/items")
    watermark = max(row["lastModifiedDateTime"] for row in items)
    after = _ok(
        client.get(f"{std}/items", params={"$filter": f"lastModifiedDateTime gt {watermark}"})
    )
    assert after.json()["value"] == []
    at = _ok(client.get(f"{std}/items", params={"$filter": f"lastModifiedDateTime ge {watermark}"}))
    assert {row["lastModifiedDateTime"] for row in at.json()["value"]} == {watermark}

    target = items[len(items) // 2]
    patched = _ok(
        client.patch(
            f"{std}/items({target['id']})",
            json={"displayName": "Renamed by test"},
            headers={"If-Match": target["@odata.etag"]},
        )
    ).json()
    assert patched["@odata.etag"] != target["@odata.etag"]
    assert patched["lastModifiedDateTime"] > watermark
    changed = _ok(
        client.get(f"{std}/items", params={"$filter": f"lastModifiedDateTime gt {watermark}"})
    ).json()["value"]
    assert [row["id"] for row in changed] == [target["id"]]
    assert changed[0]["displayName"] == "Renamed by test"
    # The product's delta filter: whole seconds, UTC, combined with another condition.
    floor = datetime.fromisoformat(watermark).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    combined = _ok(
        client.get(
            f"{std}/items",
            params={
                "$filter": f"(lastModifiedDateTime gt {floor}) and "
                f"(number eq {_odata(target['number'])})"
            },
        )
    ).json()["value"]
    assert [row["id"] for row in combined] == [target["id"]]


def test_filters_the_product_uses(
    client: httpx.Client, std: str, cus: str, fixtures: dict[str, Any]
) -> None:
    for number in fixtures["oddItemNumbers"]:
        row = _one(client, f"{std}/items", f"number eq {_odata(number)}")
        assert row["number"] == number
        lines = _ok(
            client.get(f"{cus}/priceListLines", params={"$filter": f"assetNo eq {_odata(number)}"})
        )
        assert all(line["assetNo"] == number for line in lines.json()["value"])
        stock = _ok(
            client.get(
                f"{cus}/itemAvailabilityByLocation",
                params={"$filter": f"itemNumber eq {_odata(number)}"},
            )
        ).json()["value"]
        assert stock and all(r["itemNumber"] == number for r in stock)
    customer = fixtures["customers"]["plain"]
    profile = _one(client, f"{cus}/customerPricingProfiles", f"customerNumber eq '{customer}'")
    assert profile["customerPriceGroup"] == "WHOLESALE"
    both = _ok(
        client.get(
            f"{cus}/priceListLines",
            params={"$filter": "sourceType eq 'Customer Price Group' and amountType eq 'Price'"},
        )
    ).json()["value"]
    assert both and all(
        r["sourceType"] == "Customer Price Group" and r["amountType"] == "Price" for r in both
    )
    in_list = _ok(
        client.get(f"{std}/customers", params={"$filter": "number in ('C00001','C00003')"})
    ).json()["value"]
    assert sorted(r["number"] for r in in_list) == ["C00001", "C00003"]


@pytest.mark.parametrize(
    "expression",
    [
        "number eq",
        "nosuchfield eq 'x'",
        "number eq 5",
        "unitPrice gt 'cheap'",
        "blocked gt true",
        "substringof('a', number)",
        "number eq 'x' xor blocked eq true",
        "))",
        "number eq 'unterminated",
        "lastModifiedDateTime gt 2026-13-45T99:00:00Z",
        "attributes eq 'x'",
    ],
)
def test_unsupported_filter_is_a_clear_400(
    client: httpx.Client, std: str, cus: str, expression: str
) -> None:
    url = f"{cus}/itemContent" if "attributes" in expression else f"{std}/items"
    response = client.get(url, params={"$filter": expression})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "BadRequest" and error["message"]


# ---- ETags --------------------------------------------------------------------------------


def test_stale_etag_gets_409_and_a_missing_if_match_400(client: httpx.Client, std: str) -> None:
    customer = _ok(client.get(f"{std}/customers", params={"$top": "1"})).json()["value"][0]
    url = f"{std}/customers({customer['id']})"
    first = _ok(
        client.patch(
            url, json={"creditLimit": 12345.5}, headers={"If-Match": customer["@odata.etag"]}
        )
    ).json()
    assert first["creditLimit"] == 12345.5
    stale = client.patch(
        url, json={"creditLimit": 1}, headers={"If-Match": customer["@odata.etag"]}
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "Request_EntityChanged"
    missing = client.patch(url, json={"creditLimit": 1})
    assert missing.status_code == 400
    stale_delete = client.delete(url, headers={"If-Match": customer["@odata.etag"]})
    assert stale_delete.status_code == 409
    forced = _ok(client.patch(url, json={"creditLimit": 2}, headers={"If-Match": "*"})).json()
    assert forced["creditLimit"] == 2 and forced["@odata.etag"] != first["@odata.etag"]
    assert _ok(client.get(url)).json()["creditLimit"] == 2
    unknown_field = client.patch(url, json={"favouriteColour": "red"}, headers={"If-Match": "*"})
    assert unknown_field.status_code == 400
    assert "favouriteColour" in unknown_field.json()["error"]["message"]


# ---- sales documents ----------------------------------------------------------------------


def _price(client: httpx.Client, **params: str) -> dict[str, str]:
    return dict(_ok(client.get("/_sim/price", params=params)).json())


def _stock(client: httpx.Client, cus: str, item: str, location: str) -> dict[str, Any]:
    return _one(
        client,
        f"{cus}/itemAvailabilityByLocation",
        f"itemNumber eq {_odata(item)} and locationCode eq '{location}'",
    )


def _sellable_items(client: httpx.Client, std: str, count: int) -> list[dict[str, Any]]:
    items = _ok(client.get(f"{std}/items", params={"$filter": "blocked eq false"})).json()["value"]
    chosen = [row for row in items if row["inventory"] > 0 and row["number"].startswith("IT-")]
    return chosen[:count]


def test_deep_insert_creates_an_order_with_priced_lines(
    client: httpx.Client, std: str, cus: str, fixtures: dict[str, Any]
) -> None:
    customer_number = fixtures["customers"]["noCreditLimit"]
    first, second = _sellable_items(client, std, 2)
    expected = _price(
        client,
        customerNumber=customer_number,
        itemNumber=first["number"],
        quantity="3",
        date=_today().isoformat(),
    )
    summary_before = _one(
        client, f"{cus}/customerCreditSummaries", f"customerNumber eq '{customer_number}'"
    )
    created = client.post(
        f"{std}/salesOrders",
        params={"$expand": "salesOrderLines"},  # without it BC answers with the header alone
        json={
            "customerNumber": customer_number,
            "externalDocumentNumber": "web-1001",
            "orderDate": _today().isoformat(),
            "salesOrderLines": [
                {"lineType": "Item", "lineObjectNumber": first["number"], "quantity": 3},
                {"lineObjectNumber": second["number"], "quantity": 2, "unitPrice": 9.99},
            ],
        },
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["number"].startswith("S-ORD")
    assert order["externalDocumentNumber"] == "WEB-1001"  # Code[35] is upper-cased
    assert created.headers["Location"].endswith(f"salesOrders({order['id']})")
    lines = order["salesOrderLines"]
    assert [line["lineObjectNumber"] for line in lines] == [first["number"], second["number"]]
    assert Decimal(str(lines[0]["unitPrice"])) == Decimal(expected["unitPrice"])
    assert Decimal(str(lines[0]["discountPercent"])) == Decimal(expected["lineDiscountPercent"])
    assert Decimal(str(lines[0]["amountExcludingTax"])) == Decimal(expected["lineAmount"])
    assert lines[1]["unitPrice"] == 9.99
    total = sum(Decimal(str(line["amountExcludingTax"])) for line in lines)
    assert Decimal(str(order["totalAmountExcludingTax"])) == total

    fetched = _ok(
        client.get(f"{std}/salesOrders({order['id']})", params={"$expand": "salesOrderLines"})
    )
    assert [line["id"] for line in fetched.json()["salesOrderLines"]] == [
        line["id"] for line in lines
    ]
    nested = _ok(client.get(f"{std}/salesOrders({order['id']})/salesOrderLines")).json()["value"]
    assert [line["id"] for line in nested] == [line["id"] for line in lines]
    by_reference = _one(client, f"{std}/salesOrders", "externalDocumentNumber eq 'WEB-1001'")
    assert by_reference["id"] == order["id"]

    summary_after = _one(
        client, f"{cus}/customerCreditSummaries", f"customerNumber eq '{customer_number}'"
    )
    assert (
        Decimal(str(summary_after["outstandingOrdersAmount"]))
        == Decimal(str(summary_before["outstandingOrdersAmount"])) + total
    )
    location_codes = {
        row["id"]: row["code"] for row in _ok(client.get(f"{std}/locations")).json()["value"]
    }
    location = location_codes[lines[0]["locationId"]]
    stock_rows = {
        r["locationCode"]: r
        for r in _ok(
            client.get(
                f"{cus}/itemAvailabilityByLocation",
                params={"$filter": f"itemNumber eq {_odata(first['number'])}"},
            )
        ).json()["value"]
    }
    first_with_stock = next(
        code
        for code in ("MAIN", "EAST", "WEST")
        if code in stock_rows and stock_rows[code]["inventory"] > 0
    )
    assert location == first_with_stock


def test_order_commits_stock_and_delete_gives_it_back(
    client: httpx.Client, std: str, cus: str, fixtures: dict[str, Any]
) -> None:
    customer_number = fixtures["customers"]["noCreditLimit"]
    item = _sellable_items(client, std, 1)[0]
    locations = {
        row["code"]: row["id"] for row in _ok(client.get(f"{std}/locations")).json()["value"]
    }
    before = _stock(client, cus, item["number"], "MAIN")
    order = _ok(
        client.post(
            f"{std}/salesOrders",
            json={
                "customerNumber": customer_number,
                "salesOrderLines": [
                    {
                        "lineObjectNumber": item["number"],
                        "quantity": 4,
                        "locationId": locations["MAIN"],
                    }
                ],
            },
        )
    ).json()
    during = _stock(client, cus, item["number"], "MAIN")
    assert during["qtyOnSalesOrders"] == before["qtyOnSalesOrders"] + 4
    assert during["reservedQuantity"] == before["reservedQuantity"]
    assert during["@odata.etag"] != before["@odata.etag"]
    assert during["lastModifiedDateTime"] > before["lastModifiedDateTime"]
    stale = client.delete(f"{std}/salesOrders({order['id']})", headers={"If-Match": 'W/"old"'})
    assert stale.status_code == 409
    _ok(
        client.delete(
            f"{std}/salesOrders({order['id']})", headers={"If-Match": order["@odata.etag"]}
        )
    )
    after = _stock(client, cus, item["number"], "MAIN")
    assert after["qtyOnSalesOrders"] == before["qtyOnSalesOrders"]
    assert client.get(f"{std}/salesOrders({order['id']})").status_code == 404

    _ok(client.post("/_sim/config", json={"reserveOnOrder": True}))
    _ok(
        client.post(
            f"{std}/salesOrders",
            json={
                "customerNumber": customer_number,
                "salesOrderLines": [
                    {
                        "lineObjectNumber": item["number"],
                        "quantity": 2,
                        "locationId": locations["MAIN"],
                    }
                ],
            },
        )
    )
    reserved = _stock(client, cus, item["number"], "MAIN")
    assert reserved["reservedQuantity"] == before["reservedQuantity"] + 2


def test_order_validation_like_business_central(
    client: httpx.Client, std: str, fixtures: dict[str, Any]
) -> None:
    item = _sellable_items(client, std, 1)[0]["number"]
    customers = fixtures["customers"]

    def order(
        customer: str, line: dict[str, Any], entity_set: str = "salesOrders"
    ) -> httpx.Response:
        lines_name = "salesOrderLines" if entity_set == "salesOrders" else "salesQuoteLines"
        return client.post(
            f"{std}/{entity_set}", json={"customerNumber": customer, lines_name: [line]}
        )

    line = {"lineObjectNumber": item, "quantity": 1}
    for role, blocked in (("blockedAll", "All"), ("blockedShip", "Ship")):
        refused = order(customers[role], line)
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["code"] == "Application_DialogException"
        assert f"blocked with type {blocked}" in error["message"]
    assert order(customers["blockedInvoice"], line).status_code == 201
    assert order(customers["blockedShip"], line, "salesQuotes").status_code == 201
    assert order(customers["blockedAll"], line, "salesQuotes").status_code == 400

    unknown_customer = order("NOPE-1", line)
    assert (
        unknown_customer.status_code == 400 and "Customer does not exist" in unknown_customer.text
    )
    unknown_item = order(customers["plain"], {"lineObjectNumber": "NO-SUCH-ITEM", "quantity": 1})
    assert unknown_item.status_code == 400 and "Item does not exist" in unknown_item.text
    blocked_item = order(
        customers["plain"], {"lineObjectNumber": fixtures["items"]["blocked"], "quantity": 1}
    )
    assert blocked_item.status_code == 400 and "Blocked must be equal to 'No'" in blocked_item.text
    wrong_unit = order(
        customers["plain"], {"lineObjectNumber": item, "quantity": 1, "unitOfMeasureCode": "PALLET"}
    )
    assert wrong_unit.status_code == 400 and "Unit of Measure" in wrong_unit.text
    boxed = fixtures["items"]["secondUnitBox"]
    in_boxes = order(
        customers["plain"], {"lineObjectNumber": boxed, "quantity": 1, "unitOfMeasureCode": "BOX"}
    )
    assert in_boxes.status_code == 201, in_boxes.text
    negative = order(customers["plain"], {"lineObjectNumber": item, "quantity": -1})
    assert negative.status_code == 400
    nothing_created = _ok(
        client.get(
            f"{std}/salesOrders",
            params={"$filter": f"customerNumber eq '{customers['blockedAll']}'"},
        )
    ).json()["value"]
    assert nothing_created == []


def test_credit_limit_rule_is_configurable(
    client: httpx.Client, std: str, fixtures: dict[str, Any]
) -> None:
    customer = fixtures["customers"]["creditNearlyExhausted"]  # limit 5,000, balance 4,900
    item = _sellable_items(client, std, 1)[0]
    body = {
        "customerNumber": customer,
        "salesOrderLines": [{"lineObjectNumber": item["number"], "quantity": 1, "unitPrice": 150}],
    }
    _ok(client.post("/_sim/config", json={"creditCheck": True}))  # a stricter tenant, opt-in
    refused = client.post(f"{std}/salesOrders", json=body)
    assert refused.status_code == 400 and "credit limit" in refused.json()["error"]["message"]
    small = {**body, "salesOrderLines": [{**body["salesOrderLines"][0], "unitPrice": 60}]}
    assert client.post(f"{std}/salesOrders", json=small).status_code == 201
    # 4,900 balance + 60 outstanding + 60 more is over 5,000 only with the first order counted.
    assert client.post(f"{std}/salesOrders", json=small).status_code == 400
    _ok(client.post("/_sim/config", json={"creditCheck": False}))
    assert client.post(f"{std}/salesOrders", json=body).status_code == 201


def test_quote_with_lines_and_added_line(
    client: httpx.Client, std: str, fixtures: dict[str, Any]
) -> None:
    items = _sellable_items(client, std, 2)
    quote = _ok(
        client.post(
            f"{std}/salesQuotes",
            json={
                "customerNumber": fixtures["customers"]["euro"],
                "salesQuoteLines": [{"lineObjectNumber": items[0]["number"], "quantity": 5}],
            },
        )
    ).json()
    assert quote["currencyCode"] == "EUR" and quote["number"].startswith("S-QUO")
    assert "salesQuoteLines" not in quote  # lines only inline when $expand asks for them
    listed = _ok(client.get(f"{std}/salesQuotes({quote['id']})/salesQuoteLines")).json()
    assert len(listed["value"]) == 1
    added = client.post(
        f"{std}/salesQuotes({quote['id']})/salesQuoteLines",
        json={"lineObjectNumber": items[1]["number"], "quantity": 1},
    )
    assert added.status_code == 201 and added.json()["sequence"] == 20000
    refreshed = _ok(client.get(f"{std}/salesQuotes({quote['id']})")).json()
    assert refreshed["@odata.etag"] != quote["@odata.etag"]
    lines = _ok(client.get(f"{std}/salesQuotes({quote['id']})/salesQuoteLines")).json()["value"]
    assert Decimal(str(refreshed["totalAmountExcludingTax"])) == sum(
        Decimal(str(line["amountExcludingTax"])) for line in lines
    )


# ---- pricing --------------------------------------------------------------------------------


def _brute_force_price(
    lines: list[dict[str, Any]],
    *,
    item: dict[str, Any],
    qty_per_unit: Decimal,
    customer: str,
    price_group: str,
    allow_customer_discount: bool,
    campaigns: str,
    quantity: Decimal,
    currency: str,
    unit: str,
    on: date,
) -> tuple[Decimal, Decimal, Decimal, str | None]:
    """The rules of the Business Central doc, written out the slow and obvious way."""
    rates = {"USD": Decimal(1), "EUR": Decimal("1.08"), "JPY": Decimal("0.0067")}
    unit_precision = {"USD": Decimal("0.00001"), "EUR": Decimal("0.00001"), "JPY": Decimal("0.01")}
    amount_precision = {"USD": Decimal("0.01"), "EUR": Decimal("0.01"), "JPY": Decimal("1")}
    applicable = []
    for line in lines:
        source_ok = (
            line["sourceType"] == "All Customers"
            # A campaign's line only for the customers in its target group.
            or (line["sourceType"] == "Campaign" and line["sourceNo"] in campaigns.split(","))
            or (line["sourceType"] == "Customer" and line["sourceNo"] == customer)
            or (
                line["sourceType"] == "Customer Price Group"
                and price_group != ""
                and line["sourceNo"] == price_group
            )
        )
        start, end = line["startingDate"], line["endingDate"]
        date_ok = (start == BLANK_DATE or date.fromisoformat(start) <= on) and (
            end == BLANK_DATE or on <= date.fromisoformat(end)
        )
        if (
            source_ok
            and date_ok
            and (line["currencyCode"] or "USD") == currency
            and (line["unitOfMeasureCode"] or item["baseUnitOfMeasureCode"]) == unit
            and Decimal(str(line["minimumQuantity"])) <= quantity
        ):
            applicable.append(line)
    prices = [line for line in applicable if line["amountType"] in ("Price", "Any")]
    if prices:
        best = min(Decimal(str(line["unitPrice"])) for line in prices)
        winners = [line for line in prices if Decimal(str(line["unitPrice"])) == best]
        winner: dict[str, Any] | None = min(winners, key=lambda line: str(line["priceListCode"]))
        unit_price = best
    else:
        winner = None
        raw = Decimal(str(item["unitPrice"])) * qty_per_unit / rates[currency]
        unit_price = (raw / unit_precision[currency]).quantize(
            Decimal(1), ROUND_HALF_UP
        ) * unit_precision[currency]
    discount = max(
        (
            Decimal(str(line["lineDiscountPercent"]))
            for line in applicable
            if line["amountType"] in ("Discount", "Any")
        ),
        default=Decimal(0),
    )
    if (winner is not None and not winner["allowLineDisc"]) or not allow_customer_discount:
        discount = Decimal(0)
    raw_amount = quantity * unit_price * (100 - discount) / 100
    amount = (raw_amount / amount_precision[currency]).quantize(
        Decimal(1), ROUND_HALF_UP
    ) * amount_precision[currency]
    return unit_price, discount, amount, winner["priceListCode"] if winner else None


def _line(code: str, **fields: Any) -> dict[str, Any]:
    """A price list line body for PRICE-TEST; dates may be given as ``date``."""
    body = {"priceListCode": code, "assetNo": "PRICE-TEST"}
    for name, value in fields.items():
        body[name] = value.isoformat() if isinstance(value, date) else value
    return body


def test_price_endpoint_agrees_with_brute_force_on_handpicked_lines(
    client: httpx.Client, std: str, cus: str, fixtures: dict[str, Any]
) -> None:
    _ok(
        client.post(
            f"{std}/items", json={"number": "PRICE-TEST", "displayName": "Priced", "unitPrice": 100}
        )
    )
    plain = fixtures["customers"]["plain"]  # price group WHOLESALE, line discounts allowed
    today = _today()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    group = {"sourceType": "Customer Price Group", "sourceNo": "WHOLESALE"}
    discount = {"amountType": "Discount"}
    lines = [
        _line("T-ALL", unitPrice=90),
        _line("T-ALL", unitPrice=80, minimumQuantity=10),
        _line("T-CUST", sourceType="Customer", sourceNo=plain, unitPrice=85, allowLineDisc=False),
        _line("T-GRP", **group, unitPrice=88.5),
        _line("T-OLD", unitPrice=50, startingDate=today - timedelta(days=30), endingDate=yesterday),
        _line("T-NEXT", unitPrice=40, startingDate=tomorrow),
        _line("T-DISC", **discount, lineDiscountPercent=10, minimumQuantity=5),
        _line("T-DISC-GRP", **group, **discount, lineDiscountPercent=15, minimumQuantity=20),
        _line("T-EUR", unitPrice=77.77, currencyCode="EUR"),
        _line("T-FINE", unitPrice=12.34567, minimumQuantity=100),
        _line(
            "T-CAMP",
            sourceType="Campaign",
            sourceNo="SPRING",
            unitPrice=70,
            minimumQuantity=50,
            startingDate=yesterday,
            endingDate=tomorrow,
            allowLineDisc=False,
        ),
    ]
    for line in lines:
        _ok(client.post(f"{cus}/priceListLines", json=line))
    stored = _ok(
        client.get(f"{cus}/priceListLines", params={"$filter": "assetNo eq 'PRICE-TEST'"})
    ).json()["value"]
    assert len(stored) == len(lines)
    item = _one(client, f"{std}/items", "number eq 'PRICE-TEST'")
    other = fixtures["customers"]["noLineDiscount"]
    profiles = {
        p["customerNumber"]: p for p in _read_all(client, f"{cus}/customerPricingProfiles")[0]
    }

    cases = [
        (plain, "1", None, today),
        (plain, "4.99999", None, today),
        (plain, "5", None, today),
        (plain, "9.99999", None, today),
        (plain, "10", None, today),
        (plain, "19", None, today),
        (plain, "20", None, today),
        (plain, "50", None, today),
        (plain, "100", None, today),
        (plain, "10", None, yesterday),
        (plain, "10", None, tomorrow),
        (plain, "1", "EUR", today),
        (plain, "3", "JPY", today),
        (other, "1", None, today),
        (other, "25", None, today),
        (fixtures["customers"]["euro"], "2", None, today),
        (fixtures["customers"]["euro"], "2", "USD", today),
    ]
    for customer, quantity, currency, on in cases:
        params = {
            "customerNumber": customer,
            "itemNumber": "PRICE-TEST",
            "quantity": quantity,
            "date": on.isoformat(),
        }
        if currency:
            params["currencyCode"] = currency
        answer = _price(client, **params)
        profile = profiles[customer]
        wanted_currency = currency or (profile["currencyCode"] or "USD")
        unit_price, discount, amount, code = _brute_force_price(
            stored,
            item=item,
            qty_per_unit=Decimal(1),
            customer=customer,
            price_group=profile["customerPriceGroup"],
            allow_customer_discount=profile["allowLineDisc"],
            campaigns=profile["activeCampaigns"],
            quantity=Decimal(quantity),
            currency=wanted_currency,
            unit="PCS",
            on=on,
        )
        case = (customer, quantity, currency, on)
        assert Decimal(answer["unitPrice"]) == unit_price, case
        assert Decimal(answer["lineDiscountPercent"]) == discount, case
        assert Decimal(answer["lineAmount"]) == amount, case
        assert answer["priceListCode"] == code, case

    # A few answers worked out by hand, so the brute force itself is checked too.
    def ask(quantity: str, **extra: str) -> dict[str, str]:
        return _price(
            client,
            customerNumber=plain,
            itemNumber="PRICE-TEST",
            quantity=quantity,
            date=today.isoformat(),
            **extra,
        )

    assert (ask("1")["unitPrice"], ask("1")["lineDiscountPercent"]) == ("85.00", "0")  # T-CUST
    assert ask("10") == {
        **ask("10"),
        "unitPrice": "80.00",
        "lineDiscountPercent": "10",
        "lineAmount": "720.00",
        "priceListCode": "T-ALL",
    }
    assert ask("20")["lineDiscountPercent"] == "15"
    assert (
        ask("50")["unitPrice"] == "70.00" and ask("50")["lineDiscountPercent"] == "0"
    )  # campaign, no disc
    # 100 x 12.34567 = 1234.567, less the 15 % group discount = 1049.38195 -> 1049.38
    assert ask("100")["unitPrice"] == "12.34567" and ask("100")["lineAmount"] == "1049.38"
    assert (
        ask("3", currencyCode="JPY")["lineAmount"] == "44776"
    )  # 3 x 14925.37 (list price / 0.0067)
    assert (
        _price(
            client,
            customerNumber=plain,
            itemNumber="PRICE-TEST",
            quantity="10",
            date=yesterday.isoformat(),
        )["unitPrice"]
        == "50.00"
    )
    assert (
        _price(
            client,
            customerNumber=plain,
            itemNumber="PRICE-TEST",
            quantity="10",
            date=tomorrow.isoformat(),
        )["unitPrice"]
        == "40.00"
    )
    assert (
        client.get(
            "/_sim/price", params={"customerNumber": "NOPE", "itemNumber": "PRICE-TEST"}
        ).status_code
        == 404
    )
    assert (
        client.get(
            "/_sim/price",
            params={"customerNumber": plain, "itemNumber": "PRICE-TEST", "currencyCode": "XXX"},
        ).status_code
        == 400
    )


def test_price_endpoint_agrees_with_brute_force_on_generated_data(
    client: httpx.Client, std: str, cus: str
) -> None:
    items = {row["number"]: row for row in _read_all(client, f"{std}/items")[0]}
    customers = [row for row in _read_all(client, f"{std}/customers")[0]]
    profiles = {
        p["customerNumber"]: p for p in _read_all(client, f"{cus}/customerPricingProfiles")[0]
    }
    all_lines = _read_all(client, f"{cus}/priceListLines")[0]
    units: dict[str, dict[str, Decimal]] = {}
    for row in _read_all(client, f"{cus}/itemUnitsOfMeasure")[0]:
        units.setdefault(row["itemNumber"], {})[row["code"]] = Decimal(
            str(row["qtyPerUnitOfMeasure"])
        )
    by_item: dict[str, list[dict[str, Any]]] = {}
    for line in all_lines:
        by_item.setdefault(line["assetNo"], []).append(line)
    rng = random.Random(5)
    today = _today()
    checked = 0
    for _ in range(60):
        item = items[rng.choice(sorted(by_item))]
        customer = rng.choice(customers)["number"]
        unit = rng.choice(sorted(units[item["number"]]))
        quantity = Decimal(rng.choice(["1", "2", "9", "10", "24", "50", "60", "2.5"]))
        on = today + timedelta(days=rng.choice([-200, -61, -5, 0, 0, 0, 5, 45]))
        profile = profiles[customer]
        currency = rng.choice([None, None, "EUR", "USD"])
        answer = _price(
            client,
            customerNumber=customer,
            itemNumber=item["number"],
            quantity=str(quantity),
            unitOfMeasureCode=unit,
            date=on.isoformat(),
            **({"currencyCode": currency} if currency else {}),
        )
        expected = _brute_force_price(
            by_item[item["number"]],
            item=item,
            qty_per_unit=units[item["number"]][unit],
            customer=customer,
            price_group=profile["customerPriceGroup"],
            allow_customer_discount=profile["allowLineDisc"],
            campaigns=profile["activeCampaigns"],
            quantity=quantity,
            currency=currency or (profile["currencyCode"] or "USD"),
            unit=unit,
            on=on,
        )
        got = (
            Decimal(answer["unitPrice"]),
            Decimal(answer["lineDiscountPercent"]),
            Decimal(answer["lineAmount"]),
            answer["priceListCode"],
        )
        assert got == expected, (item["number"], customer, quantity, unit, on, currency)
        checked += 1
    assert checked == 60


# ---- limits and faults ------------------------------------------------------------------


def test_request_window_produces_429_with_retry_after_and_stats_count_it(
    client: httpx.Client, std: str
) -> None:
    _ok(client.post("/_sim/limits", json={"requestsPerWindow": 3, "windowSeconds": 60}))
    _ok(client.post("/_sim/stats/reset"))
    token = {"Authorization": "Bearer principal-a"}
    for _ in range(3):
        _ok(client.get(f"{std}/items", params={"$top": "1"}, headers=token))
    throttled = client.get(f"{std}/items", params={"$top": "1"}, headers=token)
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert throttled.json()["error"]["code"] == "Application_TooManyRequests"
    # Limits are per principal: another token still has its whole budget.
    _ok(
        client.get(
            f"{std}/items", params={"$top": "1"}, headers={"Authorization": "Bearer principal-b"}
        )
    )
    stats = _ok(client.get("/_sim/stats")).json()
    assert stats["throttled"] == 1
    assert stats["requests"]["items"]["GET"] == {"200": 4, "429": 1}
    # Control routes are never throttled.
    for _ in range(5):
        _ok(client.get("/_sim/stats"))


def _entra_like_token(claims: dict[str, str]) -> str:
    """An unsigned JWT shaped like an Entra access token (the simulator reads its claims)."""

    def part(value: dict[str, str]) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig-{uuid.uuid4().hex}"


def test_limits_count_per_app_identity_not_per_token(client: httpx.Client, std: str) -> None:
    """Business Central counts its limits per user or service principal: "Each user or service
    principal can submit a maximum of 6,000 requests within a five-minute sliding window"
    (learn.microsoft.com training module work-with-api, unit 4-limits) and processes 5 OData
    requests at once, queueing up to 95 (MicrosoftDocs/dynamics365smb-devitpro-pb,
    dev-itpro/administration/operational-limits-online.md, OData request limits). So a fresh
    token of the same Entra app shares the app's budget, and another app has its own."""
    _ok(client.post("/_sim/limits", json={"requestsPerWindow": 2, "windowSeconds": 60}))
    app_a = {"tid": "tenant-1", "oid": "sp-object-a", "appid": "app-a"}
    first, refreshed = _entra_like_token(app_a), _entra_like_token(app_a)
    assert first != refreshed
    for token in (first, refreshed):
        _ok(client.get(f"{std}/items", params={"$top": "1"}, headers=_bearer(token)))
    # A third request of app A, under either token, is over A's budget.
    throttled = client.get(f"{std}/items", params={"$top": "1"}, headers=_bearer(first))
    assert throttled.status_code == 429
    other = _entra_like_token({"tid": "tenant-1", "oid": "sp-object-b", "appid": "app-b"})
    _ok(client.get(f"{std}/items", params={"$top": "1"}, headers=_bearer(other)))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_requests_beyond_the_concurrency_limit_queue_then_get_429(
    client: httpx.Client, std: str, base_url: str
) -> None:
    """Like BC: 5 (here 1) processed at once, the next ones wait in a bounded queue, one more
    is refused at once with 429 and Retry-After."""
    _ok(client.post("/_sim/limits", json={"maxConcurrent": 1, "queueSize": 1}))
    _ok(client.post("/_sim/stats/reset"))
    _ok(client.post("/_sim/hold", json={"slots": 1, "seconds": 1.5}))
    results: dict[str, Any] = {}

    def queued_request() -> None:
        started = time.monotonic()
        with httpx.Client(timeout=30) as other:
            results["status"] = other.get(f"{std}/items", params={"$top": "1"}).status_code
        results["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=queued_request)
    worker.start()
    deadline = time.monotonic() + 10
    while _ok(client.get("/_sim/stats")).json()["queued"] < 1:
        assert time.monotonic() < deadline, "the request never queued"
        time.sleep(0.01)
    refused = client.get(f"{std}/items", params={"$top": "1"})
    worker.join(timeout=30)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # The queued one waited for the held slot, then was answered.
    assert results["status"] == 200 and results["seconds"] >= 1.0
    stats = _ok(client.get("/_sim/stats")).json()
    assert stats["queuedMax"] == 1 and stats["throttled"] == 1


def test_a_request_queued_too_long_gets_503(client: httpx.Client, std: str) -> None:
    _ok(client.post("/_sim/limits", json={"maxConcurrent": 1, "queueTimeoutSeconds": 0.3}))
    _ok(client.post("/_sim/hold", json={"slots": 1, "seconds": 1}))
    waited = client.get(f"{std}/items", params={"$top": "1"})
    assert waited.status_code == 503
    assert waited.json()["error"]["code"] == "ServiceUnavailable"
    time.sleep(1.0)
    assert client.get(f"{std}/items", params={"$top": "1"}).status_code == 200


def test_a_queued_create_commits_after_its_client_gave_up(
    client: httpx.Client, std: str, cus: str
) -> None:
    """BC does not abandon a queued request when the caller stops waiting: it commits."""
    _ok(client.post("/_sim/limits", json={"maxConcurrent": 1}))
    _ok(client.post("/_sim/hold", json={"slots": 1, "seconds": 1.5}))
    marker = f"Q-{uuid.uuid4().hex[:10]}".upper()
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=0.5) as impatient:
        impatient.post(
            f"{std}/salesOrders",
            json={"customerNumber": "C00001", "externalDocumentNumber": marker},
        )
    assert _ok(client.get("/_sim/stats")).json()["queued"] == 1  # still waiting for a slot
    # A lookup queues behind it (first in, first out) and sees it once it has committed.
    found = client.get(
        f"{std}/salesOrders", params={"$filter": f"externalDocumentNumber eq '{marker}'"}
    ).json()["value"]
    assert len(found) == 1


def test_outage_throttle_and_error_faults(client: httpx.Client, std: str) -> None:
    _ok(client.post("/_sim/faults", json={"outage": True}))
    down = client.get(f"{std}/items")
    assert down.status_code == 503 and down.json()["error"]["code"] == "ServiceUnavailable"
    assert _ok(client.get("/_sim/info")).json()["faults"]["outage"] is True
    _ok(client.post("/_sim/faults", json={"throttle": True}))
    throttled = client.get(f"{std}/customers")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    _ok(client.post("/_sim/faults", json={"errorRate": 1}))
    assert client.get(f"{std}/customers").status_code == 500
    _ok(client.post("/_sim/faults", json={}))
    assert client.get(f"{std}/customers").status_code == 200
    stats = _ok(client.get("/_sim/stats")).json()
    assert stats["outageRefusals"] == 1 and stats["injectedErrors"] == 1
    assert client.post("/_sim/faults", json={"errorRate": 2}).status_code == 400


def test_dropped_response_after_commit(
    client: httpx.Client, std: str, fixtures: dict[str, Any]
) -> None:
    item = _sellable_items(client, std, 1)[0]["number"]
    customer = fixtures["customers"]["noCreditLimit"]

    def post(reference: str) -> httpx.Response:
        return client.post(
            f"{std}/salesOrders",
            json={
                "customerNumber": customer,
                "externalDocumentNumber": reference,
                "salesOrderLines": [{"lineObjectNumber": item, "quantity": 1}],
            },
        )

    _ok(client.post("/_sim/faults", json={"dropResponseAfterCommit": 1}))
    lost = post("LOST-1")
    assert lost.status_code == 500
    assert (
        _one(client, f"{std}/salesOrders", "externalDocumentNumber eq 'LOST-1'")["customerNumber"]
        == customer
    )
    assert post("KEPT-1").status_code == 201

    _ok(client.post("/_sim/faults", json={"dropResponseAfterCommit": 1, "dropMode": "close"}))
    with pytest.raises(httpx.TransportError):
        post("LOST-2")
    assert (
        _one(client, f"{std}/salesOrders", "externalDocumentNumber eq 'LOST-2'")["customerNumber"]
        == customer
    )
    assert _ok(client.get("/_sim/stats")).json()["droppedResponses"] == 2


# ---- reset and determinism ----------------------------------------------------------------


def _snapshot(client: httpx.Client, std: str, cus: str) -> list[Any]:
    return [
        _read_all(client, f"{std}/items")[0],
        _read_all(client, f"{std}/customers")[0],
        _read_all(client, f"{cus}/priceListLines")[0],
        _read_all(client, f"{cus}/itemAvailabilityByLocation")[0],
        _read_all(client, f"{cus}/itemContent")[0],
    ]


def test_reset_is_deterministic(
    client: httpx.Client, std: str, cus: str, fixtures: dict[str, Any]
) -> None:
    item = _sellable_items(client, std, 1)[0]["number"]
    _ok(
        client.post(
            f"{std}/salesOrders",
            json={
                "customerNumber": fixtures["customers"]["noCreditLimit"],
                "salesOrderLines": [{"lineObjectNumber": item, "quantity": 1}],
            },
        )
    )
    anchor = {"anchorDate": "2026-03-01"}
    first_info = _ok(
        client.post("/_sim/reset", json={"seed": 7, "items": 120, "customers": 20, **anchor})
    ).json()
    assert first_info["counts"]["items"] == 120 and first_info["counts"]["salesOrders"] == 0
    first = _snapshot(client, std, cus)
    _ok(client.post("/_sim/reset", json={"seed": 7, "items": 120, "customers": 20, **anchor}))
    assert _snapshot(client, std, cus) == first
    _ok(client.post("/_sim/reset", json={"seed": 8, "items": 120, "customers": 20, **anchor}))
    assert _snapshot(client, std, cus) != first


def test_generated_data_covers_the_cases_the_product_must_handle(
    client: httpx.Client, std: str, cus: str, fixtures: dict[str, Any]
) -> None:
    lines = _read_all(client, f"{cus}/priceListLines")[0]
    assert {line["sourceType"] for line in lines} == {
        "All Customers",
        "Customer",
        "Customer Price Group",
        "Campaign",
    }
    assert {line["amountType"] for line in lines} == {"Price", "Discount", "Any"}
    assert {line["currencyCode"] for line in lines} == {"", "EUR"}
    assert any(not line["allowLineDisc"] for line in lines)
    assert any(line["minimumQuantity"] > 0 for line in lines)
    today = _today().isoformat()
    assert any(line["endingDate"] != BLANK_DATE and line["endingDate"] < today for line in lines)
    assert any(line["startingDate"] > today for line in lines)
    assert 3 <= len(lines) / 300 <= 5
    customers = _read_all(client, f"{std}/customers")[0]
    assert {"_x0020_", "Ship", "All"} <= {c["blocked"] for c in customers}
    assert {"USD", "EUR"} <= {c["currencyCode"] for c in customers}
    content = {row["itemNumber"]: row for row in _read_all(client, f"{cus}/itemContent")[0]}
    malformed = fixtures["malformedContent"]
    by_role = fixtures["items"]
    assert content[by_role["mediaUrlNotAUrl"]]["media"][0]["url"] == "not a url"
    assert content[by_role["mediaUrlEmpty"]]["media"][0]["url"] == ""
    assert any(a["name"] == "" for a in content[by_role["attributeWithoutName"]]["attributes"])
    assert len(content[by_role["hugeDescription"]]["description"]) == 60_000
    assert set(malformed) <= set(content)
    empty_name = _one(client, f"{std}/items", f"number eq '{by_role['emptyDisplayName']}'")
    assert empty_name["displayName"] == ""
    regular = content[by_role["plain"]]
    assert (
        len(regular["description"]) > 200
        and regular["attributes"]
        and regular["media"][0]["url"].startswith("https://")
    )
    stock = _read_all(client, f"{cus}/itemAvailabilityByLocation")[0]
    assert {row["locationCode"] for row in stock} == {"MAIN", "EAST", "WEST"}
    assert any(row["reservedQuantity"] > 0 for row in stock) and any(
        row["qtyOnPurchaseOrders"] > 0 for row in stock
    )


# ---- webhooks -------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    answer = 200

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        token = parse_qs(urlsplit(self.path).query).get("validationToken")
        payload = token[0] if token else body.decode("utf-8")
        self.received.append({"path": self.path, "body": payload})
        self.send_response(200 if token else self.answer)
        self.send_header("Content-Type", "text/plain")
        data = (token[0] if token else "").encode("utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_subscriptions_and_notifications(client: httpx.Client, std: str, base_url: str) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        notify_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        subscriptions = f"{base_url}/v2.0/local/sandbox/api/v2.0/subscriptions"
        resource = f"api/v2.0/companies({COMPANY_ID})/items"
        created = client.post(
            subscriptions,
            json={"notificationUrl": notify_url, "resource": resource, "clientState": "secret-1"},
        )
        assert created.status_code == 201, created.text
        subscription = created.json()
        # Business Central validates the URL before it keeps the subscription.
        assert len(_Receiver.received) == 1 and "validationToken=" in _Receiver.received[0]["path"]
        lifetime = datetime.fromisoformat(
            subscription["expirationDateTime"]
        ) - datetime.fromisoformat(subscription["lastModifiedDateTime"])
        assert abs(lifetime - timedelta(days=3)) < timedelta(seconds=1)
        key = f"{subscriptions}('{subscription['subscriptionId']}')"
        assert client.patch(key, json={"clientState": "x"}).status_code == 400
        renewed = _ok(
            client.patch(
                key,
                json={"clientState": "secret-2"},
                headers={"If-Match": subscription["@odata.etag"]},
            )
        ).json()
        assert (
            renewed["@odata.etag"] != subscription["@odata.etag"]
            and renewed["clientState"] == "secret-2"
        )
        assert renewed["expirationDateTime"] >= subscription["expirationDateTime"]
        assert "validationToken=" in _Receiver.received[-1]["path"]  # again on renewal

        handshake = _ok(
            client.post(
                "/_sim/notify",
                json={"subscriptionId": subscription["subscriptionId"], "handshake": True},
            )
        ).json()
        assert handshake["deliveries"][0]["outcome"] == "validated"
        sent = _ok(
            client.post(
                "/_sim/notify",
                json={"resource": resource, "changeType": "updated", "entityId": "abc"},
            )
        ).json()
        assert sent["deliveries"][0]["outcome"] == "delivered"
        notification = json.loads(_Receiver.received[-1]["body"])["value"][0]
        assert notification["subscriptionId"] == subscription["subscriptionId"]
        assert notification["clientState"] == "secret-2"
        assert notification["resource"] == f"{resource}(abc)"
        assert notification["changeType"] == "updated"

        _Receiver.answer = (
            404  # a 4xx other than 408/429 makes Business Central drop the subscription
        )
        dropped = _ok(client.post("/_sim/notify", json={})).json()
        assert dropped["deliveries"][0]["outcome"] == "subscription deleted"
        assert client.get(key).status_code == 404
    finally:
        _Receiver.answer = 200
        receiver.shutdown()
        receiver.server_close()


def test_control_routes_validate_their_input(client: httpx.Client) -> None:
    assert client.post("/_sim/limits", json={"maxConcurrent": 0}).status_code == 400
    assert client.post("/_sim/faults", json={"latencyMs": -1}).status_code == 400
    assert client.post("/_sim/faults", json={"unknown": 1}).status_code == 400
    assert client.post("/_sim/reset", content=b"{not json").status_code == 400
    assert client.get("/_sim/price", params={"customerNumber": "C00001"}).status_code == 400
    financials = client.post(
        "/_sim/customers/C00001/financials", json={"balance": 10, "overdueAmount": 2}
    )
    assert financials.status_code == 200
    assert financials.json()["creditSummary"]["balance"] == 10


def test_writes_keep_derived_rows_consistent(client: httpx.Client, std: str, cus: str) -> None:
    created = client.post(
        f"{std}/customers",
        json={
            "number": "new-1",
            "displayName": "New Co",
            "currencyCode": "EUR",
            "creditLimit": 500,
        },
    )
    assert created.status_code == 201, created.text
    customer = created.json()
    assert customer["number"] == "NEW-1" and customer["blocked"] == "_x0020_"
    duplicate = client.post(f"{std}/customers", json={"number": "NEW-1"})
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "Internal_EntityWithSameKeyExists"
    profile = _one(client, f"{cus}/customerPricingProfiles", "customerNumber eq 'NEW-1'")
    assert profile["currencyCode"] == "EUR" and profile["customerPriceGroup"] == ""
    summary = _one(client, f"{cus}/customerCreditSummaries", "customerNumber eq 'NEW-1'")
    assert summary["creditLimit"] == 500 and summary["balance"] == 0
    _ok(
        client.patch(
            f"{std}/customers({customer['id']})",
            json={"blocked": "Ship"},
            headers={"If-Match": "*"},
        )
    )
    summary = _one(client, f"{cus}/customerCreditSummaries", "customerNumber eq 'NEW-1'")
    assert summary["blocked"] == "Ship"
    _ok(client.delete(f"{std}/customers({customer['id']})", headers={"If-Match": "*"}))
    assert (
        _ok(
            client.get(
                f"{cus}/customerCreditSummaries", params={"$filter": "customerNumber eq 'NEW-1'"}
            )
        ).json()["value"]
        == []
    )

    item = _ok(client.post(f"{std}/items", json={"number": "STOCK-1", "unitPrice": 5})).json()
    assert item["inventory"] == 0 and item["baseUnitOfMeasureCode"] == "PCS"
    row = _ok(
        client.post(
            f"{cus}/itemAvailabilityByLocation",
            json={"itemNumber": "STOCK-1", "locationCode": "EAST", "inventory": 7},
        )
    ).json()
    again = client.post(
        f"{cus}/itemAvailabilityByLocation", json={"itemNumber": "STOCK-1", "locationCode": "EAST"}
    )
    assert again.status_code == 409  # a duplicate key, as BC answers it
    _ok(
        client.patch(
            f"{cus}/itemAvailabilityByLocation({row['id']})",
            json={"inventory": 12.5},
            headers={"If-Match": row["@odata.etag"]},
        )
    )
    refreshed = _ok(client.get(f"{std}/items({item['id']})")).json()
    assert refreshed["inventory"] == 12.5
    assert refreshed["@odata.etag"] == item["@odata.etag"]  # a FlowField change is no record change
    unknown_location = client.post(
        f"{cus}/itemAvailabilityByLocation", json={"itemNumber": "STOCK-1", "locationCode": "MOON"}
    )
    assert unknown_location.status_code == 400

    line = _ok(
        client.post(
            f"{cus}/priceListLines",
            json={
                "priceListCode": "X",
                "assetNo": "STOCK-1",
                "unitPrice": 4,
                "currencyCode": "USD",
            },
        )
    ).json()
    assert line["currencyCode"] == "" and line["startingDate"] == BLANK_DATE
    bad_dates = {
        "priceListCode": "X",
        "assetNo": "STOCK-1",
        "startingDate": "2026-05-02",
        "endingDate": "2026-05-01",
    }
    assert client.post(f"{cus}/priceListLines", json=bad_dates).status_code == 400
    assert (
        client.post(
            f"{cus}/priceListLines", json={"priceListCode": "X", "assetNo": "NOPE"}
        ).status_code
        == 400
    )
    assert (
        client.post(
            f"{cus}/priceListLines",
            json={"priceListCode": "X", "assetNo": "STOCK-1", "unitPrice": 1.234567},
        ).status_code
        == 400
    )
    _ok(
        client.delete(
            f"{cus}/priceListLines({line['id']})", headers={"If-Match": line["@odata.etag"]}
        )
    )
    assert client.get(f"{cus}/priceListLines({line['id']})").status_code == 404


def test_patch_sales_order_header(client: httpx.Client, std: str, fixtures: dict[str, Any]) -> None:
    item = _sellable_items(client, std, 1)[0]["number"]
    order = _ok(
        client.post(
            f"{std}/salesOrders",
            json={
                "customerNumber": fixtures["customers"]["noCreditLimit"],
                "salesOrderLines": [{"lineObjectNumber": item, "quantity": 1}],
            },
        )
    ).json()
    url = f"{std}/salesOrders({order['id']})"
    patched = _ok(
        client.patch(
            url,
            json={"externalDocumentNumber": "po-77", "requestedDeliveryDate": "2030-01-31"},
            headers={"If-Match": order["@odata.etag"]},
        )
    ).json()
    assert (
        patched["externalDocumentNumber"] == "PO-77"
        and patched["requestedDeliveryDate"] == "2030-01-31"
    )
    assert patched["@odata.etag"] != order["@odata.etag"]
    assert (
        client.patch(url, json={"customerNumber": "C00002"}, headers={"If-Match": "*"}).status_code
        == 400
    )
    assert (
        client.patch(
            url, json={"externalDocumentNumber": "X"}, headers={"If-Match": order["@odata.etag"]}
        ).status_code
        == 409
    )


def test_notifications_only_go_to_loopback(client: httpx.Client, base_url: str) -> None:
    subscriptions = f"{base_url}/v2.0/local/sandbox/api/v2.0/subscriptions"
    body = {
        "notificationUrl": "https://hooks.example.com/x",
        "resource": f"api/v2.0/companies({COMPANY_ID})/items",
    }
    # The handshake cannot reach it, so the subscription is refused...
    assert client.post(subscriptions, json=body).status_code == 400
    _ok(client.post("/_sim/config", json={"subscriptionHandshake": False}))
    try:
        created = _ok(client.post(subscriptions, json=body)).json()
        deliveries = _ok(
            client.post("/_sim/notify", json={"subscriptionId": created["subscriptionId"]})
        ).json()["deliveries"]
        # ... and without the handshake, nothing outside loopback is ever called.
        assert [d["outcome"] for d in deliveries] == ["refused: not a loopback URL"]
        key = f"{subscriptions}('{created['subscriptionId']}')"
        assert client.delete(key, headers={"If-Match": "*"}).status_code == 204
    finally:
        _ok(client.post("/_sim/config", json={"subscriptionHandshake": True}))
    assert (
        client.post(subscriptions, json={"notificationUrl": "ftp://x", "resource": "r"}).status_code
        == 400
    )


@pytest.mark.parametrize(
    ("root", "resource", "accepted"),
    [
        ("v2.0", "api/v2.0/companies({c})/items", True),
        ("v2.0", "/api/v2.0/companies({c})/customers", True),
        (
            "contoso/commerceSync/v1.0",
            "api/contoso/commerceSync/v1.0/companies({c})/priceListLines",
            True,
        ),
        # A custom page at the standard root, or the reverse: refused as BC does.
        ("v2.0", "api/contoso/commerceSync/v1.0/companies({c})/itemAvailabilityByLocation", False),
        ("contoso/commerceSync/v1.0", "api/v2.0/companies({c})/items", False),
        ("v2.0", "api/v2.0/companies({c})/priceListLines", False),
        # Not subscribable: not a physical table with a SystemId key.
        ("v2.0", "api/v2.0/companies({c})/customerFinancialDetails", True),
        (
            "contoso/commerceSync/v1.0",
            "api/contoso/commerceSync/v1.0/companies({c})/customerCreditSummaries",
            False,
        ),
        ("v2.0", "api/v2.0/companies(00000000-0000-0000-0000-000000000001)/items", False),
    ],
)
def test_subscriptions_live_at_the_root_of_the_api_that_serves_the_resource(
    client: httpx.Client, base_url: str, root: str, resource: str, accepted: bool
) -> None:
    _ok(client.post("/_sim/config", json={"subscriptionHandshake": False}))
    endpoint = f"{base_url}/v2.0/local/sandbox/api/{root}/subscriptions"
    try:
        created = client.post(
            endpoint,
            json={
                "notificationUrl": "http://127.0.0.1:9/hook",
                "resource": resource.format(c=COMPANY_ID),
            },
        )
        assert (created.status_code == 201) is accepted, created.text
        if accepted:
            sid = created.json()["subscriptionId"]
            listed = client.get(endpoint).json()["value"]
            assert [row["subscriptionId"] for row in listed] == [sid]
            other = "contoso/commerceSync/v1.0" if root == "v2.0" else "v2.0"
            elsewhere = f"{base_url}/v2.0/local/sandbox/api/{other}/subscriptions"
            assert client.get(elsewhere).json()["value"] == []
            assert client.get(f"{elsewhere}('{sid}')").status_code == 404
            assert (
                client.delete(f"{endpoint}('{sid}')", headers={"If-Match": "*"}).status_code == 204
            )
        else:
            assert created.json()["error"]["code"] == "BadRequest"
    finally:
        _ok(client.post("/_sim/config", json={"subscriptionHandshake": True}))


def test_a_collection_notification_has_bc_form(client: httpx.Client, base_url: str) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        endpoint = f"{base_url}/v2.0/local/sandbox/api/contoso/commerceSync/v1.0/subscriptions"
        resource = f"api/contoso/commerceSync/v1.0/companies({COMPANY_ID})/priceListLines"
        created = _ok(
            client.post(endpoint, json={"notificationUrl": url, "resource": resource})
        ).json()
        _ok(
            client.post(
                "/_sim/notify",
                json={
                    "subscriptionId": created["subscriptionId"],
                    "changeType": "collection",
                    "firstChange": "2026-03-01T10:00:01.000Z",
                },
            )
        )
        note = json.loads(_Receiver.received[-1]["body"])["value"][0]
        assert note["changeType"] == "collection"
        assert note["resource"] == (
            f"{resource}?$filter=lastModifiedDateTime%20gt%202026-03-01T10:00:00.950Z"
        )
        assert note["lastModifiedDateTime"] > "2026-03-01T10:00:01.000Z"  # the last change
        _ok(client.delete(f"{endpoint}('{created['subscriptionId']}')", headers={"If-Match": "*"}))
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_every_entity_carries_an_etag_and_a_utc_timestamp(
    client: httpx.Client, std: str, cus: str, fixtures: dict[str, Any]
) -> None:
    item = _sellable_items(client, std, 1)[0]["number"]
    order = _ok(
        client.post(
            f"{std}/salesOrders",
            json={
                "customerNumber": fixtures["customers"]["noCreditLimit"],
                "salesOrderLines": [{"lineObjectNumber": item, "quantity": 1}],
            },
        )
    ).json()
    customer = _ok(client.get(f"{std}/customers", params={"$top": "1"})).json()["value"][0]
    urls = [
        f"{std}/{name}"
        for name in ("items", "customers", "salesOrders", "locations", "itemCategories")
    ]
    urls += [
        f"{cus}/{name}"
        for name in (
            "priceListLines",
            "itemAvailabilityByLocation",
            "customerPricingProfiles",
            "customerCreditSummaries",
            "itemContent",
            "itemUnitsOfMeasure",
        )
    ]
    urls += [
        f"{std}/salesOrders({order['id']})/salesOrderLines",
        f"{std}/customers({customer['id']})/customerFinancialDetails",
    ]
    for url in urls:
        rows = _ok(client.get(url, params={"$top": "5"})).json()["value"]
        assert rows, url
        for row in rows:
            assert row["@odata.etag"].startswith('W/"'), url
            if url.endswith(("salesOrderLines", "salesQuoteLines")):
                # The APIV2 line pages carry no timestamp of their own.
                assert "lastModifiedDateTime" not in row, url
                continue
            stamp = row["lastModifiedDateTime"]
            assert stamp.endswith("Z") and datetime.fromisoformat(stamp).utcoffset() == timedelta(
                0
            ), url
