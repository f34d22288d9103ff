"""Paging: every page followed to the end, page size asked for, delta filter with overlap."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from shared.adapters.erp import ErpContractError
from shared.adapters.erp.models import PriceListLine
from tests.support.erp_client_fakes import CUSTOM, STANDARD, item_row, json_response, make_client


def price_line(n: int) -> dict[str, object]:
    return {
        "priceListCode": "P1",
        "sourceType": "All Customers",
        "sourceNo": "",
        "assetType": "Item",
        "assetNo": f"I{n:05d}",
        "minimumQuantity": 0,
        "amountType": "Price",
        "unitPrice": 1.5 + n,
        "lastModifiedDateTime": "2025-01-01T10:00:00Z",
    }


class PagedServer:
    """Serves ``total`` rows in pages of ``page`` rows with an absolute, opaque nextLink."""

    def __init__(self, total: int, page: int, base: str) -> None:
        self.total, self.page, self.base = total, page, base
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        skip = int(request.url.params.get("$skiptoken", "0"))
        rows = [price_line(n) for n in range(skip, min(skip + self.page, self.total))]
        body: dict[str, object] = {"value": rows}
        if skip + self.page < self.total:
            body["@odata.nextLink"] = f"{self.base}/priceListLines?$skiptoken={skip + self.page}"
        return json_response(body)


async def test_follows_next_link_across_every_page() -> None:
    server = PagedServer(total=7, page=2, base=CUSTOM)
    async with make_client(server, page_size=2) as client:
        rows = [row async for row in client.iter_price_list_lines()]
    assert [r.asset_no for r in rows] == [f"I{n:05d}" for n in range(7)]
    assert len(server.requests) == 4
    # Later pages are requested exactly as the server linked them.
    assert [str(r.url) for r in server.requests[1:]] == [
        f"{CUSTOM}/priceListLines?$skiptoken={n}" for n in (2, 4, 6)
    ]
    assert all(r.headers["Prefer"] == "odata.maxpagesize=2" for r in server.requests)


async def test_page_iterator_yields_pages() -> None:
    server = PagedServer(total=5, page=2, base=CUSTOM)
    async with make_client(server, page_size=2) as client:
        sizes = [len(page) async for page in client.iter_price_list_line_pages()]
    assert sizes == [2, 2, 1]


async def test_default_page_size_is_sent() -> None:
    server = PagedServer(total=1, page=1000, base=CUSTOM)
    async with make_client(server) as client:
        _ = [row async for row in client.iter_price_list_lines()]
    assert server.requests[0].headers["Prefer"] == "odata.maxpagesize=1000"


async def test_delta_filter_reaches_back_by_the_overlap() -> None:
    server = PagedServer(total=0, page=10, base=CUSTOM)
    watermark = datetime(2025, 3, 1, 12, 0, 10, 750000, tzinfo=UTC)
    async with make_client(server, watermark_overlap_seconds=30) as client:
        _ = [row async for row in client.iter_price_list_lines(modified_since=watermark)]
    assert (
        server.requests[0].url.params["$filter"]
        == "lastModifiedDateTime gt 2025-03-01T11:59:40.750Z"
    )


async def test_delta_filter_combines_with_another_filter() -> None:
    server = PagedServer(total=0, page=10, base=CUSTOM)
    watermark = datetime(2025, 3, 1, 14, 0, tzinfo=UTC).astimezone()  # any zone is fine
    async with make_client(server, watermark_overlap_seconds=0) as client:
        _ = [row async for row in client.iter_item_availability(watermark, location_code="MAIN'S")]
    assert server.requests[0].url.params["$filter"] == (
        "(locationCode eq 'MAIN''S') and (lastModifiedDateTime gt 2025-03-01T14:00:00.000Z)"
    )


async def test_naive_watermark_is_refused() -> None:
    server = PagedServer(total=0, page=10, base=CUSTOM)
    async with make_client(server) as client:
        with pytest.raises(ValueError, match="timezone-aware"):
            _ = [row async for row in client.iter_items(datetime(2025, 1, 1))]
    assert server.requests == []


async def test_decimals_are_parsed_without_float_loss() -> None:
    raw = (
        b'{"value": [{"priceListCode": "P", "sourceType": "Customer", "sourceNo": "C1",'
        b' "assetType": "Item", "assetNo": "A", "minimumQuantity": 0.1,'
        b' "unitPrice": 12345678901234.56789, "lineDiscountPercent": 33.33333333333333333,'
        b' "startingDate": "0001-01-01", "endingDate": "2025-12-31",'
        b' "lastModifiedDateTime": "2025-01-01T12:00:00.123+02:00"}]}'
    )
    async with make_client(lambda r: httpx.Response(200, content=raw)) as client:
        (line,) = [row async for row in client.iter_price_list_lines()]
    assert isinstance(line, PriceListLine)
    assert line.unit_price == Decimal("12345678901234.56789")
    assert str(line.unit_price) == "12345678901234.56789"
    assert line.line_discount_percent == Decimal("33.33333333333333333")
    assert line.minimum_quantity == Decimal("0.1")
    assert line.starting_date is None  # BC's blank date
    assert line.ending_date is not None and line.ending_date.isoformat() == "2025-12-31"
    assert line.last_modified_date_time == datetime(2025, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert line.last_modified_date_time.tzinfo is UTC


async def test_missing_field_is_a_contract_error_naming_set_and_field() -> None:
    row = item_row("A1")
    del row["unitPrice"]
    body = {"value": [item_row("A0"), row]}
    async with make_client(lambda r: json_response(body)) as client:
        with pytest.raises(ErpContractError) as caught:
            _ = [item async for item in client.iter_items()]
    message = str(caught.value)
    assert "items" in message and "unitPrice" in message and "row 1" in message
    assert caught.value.entity_set == "items"


async def test_naive_datetime_from_the_erp_is_a_contract_error() -> None:
    body = {"value": [item_row("A0", lastModifiedDateTime="2025-01-01T10:00:00")]}
    async with make_client(lambda r: json_response(body)) as client:
        with pytest.raises(ErpContractError, match="lastModifiedDateTime"):
            _ = [item async for item in client.iter_items()]


async def test_collection_without_value_is_a_contract_error() -> None:
    async with make_client(lambda r: json_response({"items": []})) as client:
        with pytest.raises(ErpContractError, match="value"):
            _ = [item async for item in client.iter_locations()]


async def test_next_link_to_another_host_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(
            {"value": [], "@odata.nextLink": "https://evil.example/steal?$skiptoken=1"}
        )

    async with make_client(handler) as client:
        with pytest.raises(ErpContractError, match="nextLink"):
            _ = [item async for item in client.iter_items()]


async def test_next_link_that_repeats_is_refused_instead_of_looping() -> None:
    link = f"{STANDARD}/items?$skiptoken=1"
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(
            200, content=json.dumps({"value": [], "@odata.nextLink": link}).encode()
        )

    async with make_client(handler) as client:
        with pytest.raises(ErpContractError, match="repeats"):
            _ = [item async for item in client.iter_items()]
    assert len(calls) == 2
