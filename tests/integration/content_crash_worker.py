"""A content-sync worker that is killed for real (``os._exit``) mid-run (no tests here).

Run as ``python -m tests.integration.content_crash_worker`` with its settings on stdin: it
starts a content sync against the given ERP simulator, storefront and tables, and dies the
moment the storefront has applied the n-th batch of the ``web`` channel, before the product
recorded it: no ``finally``, no run record, no lease release, exactly what a killed Functions
worker leaves behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any
from uuid import UUID

import httpx

from functions.timer_runs import recorded_timer
from shared import bootstrap
from shared.adapters.channels import CatalogBatch, ChannelAdapter, OperationResult
from shared.adapters.channels_webhook import WebhookPolicy
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.adapters.tables import TableStore
from shared.config.settings import load_settings
from shared.services import content
from shared.services.content import ChannelTarget, SyncOptions
from shared.services.content.delivery import BatchLimits

KILLED_EXIT = 19
TIMER = "content_sync_delta"
FAST = WebhookPolicy(max_attempts=3, base_backoff_seconds=0.01, max_backoff_seconds=0.02)


class DieAfter:
    """Passes batches to the real adapter; exits the process right after the n-th applied."""

    def __init__(self, inner: ChannelAdapter, pushes: int) -> None:
        self.inner, self.left = inner, pushes
        self.name, self.counters = inner.name, inner.counters

    async def push(self, batch: CatalogBatch) -> list[OperationResult]:
        results = await self.inner.push(batch)
        self.left -= 1
        if self.left == 0:
            os._exit(KILLED_EXIT)
        return results


def options(settings: dict[str, Any]) -> SyncOptions:
    """The options both the doomed run and the resuming one use (a short lease)."""
    return SyncOptions(
        erp_page_size=40,
        lookup_size=15,
        batch=BatchLimits(max_operations=25),
        budget_seconds=float(settings["budgetSeconds"]),
        lease_margin_seconds=1.0,
    )


async def run(settings: dict[str, Any]) -> int:
    config = ErpConfig(
        base_url=settings["erp"],
        tenant="local",
        environment="sandbox",
        company_id=UUID(settings["company"]),
    )
    tables = TableStore.from_connection_string(settings["storage"], settings["prefix"])
    app_settings = load_settings(STOREFRONT_BASE_URL=settings["storefront"])
    async with ErpClient(config) as erp, httpx.AsyncClient(timeout=10) as http:
        targets = bootstrap.channel_targets(app_settings, http, FAST)
        web = targets["web"]
        doomed = {**targets, "web": ChannelTarget(web.profile, DieAfter(web.adapter, 3))}

        async def timer_run() -> None:
            await content.run_content_sync(erp, tables, doomed, "delta", options(settings))

        await recorded_timer(TIMER, tables=lambda: tables)(timer_run)()
    return 3  # reached only if the worker was not killed: the test fails on this code


if __name__ == "__main__":
    sys.exit(asyncio.run(run(json.loads(sys.stdin.read()))))
