"""ErpClient basics: URLs and OData escaping, headers, correlation ids, error mapping."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import httpx
import pytest

from shared.adapters.erp import (
    ErpAuthFailed,
    ErpConflict,
    ErpContractError,
    ErpNotFound,
    ErpRejected,
    correlation_scope,
)
from shared.adapters.erp.jsonio import decode_json
from shared.adapters.erp.models import SalesOrder, SalesOrderCreate, SalesOrderLineCreate
from shared.adapters.erp.odata import guid_key, odata_string_literal, string_key
from tests.support.erp_client_fakes import (
    COMPANY_ID,
    CUSTOM,
    item_row,
    json_response,
    make_client,
    order_row,
)


class Recorder:
    """Answers every request with one canned response and keeps the requests."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response


def test_odata_literal_doubles_single_quotes() -> None:
    assert odata_string_literal("O'Neil") == "'O''Neil'"
    assert odata_string_literal("it''s") == "'it''''s'"


def test_string_key_percent_encodes_reserved_characters() -> None:
    assert string_key("AB/12#3") == "('AB%2F12%233')"
    assert string_key("O'Neil") == "('O''Neil')"


@pytest.mark.parametrize(
    ("number", "raw_filter", "decoded_filter"),
    [
        ("AB/12#3", "number%20eq%20%27AB%2F12%233%27", "number eq 'AB/12#3'"),
        ("O'Neil", "number%20eq%20%27O%27%27Neil%27", "number eq 'O''Neil'"),
        ("A?B\\C&D", "number%20eq%20%27A%3FB%5CC%26D%27", "number eq 'A?B\\C&D'"),
        ("Müller-ß", "number%20eq%20%27M%C3%BCller-%C3%9F%27", "number eq 'Müller-ß'"),
    ],
)
async def test_lookup_by_number_escapes_the_literal(
    number: str, raw_filter: str, decoded_filter: str
) -> None:
    recorder = Recorder(json_response({"value": [item_row(number)]}))
    async with make_client(recorder) as client:
        item = await client.get_item_by_number(number)
    assert item.number == number
    request = recorder.requests[0]
    assert request.url.path == f"/v2.0/tenant1/production/api/v2.0/companies({COMPANY_ID})/items"
    assert f"$filter={raw_filter}" in request.url.query.decode()
    assert request.url.params["$filter"] == decoded_filter
    # Nothing after '#' may be lost as a fragment, nothing after '?' as a second query.
    assert request.url.fragment == ""


async def test_custom_pages_use_publisher_group_version() -> None:
    summary = {
        "customerNumber": "C00010",
        "creditLimit": 5000,
        "balance": 1200.5,
        "overdueAmount": 0,
        "outstandingOrdersAmount": 300,
        "blocked": "_x0020_",
    }
    recorder = Recorder(json_response({"value": [summary]}))
    async with make_client(recorder) as client:
        result = await client.get_credit_summary("C00010")
    assert str(recorder.requests[0].url).startswith(f"{CUSTOM}/customerCreditSummaries?")
    assert result.balance == Decimal("1200.5")
    assert result.blocked == " "


async def test_live_lookups_ask_for_the_read_replica_and_booking_lookups_do_not() -> None:
    recorder = Recorder(json_response({"value": []}))
    async with make_client(recorder) as client:
        with pytest.raises(ErpNotFound):
            await client.get_customer_by_number("C1")
        assert await client.find_sales_order_by_external_document_number("X1") is None
        async for _ in client.iter_price_list_lines():
            pass
    live, booking, batch = recorder.requests
    assert live.headers["Data-Access-Intent"] == "ReadOnly"
    assert "Data-Access-Intent" not in booking.headers
    assert "Data-Access-Intent" not in batch.headers


async def test_every_request_carries_accept_and_correlation_headers() -> None:
    recorder = Recorder(json_response({"value": []}))
    async with make_client(recorder) as client:
        with correlation_scope("corr-123"):
            await client.find_sales_order_by_external_document_number("X1")
        await client.find_sales_order_by_external_document_number("X1", correlation_id="explicit")
        await client.find_sales_order_by_external_document_number("X1")
    scoped, explicit, generated = recorder.requests
    assert scoped.headers["x-correlation-id"] == "corr-123"
    assert scoped.headers["request-id"] == "corr-123"
    assert explicit.headers["x-correlation-id"] == "explicit"
    assert UUID(generated.headers["x-correlation-id"])
    assert generated.headers["request-id"] == generated.headers["x-correlation-id"]
    assert all(r.headers["Accept"] == "application/json" for r in recorder.requests)
    assert all("Authorization" not in r.headers for r in recorder.requests)


