"""How long one integration audit takes on the demo data, and what it costs the ERP.

Starts the demo stack (Azurite, Service Bus stand-in, ERP simulator with the demo sizes,
storefront simulator and the function app in the runner), brings it in step the way the
warm-up does (full price publish, stock reconciliation applied, full content sync) and the
webhook subscriptions timer, then times a full audit (all three layers) in process and
prints per-layer seconds and ERP requests. ``--html``/``--json`` keep the report (the README's
screenshot is taken from that HTML).

    .venv/bin/python -m bench.audit_bench [--items 200 --customers 50 --sample 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from devtools.stack import LocalStack, StackPorts
from shared.bootstrap import audit_dependencies, build_services, channel_targets, sync_options
from shared.config.settings import load_settings
from shared.services.content import run_content_sync
from shared.services.inventory.events import InboundMessage, apply_inventory_messages
from shared.services.inventory.policy import StockPolicy
from shared.services.inventory.reconciliation import reconcile_stock
from shared.services.operations.audit.html import render_html
from shared.services.operations.audit.service import AuditOptions, run_audit
from shared.services.pricing import publisher as price_publisher


class _Collected:
    """Keeps the reconciliation's corrections to apply them here, not through the bus."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []

    async def send_json(
        self, entity: str, body: Mapping[str, Any], *, message_id: str, **_: object
    ) -> None:
        self.messages.append(InboundMessage(message_id, json.dumps(dict(body), default=str)))


def _wait_for_subscriptions(stack: LocalStack, wanted: int, timeout: float = 60) -> int:
    admin = {"x-functions-key": stack.settings()["LOCAL_ADMIN_KEY"]}
    base = f"http://127.0.0.1:{stack.ports.runner}"
    httpx.post(f"{base}/admin/functions/erp_subscriptions", json={"input": ""}, headers=admin)
    url = f"http://127.0.0.1:{stack.ports.erp}/v2.0/local/sandbox/api/v2.0/subscriptions"
    deadline = time.monotonic() + timeout
    found = 0
    while time.monotonic() < deadline:
        found = len(httpx.get(url, timeout=10).json()["value"])
        if found >= wanted:
            break
        time.sleep(0.5)
    return found


async def _bench(stack: LocalStack, sample: int, html: Path | None, out: Path | None) -> None:
    env = stack.settings()
    settings = load_settings(
        storage_connection=env["AzureWebJobsStorage"],
        service_bus_connection=env["ServiceBusConnection"],
        erp_base_url=env["ERP_BASE_URL"],
        storefront_base_url=env["STOREFRONT_BASE_URL"],
        erp_webhook_url=env["ERP_WEBHOOK_URL"],
    )
    services = build_services(settings)
    try:
        started = time.perf_counter()
        await price_publisher.publish(services.erp, services.tables, "full")
        collected = _Collected()
        await reconcile_stock(services.erp, services.tables, collected)
        if collected.messages:
            await apply_inventory_messages(
                services.tables, collected, collected.messages, StockPolicy()
            )
        targets = channel_targets(settings, services.storefront_http)
        await run_content_sync(
            services.erp, services.tables, targets, "full", sync_options(settings)
        )
        print(f"stack brought in step in {time.perf_counter() - started:.1f} s")
        subscriptions = _wait_for_subscriptions(stack, len(settings.erp_webhook_resource_list))
        print(f"webhook subscriptions: {subscriptions}")

        before = services.erp.counters().requests_sent
        started = time.perf_counter()
        report = await run_audit(
            audit_dependencies(services), AuditOptions(sample_size=sample), print
        )
        total = time.perf_counter() - started
        requests = services.erp.counters().requests_sent - before
    finally:
        await services.close()
    print()
    print(f"audit total: {total:.2f} s, ERP requests: {requests}, passed: {report.passed}")
    for name in ("connectivity", "data", "logic"):
        layer = getattr(report, name)
        if layer is not None:
            print(f"  {name:<13} {layer.seconds:7.2f} s  passed={layer.verdict.passed}")
    if report.data is not None:
        rows = sum(d.erp.count for d in report.data.datasets)
        print(f"  data layer compared {rows} ERP rows with {report.data.erp_reads} ERP requests")
    if report.logic is not None:
        print(
            f"  logic layer: {report.logic.compared} triples, accuracy {report.logic.accuracy}, "
            f"quotes created/deleted {report.logic.quotes_created}/{report.logic.quotes_deleted}"
        )
    if html is not None:
        html.write_text(render_html(report), encoding="utf-8")
        print(f"wrote {html}")
    if out is not None:
        out.write_text(report.model_dump_json(by_alias=True, indent=2), encoding="utf-8")
        print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--html", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with LocalStack(StackPorts.free(), erp_items=args.items, erp_customers=args.customers) as stack:
        stack.start_all()
        asyncio.run(_bench(stack, args.sample, args.html, args.json))


if __name__ == "__main__":
    main()
