"""The integration audit against real components: a private ERP simulator and storefront
simulator, Azurite (own table prefix) and the Service Bus stand-in.

One clean stack (full price publish, reconciliation, full content sync) passes the data layer
and the logic layer; then a price change in the ERP without a publish shows in both layers,
with both prices in the logic layer; every sales quote the audit created is deleted again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from devtools.erp_sim.testing import custom_api, running_simulator, standard_api
from devtools.servicebus.testing import running_standin
from devtools.storefront_sim.testing import storefront_simulator
from shared.adapters.stores import erp_usage
from shared.bootstrap import (
    Services,
    audit_dependencies,
    build_services,
    channel_targets,
    get_policy,
    sync_options,
)
from shared.config.settings import Settings, load_settings
from shared.services.content import run_content_sync
from shared.services.inventory.events import InboundMessage, apply_inventory_messages
from shared.services.inventory.messages import INVENTORY_QUEUE
from shared.services.inventory.policy import StockPolicy
from shared.services.inventory.reconciliation import reconcile_stock
from shared.services.operations.audit import runs
from shared.services.operations.audit.html import render_html
from shared.services.operations.audit.logic_layer import _blocked_customers, quantity_breaks
from shared.services.operations.audit.sampling import sample_triples
from shared.services.operations.audit.service import AuditOptions, run_audit
from shared.services.pricing import publisher as price_publisher
from shared.services.pricing.book import PriceBook
from tests.integration.broker_bus import BrokerBus

pytestmark = pytest.mark.slow
SAMPLE = 12
SEED = 4


@pytest.fixture
def sim() -> Iterator[str]:
    with running_simulator(seed=11, items=40, customers=10) as url:
        yield url


@pytest.fixture
def storefront() -> Iterator[str]:
    with storefront_simulator() as url:
        yield url


@pytest.fixture
def settings(
    sim: str,
    storefront: str,
    azurite_connection: str,
    servicebus_connection: str,
    table_prefix: str,
) -> Settings:
    return load_settings(
        storage_connection=azurite_connection,
        service_bus_connection=servicebus_connection,
        erp_base_url=sim,
        storefront_base_url=storefront,
        table_prefix=table_prefix,
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = build_services(settings)
    try:
        yield built
    finally:
        await built.close()


async def _sync_everything(services: Services, bus: BrokerBus) -> None:
    await price_publisher.publish(services.erp, services.tables, "full")
    await reconcile_stock(services.erp, services.tables, bus)
    messages = [
        InboundMessage(m.message_id, json.dumps(dict(m.body)))
        for m in (await bus.to(INVENTORY_QUEUE))
    ]
    await apply_inventory_messages(services.tables, bus, messages, StockPolicy())
    targets = channel_targets(services.settings, services.storefront_http)
    await run_content_sync(
        services.erp, services.tables, targets, "full", sync_options(services.settings)
    )


def _quotes_in_erp(sim: str) -> int:
    response = httpx.get(f"{standard_api(sim)}/salesQuotes", timeout=10)
    response.raise_for_status()
    return len(response.json()["value"])


def _price_lines(sim: str, item: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{custom_api(sim)}/priceListLines",
        params={"$filter": f"assetNo eq '{item}'"},
        timeout=10,
    )
    response.raise_for_status()
    return [line for line in response.json()["value"] if line["amountType"] != "Discount"]


def _raise_prices(sim: str, item: str, by: Decimal) -> list[str]:
    """Raise the item card and every price line of ``item`` in the ERP, without a publish."""
    changed = []
    for line in _price_lines(sim, item):
        response = httpx.patch(
            f"{custom_api(sim)}/priceListLines({line['id']})",
            json={"unitPrice": float(Decimal(str(line["unitPrice"])) + by)},
            headers={"If-Match": line["@odata.etag"]},
            timeout=10,
        )
        response.raise_for_status()
        changed.append(str(line["id"]))
    found = httpx.get(
        f"{standard_api(sim)}/items", params={"$filter": f"number eq '{item}'"}, timeout=10
    ).json()["value"][0]
    httpx.patch(
        f"{standard_api(sim)}/items({found['id']})",
        json={"unitPrice": float(Decimal(str(found["unitPrice"])) + by)},
        headers={"If-Match": found["@odata.etag"]},
        timeout=10,
    ).raise_for_status()
    return changed


async def _first_sampled_item(services: Services) -> str:
    book = PriceBook(services.tables)
    await book.ensure_current()
    blocked = await _blocked_customers(services.erp)
    customers = [c for c in book.customers if c not in blocked]
    items = [n for n, i in book.items.items() if not i.blocked]
    return sample_triples(customers, items, quantity_breaks(book), SAMPLE, SEED)[0].item


async def test_clean_stack_passes_then_an_unpublished_price_change_fails(
    services: Services, sim: str, broker_bus: BrokerBus
) -> None:
    await _sync_everything(services, broker_bus)
    options = AuditOptions(layers=("data", "logic"), sample_size=SAMPLE, seed=SEED)
    lines: list[str] = []

    clean = await run_audit(audit_dependencies(services), options, lines.append)

    assert clean.data is not None and clean.logic is not None
    assert clean.data.verdict.passed, clean.data.verdict.reasons
    names = {d.name for d in clean.data.datasets}
    assert {"items", "customers", "price list lines", "availability", "channel web"} <= names
    for dataset in clean.data.datasets:
        assert dataset.in_sync, dataset
        assert dataset.erp == dataset.product
        assert dataset.erp.count > 0
    assert clean.logic.compared == SAMPLE and clean.logic.accuracy == Decimal(1)
    assert clean.logic.verdict.passed
    assert clean.passed
    assert any(line.startswith("data: price list lines:") for line in lines)
    assert clean.logic.quotes_created == clean.logic.quotes_deleted >= SAMPLE
    assert _quotes_in_erp(sim) == 0

    item = await _first_sampled_item(services)
    changed = _raise_prices(sim, item, Decimal("7.00"))
    assert changed

    # The publisher stays stopped: judged once the policy's objective has passed.
    later = datetime.now(UTC) + get_policy().prices.freshness_objective + timedelta(minutes=1)
    dirty = await run_audit(audit_dependencies(services), replace(options, judge_at=later))

    assert dirty.data is not None and dirty.logic is not None
    lines_layer = next(d for d in dirty.data.datasets if d.name == "price list lines")
    assert lines_layer.erp.checksum != lines_layer.product.checksum
    assert lines_layer.differing.total == len(changed)
    assert {row.key for row in lines_layer.differing.rows} == set(changed)
    assert all(row.over_policy for row in lines_layer.differing.rows)
    assert not dirty.data.verdict.passed
    assert any("price list lines" in reason for reason in dirty.data.verdict.reasons)
    assert any("publisher last succeeded" in reason for reason in dirty.data.verdict.reasons)

    mismatch = next(m for m in dirty.logic.mismatches if m.item == item)
    assert mismatch.product_unit_price is not None and mismatch.erp_unit_price is not None
    assert mismatch.erp_unit_price - mismatch.product_unit_price == Decimal("7.00")
    assert mismatch.winning_line is not None
    assert dirty.logic.accuracy is not None and dirty.logic.accuracy < 1
    assert not dirty.logic.verdict.passed and not dirty.passed
    assert _quotes_in_erp(sim) == 0

    # Both runs are stored; the latest is the failing one and the history has both points.
    latest = await runs.latest_report(services.tables)
    assert latest is not None and latest.run_id == dirty.run_id
    history = await runs.history(services.tables)
    assert [p.accuracy for p in history if p.accuracy is not None] == [
        Decimal(1),
        dirty.logic.accuracy,
    ]
    page = render_html(dirty.model_copy(update={"history": history}))
    assert "FAIL" in page and "<svg" in page and str(mismatch.erp_unit_price) in page


async def test_connectivity_reports_latency_usage_queues_and_missing_webhooks(
    services: Services,
) -> None:
    # Some ERP traffic from this process, recorded the way the heartbeat records it.
    async for _ in services.erp.iter_locations():
        pass
    before = await erp_usage.recorder_for(services.erp).record(services.tables)
    assert before.requests_sent >= 1

    report = await run_audit(
        audit_dependencies(services), AuditOptions(layers=("connectivity",), store=False)
    )

    layer = report.connectivity
    assert layer is not None
    assert layer.latency.probes == 10 and layer.latency.failures == 0
    assert layer.latency.p50_ms is not None and layer.latency.p99_ms is not None
    assert layer.latency.p50_ms <= layer.latency.p99_ms
    # This process's requests so far, including the 10 probes, are in the window's figure
    # (except the two subscription listings, one per API root, sent after it was read).
    sent = services.erp.counters().requests_sent
    assert layer.usage.window_requests >= sent - 2
    assert layer.usage.budget_share == (
        Decimal(layer.usage.window_requests) / Decimal(6000)
    ).quantize(Decimal("0.0001"))
    assert {q.queue for q in layer.queues} >= {"orders", "inventory-events"}
    # The private simulator has no webhook subscriptions: every configured resource fails.
    resources = services.settings.erp_webhook_resource_list
    assert [s.resource for s in layer.subscriptions] == list(resources)
    assert not any(s.ok for s in layer.subscriptions)
    assert not layer.verdict.passed
    assert any("no subscription" in reason for reason in layer.verdict.reasons)
    for queue in layer.queues:
        flagged = any(reason.startswith(f"{queue.queue}:") for reason in layer.verdict.reasons)
        assert flagged == (
            queue.dead_letters > get_policy().audit.max_dead_letters or bool(queue.error)
        )


def _command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AzureWebJobsStorage": settings.storage_connection or "",
        "ServiceBusConnection": settings.service_bus_connection or "",
        "ERP_BASE_URL": settings.erp_base_url,
        "STOREFRONT_BASE_URL": settings.storefront_base_url,
        "TABLE_PREFIX": settings.table_prefix,
    }
    return subprocess.run(
        [sys.executable, "-m", "functions.audit_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=170,
        cwd=Path(__file__).resolve().parents[2],
    )


async def test_command_exit_code_follows_the_verdict(
    services: Services, settings: Settings, sim: str, tmp_path: Path, broker_bus: BrokerBus
) -> None:
    await _sync_everything(services, broker_bus)
    passing = _command(
        settings,
        "--layers",
        "data",
        "--json",
        str(tmp_path / "a.json"),
        "--html",
        str(tmp_path / "a.html"),
    )
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "data: price list lines:" in passing.stdout
    assert json.loads((tmp_path / "a.json").read_text())["passed"] is True
    assert (tmp_path / "a.html").read_text().startswith("<!DOCTYPE html>")

    # A price line deleted in the ERP stays in the published data until a full publish.
    line = _price_lines(sim, (await _first_sampled_item(services)))[0]
    httpx.delete(
        f"{custom_api(sim)}/priceListLines({line['id']})",
        headers={"If-Match": line["@odata.etag"]},
        timeout=10,
    ).raise_for_status()
    failing = _command(settings, "--layers", "data", "--json", str(tmp_path / "b.json"))
    assert failing.returncode == 1, failing.stdout + failing.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    dataset = next(d for d in report["data"]["datasets"] if d["name"] == "price list lines")
    assert dataset["extra"]["total"] == 1 and dataset["extra"]["rows"][0]["key"] == line["id"]


def test_command_usage_errors_exit_2(settings: Settings) -> None:
    result = _command(settings, "--layers", "data,everything")
    assert result.returncode == 2
    assert "--layers" in result.stderr


async def test_a_filled_dead_letter_queue_fails_connectivity(
    sim: str, azurite_connection: str, table_prefix: str
) -> None:
    with running_standin() as standin:
        connection = standin.connection_string
        with ServiceBusClient.from_connection_string(connection, retry_total=0) as client:
            with client.get_queue_sender("orders") as sender:
                sender.send_messages(ServiceBusMessage("{}", message_id="dead-1"))
            with client.get_queue_receiver("orders", max_wait_time=5) as receiver:
                for message in receiver.receive_messages(max_message_count=1, max_wait_time=5):
                    receiver.dead_letter_message(message, reason="test", error_description="x")
            with client.get_queue_sender("inventory-events") as sender:
                sender.send_messages(ServiceBusMessage("{}", message_id="waiting-1"))
        settings = load_settings(
            storage_connection=azurite_connection,
            service_bus_connection=connection,
            erp_base_url=sim,
            table_prefix=table_prefix,
        )
        services = build_services(settings)
        try:
            report = await run_audit(
                audit_dependencies(services), AuditOptions(layers=("connectivity",), store=False)
            )
        finally:
            await services.close()
    assert report.connectivity is not None
    queues = {q.queue: q for q in report.connectivity.queues}
    assert (
        queues["orders"].dead_letters == 1
        and queues["orders"].oldest_dead_letter_seconds is not None
    )
    assert queues["inventory-events"].waiting == 1
    assert queues["inventory-events"].oldest_waiting_seconds is not None
    assert queues["selftest"].dead_letters == 0 and queues["selftest"].waiting == 0
    reasons = report.connectivity.verdict.reasons
    assert any(r.startswith("orders: 1 dead-lettered") for r in reasons), reasons
    assert not any(r.startswith("selftest:") for r in reasons)
