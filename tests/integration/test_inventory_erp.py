"""Reconciliation, notification processing and subscriptions against the ERP simulator.

A private simulator (this module changes its data) and Azurite; the bus is a recorder, and
the snapshots it collects are applied with the real handler service, so each test follows a
change from the ERP into the projection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest

from devtools.erp_sim.testing import custom_api, running_simulator
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.adapters.erp.odata import Api
from shared.adapters.stores import lease, sync_state
from shared.adapters.stores import stock as stock_store
from shared.adapters.stores.erp_subscriptions import is_ours
from shared.adapters.tables import TableStore
from shared.services.inventory.events import InboundMessage, apply_inventory_messages
from shared.services.inventory.messages import INVENTORY_QUEUE, SNAPSHOT_SOURCE
from shared.services.inventory.policy import StockPolicy
from shared.services.inventory.reconciliation import JOB, drift_rows, reconcile_stock
from shared.services.inventory.subscriptions import SubscriptionsRefused, maintain_subscriptions
from shared.services.inventory.webhooks import (
    NOTIFICATIONS_QUEUE,
    ClientStateMismatch,
    ErpNotification,
    ErpNotificationBatch,
    check_client_state,
    enqueue_notifications,
    parse_resource,
    process_notification,
)
from shared.services.pricing import publisher as price_publisher
from tests.integration.broker_bus import BrokerBus
from tests.integration.webhook_receiver import running_receiver
from tests.support.inventory_events import event, inbound

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")
POLICY = StockPolicy()
STATE = "test-client-state-0123456789"


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with running_simulator(seed=5, items=20, customers=5) as base_url:
        yield base_url


@pytest.fixture
async def erp(sim: str) -> AsyncIterator[ErpClient]:
    config = ErpConfig(
        base_url=sim, tenant="local", environment="sandbox", company_id=COMPANY, page_size=7
    )
    async with ErpClient(config) as client:
        yield client


def _erp_rows(sim: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{custom_api(sim)}/itemAvailabilityByLocation", timeout=10)
    response.raise_for_status()
    return list(response.json()["value"])


def _patch_row(sim: str, row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    response = httpx.patch(
        f"{custom_api(sim)}/itemAvailabilityByLocation({row['id']})",
        json=changes,
        headers={"If-Match": row["@odata.etag"]},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


async def _apply_sent(tables: TableStore, bus: BrokerBus) -> None:
    messages = [
        InboundMessage(m.message_id, json.dumps(dict(m.body)))
        for m in (await bus.to(INVENTORY_QUEUE))
    ]
    await bus.purge(INVENTORY_QUEUE)
    if messages:
        await apply_inventory_messages(tables, bus, messages, POLICY)


async def _projection(tables: TableStore, rows: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    found = {}
    for row in rows:
        stored = await stock_store.load_position(tables, row["itemNumber"], row["locationCode"])
        found[(row["itemNumber"], row["locationCode"])] = (
            stored.position.on_hand,
            stored.position.erp_reserved,
            stored.position.demand,
            stored.position.expected,
        )
    return found


def _figure(row: dict[str, Any], name: str) -> Decimal:
    return Decimal(str(row.get(name, 0)))


def _expected(rows: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """On hand, reservations outside the sales-order demand, the demand, expected receipts."""
    return {
        (row["itemNumber"], row["locationCode"]): (
            _figure(row, "inventory"),
            _figure(row, "reservedQuantity") - _figure(row, "reservedQtyOnSalesOrders"),
            _figure(row, "qtyOnSalesOrders"),
            _figure(row, "qtyOnPurchaseOrders"),
        )
        for row in rows
    }


_FIGURES = ("inventory", "reservedQuantity", "qtyOnSalesOrders", "qtyOnPurchaseOrders")


async def test_reconciliation_seeds_then_heals_a_lost_event(
    sim: str, erp: ErpClient, table_store: TableStore, broker_bus: BrokerBus
) -> None:
    bus = broker_bus
    first = await reconcile_stock(erp, table_store, bus, page_size=7)
    rows = _erp_rows(sim)
    assert first.checked == len(rows)
    stocked = [r for r in rows if any(r[name] for name in _FIGURES)]
    assert first.seeded == len(stocked) and first.drifted == 0
    snapshots = await bus.to(INVENTORY_QUEUE)
    assert {s.body["source"] for s in snapshots} == {SNAPSHOT_SOURCE}
    await _apply_sent(table_store, bus)
    assert await _projection(table_store, rows) == _expected(rows)

    # The ERP changes but the event for it is lost: the next run finds and heals the drift.
    target = next(r for r in rows if r["inventory"] > 10)
    _patch_row(sim, target, inventory=target["inventory"] - 7)
    second = await reconcile_stock(erp, table_store, bus, page_size=7)
    assert (second.drifted, second.seeded, second.corrections_sent) == (1, 0, 1)
    assert second.largest is not None and second.largest.on_hand_drift == -7
    assert (second.largest.sku, second.largest.location) == (
        target["itemNumber"],
        target["locationCode"],
    )
    stored = await drift_rows(table_store, second.run_id)
    assert [(r["sku"], r["onHandDrift"]) for r in stored] == [(target["itemNumber"], "-7")]
    runs = await sync_state.recent_runs(table_store, JOB)
    assert runs[0]["n_drifted"] == 1 and runs[0]["d_largestOnHandDrift"] == "-7"
    await _apply_sent(table_store, bus)
    rows = _erp_rows(sim)
    assert await _projection(table_store, rows) == _expected(rows)

    third = await reconcile_stock(erp, table_store, bus, page_size=7)
    assert third.in_sync == len(rows) and third.corrections_sent == 0


async def test_reconciliation_never_overwrites_a_newer_event(
    sim: str, erp: ErpClient, table_store: TableStore, broker_bus: BrokerBus
) -> None:
    bus = broker_bus
    row = next(r for r in _erp_rows(sim) if r["inventory"] > 0)
    sku, location = row["itemNumber"], row["locationCode"]
    # The WMS already told us about a change the ERP has not caught up with yet.
    future = datetime.now(UTC) + timedelta(minutes=10)
    await apply_inventory_messages(
        table_store,
        bus,
        inbound(event(sku, 1, "counted", 1, location=location, at=future)),
        POLICY,
    )
    report = await reconcile_stock(erp, table_store, bus)
    assert report.deferred == 1
    corrections = await bus.to(INVENTORY_QUEUE)
    assert corrections and all(
        (s.body["sku"], s.body["location"]) != (sku, location) for s in corrections
    )


async def test_two_reconciliations_never_overlap(
    erp: ErpClient, table_store: TableStore, broker_bus: BrokerBus
) -> None:
    held = await lease.acquire(table_store, JOB, timedelta(minutes=1))
    try:
        with pytest.raises(lease.LeaseHeld):
            await reconcile_stock(erp, table_store, broker_bus)
    finally:
        await held.release()


def _notification(resource: str, change: str = "updated", **extra: Any) -> ErpNotification:
    return ErpNotification.model_validate(
        {
            "subscriptionId": "sub-1",
            "clientState": STATE,
            "resource": resource,
            "changeType": change,
            "lastModifiedDateTime": datetime.now(UTC).isoformat(),
            **extra,
        }
    )


def _resource(entity_set: str, key: str | None = None) -> str:
    tail = f"{entity_set}({key})" if key else entity_set
    return f"api/v2.0/companies({COMPANY})/{tail}"


async def test_a_stock_notification_is_read_back_into_the_projection(
    sim: str, erp: ErpClient, table_store: TableStore, broker_bus: BrokerBus
) -> None:
    bus = broker_bus
    row = _patch_row(sim, _erp_rows(sim)[3], inventory=321, reservedQuantity=4)
    outcome = await process_notification(
        erp, bus, table_store, _notification(_resource("itemAvailabilityByLocation", row["id"]))
    )
    assert [(s.sku, s.on_hand, s.erp_reserved) for s in outcome.snapshots] == [
        (row["itemNumber"], 321, 4)
    ]
    await _apply_sent(table_store, bus)
    position = (
        await stock_store.load_position(table_store, row["itemNumber"], row["locationCode"])
    ).position
    assert (position.on_hand, position.erp_reserved) == (321, 4)
    assert position.reconciled_as_of is not None


async def test_a_collection_notification_becomes_a_delta_read(
    sim: str, erp: ErpClient, table_store: TableStore, broker_bus: BrokerBus
) -> None:
    rows = _erp_rows(sim)
    since = datetime.now(UTC)
    changed = {_patch_row(sim, rows[n], inventory=1000 + n)["id"] for n in (5, 6)}
    outcome = await process_notification(
        erp,
        broker_bus,
        table_store,
        _notification(
            _resource("itemAvailabilityByLocation"),
            "collection",
            lastModifiedDateTime=since.isoformat(),
        ),
    )
    got = {(s.sku, s.location, s.on_hand) for s in outcome.snapshots}
    wanted = {
        (r["itemNumber"], r["locationCode"], Decimal(str(r["inventory"])))
        for r in _erp_rows(sim)
        if r["id"] in changed
    }
    assert wanted <= got
    assert len(got) < len(rows)  # a delta read (with the overlap window), not everything


async def test_deleted_and_unknown_resources_change_nothing(
    erp: ErpClient, table_store: TableStore, broker_bus: BrokerBus
) -> None:
    bus = broker_bus
    gone = await process_notification(
        erp,
        bus,
        table_store,
        _notification(_resource("itemAvailabilityByLocation", str(UUID(int=1))), "deleted"),
    )
    missing = await process_notification(
        erp,
        bus,
        table_store,
        _notification(_resource("itemAvailabilityByLocation", str(UUID(int=2)))),
    )
    odd = await process_notification(erp, bus, table_store, _notification("not a resource!"))
    assert gone.snapshots == missing.snapshots == odd.snapshots == []
    assert await bus.to(INVENTORY_QUEUE) == [] and await bus.to(NOTIFICATIONS_QUEUE) == []


async def test_a_price_notification_runs_the_price_delta(
    erp: ErpClient, table_store: TableStore, broker_bus: BrokerBus
) -> None:
    outcome = await process_notification(
        erp,
        broker_bus,
        table_store,
        _notification(_resource("priceListLines", str(UUID(int=3)))),
    )
    assert outcome.price_delta == "ran"
    held = await lease.acquire(table_store, price_publisher.JOB, timedelta(minutes=1))
    try:
        again = await process_notification(
            erp, broker_bus, table_store, _notification(_resource("items"))
        )
    finally:
        await held.release()
    assert again.price_delta == "skipped-lease-held"


def test_client_state_and_resources_are_checked() -> None:
    batch = ErpNotificationBatch(value=[_notification(_resource("items", "'AB/12#3'"))])
    check_client_state(batch, STATE)
    with pytest.raises(ClientStateMismatch):
        check_client_state(batch, STATE + "x")
    ref = parse_resource(batch.value[0].resource)
    assert ref is not None and (ref.entity_set, ref.key) == ("items", "AB/12#3")
    assert parse_resource("api/v2.0/companies(x)/items") == parse_resource("items")
    odd = parse_resource("api/v2.0/companies(x)/items('O''Neil (2)/B')")
    assert odd is not None and (odd.entity_set, odd.key) == ("items", "O'Neil (2)/B")
    assert parse_resource("items('unterminated)") is None
    assert "clientState" not in batch.value[0].to_message()


async def test_enqueued_notifications_have_stable_ids(broker_bus: BrokerBus) -> None:
    bus = broker_bus
    note = _notification(_resource("items", "'X'"))
    batch = ErpNotificationBatch(value=[note, note])
    assert await enqueue_notifications(bus, batch) == 2
    # Both sends carried one MessageId, so the queue's duplicate detection kept one copy.
    sent = await bus.to(NOTIFICATIONS_QUEUE)
    assert [message.message_id for message in sent] == [note.message_id]
    other = _notification(_resource("items", "'Y'"))
    assert other.message_id != note.message_id


async def test_subscriptions_are_created_renewed_and_replaced(
    sim: str, erp: ErpClient, table_store: TableStore
) -> None:
    sets = ("itemAvailabilityByLocation", "items")
    with running_receiver() as (url, received):
        created = await maintain_subscriptions(erp, table_store, url, STATE, sets)
        assert len(created.created) == 2 and not created.refused
        assert received.handshakes == 2  # BC validates the URL before it keeps a subscription
        kept = await maintain_subscriptions(erp, table_store, url, STATE, sets)
        assert kept.kept == list(sets) and not kept.created
        renewed = await maintain_subscriptions(
            erp, table_store, url, STATE, sets, renew_within=timedelta(days=4)
        )
        assert renewed.renewed == list(sets)
        assert received.handshakes == 4  # ... and again on every renewal
        rotated = await maintain_subscriptions(erp, table_store, url, STATE + "-new", sets)
        assert rotated.removed == list(sets) and len(rotated.created) == 2
        ours = [
            (api, s)
            for api in Api
            for s in await erp.list_subscriptions(api=api)
            if s.notification_url == url
        ]
        assert sorted(s.client_state or "" for _, s in ours) == [STATE + "-new"] * 2
        for api, subscription in ours:
            assert await is_ours(table_store, subscription.subscription_id)
            await erp.delete_subscription(
                subscription.subscription_id, subscription.etag or "*", api=api
            )


async def test_each_subscription_lives_at_the_root_of_its_api(
    sim: str, erp: ErpClient, table_store: TableStore
) -> None:
    with running_receiver() as (url, _):
        report = await maintain_subscriptions(
            erp, table_store, url, STATE, ("itemAvailabilityByLocation", "items")
        )
    assert not report.refused
    standard = httpx.get(f"{sim}/v2.0/local/sandbox/api/v2.0/subscriptions", timeout=10)
    custom = httpx.get(f"{sim}/v2.0/local/sandbox/api/contoso/commerceSync/v1.0/subscriptions")
    by_root = {
        "standard": [
            s["resource"] for s in standard.json()["value"] if s["notificationUrl"] == url
        ],
        "custom": [s["resource"] for s in custom.json()["value"] if s["notificationUrl"] == url],
    }
    assert by_root == {
        "standard": [f"api/v2.0/companies({COMPANY})/items"],
        "custom": [
            f"api/contoso/commerceSync/v1.0/companies({COMPANY})/itemAvailabilityByLocation"
        ],
    }
    for api in Api:
        for s in await erp.list_subscriptions(api=api):
            await erp.delete_subscription(s.subscription_id, s.etag or "*", api=api)


async def test_a_refused_resource_does_not_stop_the_others(
    sim: str, erp: ErpClient, table_store: TableStore
) -> None:
    # customerCreditSummaries is a computed page: BC cannot subscribe to it. It comes first,
    # and before the fix its refusal aborted the run.
    sets = ("customerCreditSummaries", "itemAvailabilityByLocation", "items")
    with running_receiver() as (url, _):
        with pytest.raises(SubscriptionsRefused) as refused:
            await maintain_subscriptions(erp, table_store, url, STATE, sets, raise_on_refusal=True)
        report = refused.value.report
        assert list(report.refused) == ["customerCreditSummaries"]
        assert "ErpRejected" in report.refused["customerCreditSummaries"]
        assert sorted(c.split(":")[0] for c in report.created) == [
            "itemAvailabilityByLocation",
            "items",
        ]
        # The refusal is in the failure's text the timer records.
        assert "customerCreditSummaries" in str(refused.value)
    with running_receiver() as (url_without_receiver, _):
        pass  # the receiver is gone: the handshake fails for every set, each reported
    report = await maintain_subscriptions(erp, table_store, url_without_receiver, STATE, ("items",))
    assert list(report.refused) == ["items"] and not report.created
    for api in Api:
        for s in await erp.list_subscriptions(api=api):
            await erp.delete_subscription(s.subscription_id, s.etag or "*", api=api)


async def test_a_collection_notification_reads_every_row_of_a_bulk_change(
    sim: str, erp: ErpClient, table_store: TableStore, broker_bus: BrokerBus
) -> None:
    with running_receiver() as (url, received):
        report = await maintain_subscriptions(
            erp, table_store, url, STATE, ("itemAvailabilityByLocation",)
        )
        subscription_id = report.created[0].split(":", 1)[1]
        first_change = datetime.now(UTC)
        rows = _erp_rows(sim)[:6]
        changed = {(r["itemNumber"], r["locationCode"]) for r in rows}
        for number, row in enumerate(rows):
            _patch_row(sim, row, inventory=900 + number)
        sent = httpx.post(
            f"{sim}/_sim/notify",
            json={
                "subscriptionId": subscription_id,
                "changeType": "collection",
                "firstChange": first_change.isoformat(),
            },
            timeout=10,
        )
        assert sent.json()["deliveries"][0]["outcome"] == "delivered"
    batch = ErpNotificationBatch.model_validate(received.bodies[-1])
    note = batch.value[0]
    # BC's form: the set with a filter from 50 ms before the first change.
    assert note.change_type == "collection"
    assert "?$filter=lastModifiedDateTime%20gt%20" in note.resource
    ref = parse_resource(note.resource)
    assert ref is not None and ref.entity_set == "itemAvailabilityByLocation"
    assert ref.modified_after is not None
    assert timedelta(0) < first_change - ref.modified_after <= timedelta(milliseconds=51)
    outcome = await process_notification(erp, broker_bus, table_store, note)
    read = {(s.sku, s.location) for s in outcome.snapshots}
    assert changed <= read
    for api in Api:
        for s in await erp.list_subscriptions(api=api):
            await erp.delete_subscription(s.subscription_id, s.etag or "*", api=api)


def test_a_collection_resource_and_a_time_without_offset_are_accepted() -> None:
    resource = (
        f"api/contoso/commerceSync/v1.0/companies({COMPANY})/priceListLines"
        "?$filter=lastModifiedDateTime%20gt%202026-03-01T10:00:00.950Z"
    )
    ref = parse_resource(resource)
    assert ref is not None and ref.key is None and ref.entity_set == "priceListLines"
    assert ref.modified_after == datetime(2026, 3, 1, 10, 0, 0, 950000, tzinfo=UTC)
    # Any other query is not BC's form: the resource is not guessed at.
    assert parse_resource(resource.replace("gt", "lt")) is None
    note = _notification(resource, "collection", lastModifiedDateTime="2026-03-01T10:00:31")
    assert note.last_modified_date_time == datetime(2026, 3, 1, 10, 0, 31, tzinfo=UTC)