async def test_patch_and_delete_send_if_match() -> None:
    recorder = Recorder(json_response(order_row("X1")))
    async with make_client(recorder) as client:
        order_id = UUID("5b8f0c1e-0000-4000-8000-000000000001")
        order = await client.get_sales_order(order_id)
        patched = await client.patch(
            "salesOrders",
            guid_key(order_id),
            'W/"abc"',
            {"requestedDeliveryDate": "2025-02-01"},
            SalesOrder,
        )
        recorder.response = httpx.Response(204)
        await client.delete_sales_quote(order_id, 'W/"q1"')
    get, patch, delete = recorder.requests
    assert order.etag == patched.etag == 'W/"order-etag"'
    assert "If-Match" not in get.headers
    assert patch.method == "PATCH" and patch.headers["If-Match"] == 'W/"abc"'
    assert decode_json(patch.content) == {"requestedDeliveryDate": "2025-02-01"}
    assert delete.method == "DELETE" and delete.headers["If-Match"] == 'W/"q1"'
    assert delete.url.path.endswith(f"/salesQuotes({order_id})")


async def test_deep_insert_sends_lines_and_exact_decimals_as_numbers() -> None:
    recorder = Recorder(json_response(order_row("ORD-1"), status=201))
    payload = SalesOrderCreate(
        customer_number="C00010",
        external_document_number="ord-1",
        sales_order_lines=[
            SalesOrderLineCreate(line_object_number="AB/12#3", quantity=Decimal("2.50")),
            SalesOrderLineCreate(
                line_object_number="X", quantity=Decimal(3), unit_price=Decimal("0.10")
            ),
        ],
    )
    async with make_client(recorder) as client:
        order = await client.create_sales_order(payload)
    request = recorder.requests[0]
    assert order.external_document_number == "ORD-1"
    assert request.headers["Content-Type"] == "application/json"
    assert b'"quantity":2.50' in request.content
    body = decode_json(request.content)
    assert body["externalDocumentNumber"] == "ORD-1"  # BC's Code[35] is upper case
    assert body["salesOrderLines"][1]["unitPrice"] == Decimal("0.10")
    assert "unitPrice" not in body["salesOrderLines"][0]


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, ErpNotFound), (412, ErpConflict), (409, ErpConflict), (403, ErpAuthFailed)],
)
async def test_client_errors_map_to_named_exceptions(status: int, error: type[Exception]) -> None:
    recorder = Recorder(json_response({"error": {"code": "X", "message": "m"}}, status=status))
    async with make_client(recorder) as client:
        with pytest.raises(error):
            await client.get_sales_order(UUID(int=1))
    assert len(recorder.requests) == 1


async def test_business_rule_rejection_carries_bc_code_and_message() -> None:
    body = {"error": {"code": "Internal_BlockedCustomer", "message": "Customer C1 is blocked."}}
    recorder = Recorder(json_response(body, status=400))
    payload = SalesOrderCreate(
        customer_number="C1",
        external_document_number="o1",
        sales_order_lines=[SalesOrderLineCreate(line_object_number="A", quantity=Decimal(1))],
    )
    async with make_client(recorder) as client:
        with pytest.raises(ErpRejected) as caught:
            await client.create_sales_order(payload, correlation_id="c-9")
    assert caught.value.code == "Internal_BlockedCustomer"
    assert caught.value.erp_message == "Customer C1 is blocked."
    assert caught.value.status_code == 400
    assert caught.value.correlation_id == "c-9"
    assert len(recorder.requests) == 1


async def test_success_with_a_non_json_body_is_a_contract_error() -> None:
    recorder = Recorder(httpx.Response(200, content=b"<html>proxy</html>"))
    async with make_client(recorder) as client:
        with pytest.raises(ErpContractError, match="customerFinancialDetails"):
            await client.get_customer_financial_details(UUID(int=5))


@pytest.mark.parametrize(
    ("entity_set", "root"),
    [
        ("items", "api/v2.0"),
        ("itemAvailabilityByLocation", "api/contoso/commerceSync/v1.0"),
        ("priceListLines", "api/contoso/commerceSync/v1.0"),
    ],
)
async def test_a_subscription_names_the_api_its_entity_set_is_on(
    entity_set: str, root: str
) -> None:
    prefix = f"{root}/companies({COMPANY_ID})"
    subscription = {
        "@odata.etag": 'W/"1"',
        "subscriptionId": "s1",
        "notificationUrl": "https://example.invalid/hook",
        "resource": f"{prefix}/{entity_set}",
        "clientState": "c" * 16,
    }
    recorder = Recorder(json_response(subscription, status=201))
    async with make_client(recorder) as client:
        await client.create_subscription(entity_set, "https://example.invalid/hook", "c" * 16)
    sent = decode_json(recorder.requests[0].content)
    assert sent["resource"] == f"{prefix}/{entity_set}"
    # Both the endpoint and the resource are on the API that serves the set.
    assert recorder.requests[0].url.path.endswith(f"/{root}/subscriptions")
