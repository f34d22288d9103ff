"""Conformance with Microsoft's API v2.0 reference: the client's models read the documented
examples (tests/bc_reference_examples.py), and the simulator answers with the same fields in
the same forms (GUIDs, dates, UTC timestamps, numbers, escaped enum members)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from devtools.erp_sim.testing import custom_api, running_simulator, standard_api
from shared.adapters.erp.models import (
    Customer,
    CustomerFinancialDetail,
    Item,
    SalesOrder,
    SalesOrderLine,
    Subscription,
)
from shared.services.inventory.webhooks import ErpNotificationBatch, parse_resource
from tests import bc_reference_examples as ref

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$")


def form_of(value: Any) -> str:
    """The wire form of a JSON value, as the reference pages show them."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        for name, pattern in (("guid", _GUID), ("date", _DATE), ("timestamp", _STAMP)):
            if pattern.match(value):
                return name
        return "string"
    return type(value).__name__


@pytest.mark.parametrize(
    ("model", "example"),
    [
        (Item, ref.ITEM),
        (Item, ref.NON_INVENTORY_ITEM),
        (Customer, ref.CUSTOMER),
        (CustomerFinancialDetail, ref.CUSTOMER_FINANCIAL_DETAIL),
        (SalesOrderLine, ref.SALES_ORDER_LINE),
        (SalesOrder, ref.SALES_ORDER),
        (SalesOrder, ref.SALES_ORDER_IN_REVIEW),
        (SalesOrder, ref.SALES_ORDER_EXPANDED),
        (Subscription, ref.SUBSCRIPTION),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_the_client_reads_the_documented_examples(
    model: type[BaseModel], example: dict[str, Any]
) -> None:
    parsed = model.model_validate(example)
    assert parsed is not None


def test_documented_values_mean_what_bc_means() -> None:
    assert Item.model_validate(ref.NON_INVENTORY_ITEM).type == "Non-Inventory"
    assert SalesOrder.model_validate(ref.SALES_ORDER_IN_REVIEW).status == "In Review"
    assert Customer.model_validate(ref.CUSTOMER).blocked == " "
    order = SalesOrder.model_validate(ref.SALES_ORDER)
    assert order.requested_delivery_date is None  # 0001-01-01 is BC's blank date
    assert order.sales_order_lines is None  # not expanded
    expanded = SalesOrder.model_validate(ref.SALES_ORDER_EXPANDED)
    assert expanded.sales_order_lines is not None and len(expanded.sales_order_lines) == 1


def test_the_receiver_reads_both_documented_notification_forms() -> None:
    single = ErpNotificationBatch.model_validate(ref.NOTIFICATION).value[0]
    single_ref = parse_resource(single.resource)
    assert single_ref is not None and single_ref.entity_set == "customers"
    assert single_ref.key == "4e5f6071-8293-4a4b-b5c6-d7e8f9011223"
    bulk = ErpNotificationBatch.model_validate(ref.COLLECTION_NOTIFICATION).value[0]
    bulk_ref = parse_resource(bulk.resource)
    assert bulk_ref is not None and bulk_ref.key is None
    assert bulk_ref.modified_after is not None
    assert bulk_ref.modified_after < bulk.last_modified_date_time  # first change < last


# ---- the simulator answers in the same forms ------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with running_simulator(seed=11, items=20, customers=10) as base_url:
        yield base_url


def _first(url: str, **params: str) -> dict[str, Any]:
    response = httpx.get(url, params={"$top": "1", **params}, timeout=10)
    response.raise_for_status()
    return dict(response.json()["value"][0])


def _assert_same_forms(answer: dict[str, Any], example: dict[str, Any], what: str) -> None:
    """Every field the simulator sends is documented, in the documented form."""
    undocumented = set(answer) - set(example) - {"@odata.context"}
    assert not undocumented, f"{what}: fields not in the reference example: {undocumented}"
    for field, value in answer.items():
        if field in example and example[field] is not None and value is not None:
            assert form_of(value) == form_of(example[field]), (what, field, value)


def test_simulator_items_customers_and_financial_details_have_the_documented_forms(
    sim: str,
) -> None:
    std = standard_api(sim)
    item = _first(f"{std}/items")
    _assert_same_forms(item, ref.ITEM, "item")
    Item.model_validate(item)
    customer = _first(f"{std}/customers")
    _assert_same_forms(customer, ref.CUSTOMER, "customer")
    Customer.model_validate(customer)
    detail = _first(f"{std}/customers({customer['id']})/customerFinancialDetails")
    _assert_same_forms(detail, ref.CUSTOMER_FINANCIAL_DETAIL, "customerFinancialDetail")
    CustomerFinancialDetail.model_validate(detail)


def test_simulator_sales_orders_and_lines_have_the_documented_forms(sim: str) -> None:
    std = standard_api(sim)
    item = _first(f"{std}/items", **{"$filter": "blocked eq false and inventory gt 0"})
    created = httpx.post(
        f"{std}/salesOrders",
        json={
            "customerNumber": "C00008",
            "externalDocumentNumber": "CONF-1",
            "salesOrderLines": [{"lineObjectNumber": item["number"], "quantity": 1}],
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert "salesOrderLines" not in order  # the header alone, as BC answers a deep insert
    _assert_same_forms(order, ref.SALES_ORDER, "salesOrder")
    SalesOrder.model_validate(order)
    expanded = httpx.get(
        f"{std}/salesOrders({order['id']})", params={"$expand": "salesOrderLines"}, timeout=10
    ).json()
    line = expanded["salesOrderLines"][0]
    _assert_same_forms(line, ref.SALES_ORDER_LINE, "salesOrderLine")
    assert "lastModifiedDateTime" not in line
    SalesOrderLine.model_validate(line)


def test_simulator_subscriptions_have_the_documented_forms(sim: str) -> None:
    httpx.post(f"{sim}/_sim/config", json={"subscriptionHandshake": False}, timeout=10)
    try:
        endpoint = f"{sim}/v2.0/local/sandbox/api/v2.0/subscriptions"
        created = httpx.post(
            endpoint,
            json={
                "notificationUrl": "http://127.0.0.1:9/hook",
                "resource": f"/api/v2.0/companies({ref.COMPANY})/customers",
                "clientState": "optionalValueOf2048",
            },
            timeout=10,
        )
        assert created.status_code == 201, created.text
        _assert_same_forms(created.json(), ref.SUBSCRIPTION, "subscription")
        Subscription.model_validate(created.json())
    finally:
        httpx.post(f"{sim}/_sim/config", json={"subscriptionHandshake": True}, timeout=10)


def test_an_api_create_over_the_credit_limit_is_not_refused(sim: str) -> None:
    """Business Central's credit limit check only warns a person: codeunit 312 "Cust-Check Cr.
    Limit" (Base Application source, file CustCheckCrLimit.Codeunit.al, namespace
    Microsoft.Sales.Customer) does nothing in ``SalesHeaderCheck`` unless ``GuiAllowed``,
    and ``SalesLineCheck`` only sends a notification (page 343 "Check Credit Limit", a
    confirmation dialog, when a UI is there); neither raises an error. A sales order created
    through the API (no UI) is therefore created over the limit, and the outstanding amount
    goes past it. Refusing it is a stricter tenant's extension: the simulator does that only
    when asked (``creditCheck``).
    """
    std = standard_api(sim)
    fixtures = httpx.get(f"{sim}/_sim/info", timeout=10).json()["fixtures"]
    customer = fixtures["customers"]["creditNearlyExhausted"]
    summary_url = f"{custom_api(sim)}/customerCreditSummaries"
    item = _first(f"{std}/items", **{"$filter": "blocked eq false and inventory gt 0"})

    def summary() -> dict[str, Any]:
        return _first(summary_url, **{"$filter": f"customerNumber eq '{customer}'"})

    before = summary()
    headroom = (
        Decimal(str(before["creditLimit"]))
        - Decimal(str(before["balance"]))
        - Decimal(str(before["outstandingOrdersAmount"]))
    )
    over = headroom + 100
    body = {
        "customerNumber": customer,
        "externalDocumentNumber": "CONF-CREDIT",
        "salesOrderLines": [
            {"lineObjectNumber": item["number"], "quantity": 1, "unitPrice": float(over)}
        ],
    }
    created = httpx.post(f"{std}/salesOrders", json=body, timeout=10)
    assert created.status_code == 201, created.text
    after = summary()
    used = Decimal(str(after["balance"])) + Decimal(str(after["outstandingOrdersAmount"]))
    assert used > Decimal(str(after["creditLimit"]))  # over the limit, as BC allows

    httpx.post(f"{sim}/_sim/config", json={"creditCheck": True}, timeout=10)
    try:
        refused = httpx.post(f"{std}/salesOrders", json=body, timeout=10)
        assert refused.status_code == 400 and "credit limit" in refused.text
    finally:
        httpx.post(f"{sim}/_sim/config", json={"creditCheck": False}, timeout=10)
