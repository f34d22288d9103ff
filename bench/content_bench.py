"""Content sync at catalog scale, against the ERP and storefront simulators and Azurite.

Starts the ERP simulator (default 250,000 items), the storefront simulator (the demo channels
``web`` and ``b2b-eu``) and Azurite as child processes, then times:

1. the full sync (first run ever: every product to every channel that sells it), run after run
   until the pass is complete, with the production time budget per run;
2. a delta sync after 1% of the items changed in the ERP;
3. a delta sync with no change at all.

For each it prints the wall time, the requests the ERP and each channel received (from the
simulators' own counters) and the minimum possible: ERP pages (rows / page size) plus, for a
delta, the join lookups (changed rows / numbers per lookup); channel batches (operations /
batch size).

    .venv/bin/python -m bench.content_bench [--items 250000] [--changed 0.01] [--budget 300]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx

from devtools.erp_sim.testing import standard_api
from devtools.stack import ROOT, LocalStack, StackPorts
from shared import bootstrap
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.adapters.tables import TableStore
from shared.config.settings import load_settings
from shared.services import content
from shared.services.content import SyncOptions
from shared.services.content.delivery import BatchLimits

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")
EU_CATEGORIES = {"CHAIR", "DESK", "LAMP", "STORAGE", "TABLE"}
# Setup writes go in as another principal, so they do not eat the sync's request budget.
SETUP_HEADERS = {"Authorization": "Bearer bench-setup"}


@contextmanager
def _child(argv: list[str], timeout: float) -> Iterator[str]:
    """Run a dev server with ``--port 0``, yield the URL from its READY line, stop it by PID."""
    popen = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        assert popen.stdout is not None
        deadline = time.monotonic() + timeout
        url = ""
        with selectors.DefaultSelector() as selector:
            selector.register(popen.stdout, selectors.EVENT_READ)
            while not url and (remaining := deadline - time.monotonic()) > 0:
                if selector.select(remaining):
                    line = popen.stdout.readline().decode().strip()
                    if line.startswith("READY "):
                        url = line.removeprefix("READY ")
                    elif not line and popen.poll() is not None:
                        break
        if not url:
            raise RuntimeError(f"{argv[2]} did not start")
        yield url
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(30)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(10)


def _erp_gets(erp_url: str) -> dict[str, int]:
    stats = httpx.get(f"{erp_url}/_sim/stats", timeout=30).json()
    return {
        entity_set: sum(methods.get("GET", {}).values())
        for entity_set, methods in stats["requests"].items()
    }


def _channel_requests(storefront_url: str) -> dict[str, int]:
    stats = httpx.get(f"{storefront_url}/_sim/stats", timeout=30).json()
    return {name: channel["requests"] for name, channel in stats["channels"].items()}


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


async def _change_items(erp_url: str, numbers: list[str]) -> None:
    """Rename ``numbers`` in the ERP (PATCH with If-Match, as any BC client must)."""
    base = standard_api(erp_url)
    async with httpx.AsyncClient(timeout=60, headers=SETUP_HEADERS) as client:
        found: list[dict[str, Any]] = []
        for start in range(0, len(numbers), 100):
            chunk = numbers[start : start + 100]
            literal = ",".join("'" + n.replace("'", "''") + "'" for n in chunk)
            response = await client.get(
                f"{base}/items", params={"$filter": f"number in ({literal})"}
            )
            response.raise_for_status()
            found += response.json()["value"]
        gate = asyncio.Semaphore(4)

        async def rename(item: dict[str, Any]) -> None:
            async with gate:
                response = await client.patch(
                    f"{base}/items({item['id']})",
                    json={"displayName": f"{item['displayName'][:80]} (v2)"},
                    headers={"If-Match": item["@odata.etag"]},
                )
                response.raise_for_status()

        await asyncio.gather(*(rename(item) for item in found))


def _expected_products(erp_url: str) -> dict[str, int]:
    info = httpx.get(f"{erp_url}/_sim/info", timeout=30).json()
    malformed = set(info["fixtures"]["malformedContent"])
    web = eu = 0
    url: str | None = f"{standard_api(erp_url)}/items?$select=number,blocked,itemCategoryCode"
    while url:
        page = httpx.get(url, headers=SETUP_HEADERS, timeout=120).json()
        for item in page["value"]:
            if item["blocked"] or item["number"] in malformed:
                continue
            web += 1
            eu += item["itemCategoryCode"] in EU_CATEGORIES
        url = page.get("@odata.nextLink")
    return {"web": web, "b2b-eu": eu}


async def _sync_until_complete(
    erp: ErpClient, tables: TableStore, targets: Any, options: SyncOptions
) -> tuple[float, list[content.RunStats]]:
    started = time.perf_counter()
    runs: list[content.RunStats] = []
    while True:
        stats = await content.run_content_sync(erp, tables, targets, "delta", options)
        runs.append(stats)
        if stats.complete or len(runs) >= 20:
            return time.perf_counter() - started, runs


def _report(
    title: str,
    seconds: float,
    runs: list[content.RunStats],
    erp_requests: dict[str, int],
    erp_minimum: dict[str, int],
    channel_requests: dict[str, int],
    channel_minimum: dict[str, int],
) -> None:
    sent = {name: sum(r.channels[name].sent for r in runs) for name in channel_minimum}
    print(f"\n== {title}")
    print(
        f"  wall time            {seconds:8.1f} s in {len(runs)} run(s),"
        f" complete: {runs[-1].complete}"
    )
    print(
        f"  products checked     {sum(r.products for r in runs):8d} (last run {runs[-1].products})"
    )
    total, minimum = sum(erp_requests.values()), sum(erp_minimum.values())
    print(f"  ERP requests         {total:8d}   minimum {minimum:6d}   {erp_requests}")
    print(f"  ERP minimum          {erp_minimum}")
    for name in channel_minimum:
        print(
            f"  channel {name:<12} {channel_requests.get(name, 0):8d}   minimum"
            f" {channel_minimum[name]:6d}   operations sent {sent[name]}"
        )


async def _run(args: argparse.Namespace, stack: LocalStack, erp_url: str, shop_url: str) -> None:
    settings = load_settings(STOREFRONT_BASE_URL=shop_url)
    tables = TableStore.from_connection_string(stack.settings()["AzureWebJobsStorage"], "bench")
    options = SyncOptions(
        budget_seconds=args.budget,
        erp_page_size=args.page_size,
        lookup_size=args.lookup_size,
        batch=BatchLimits(max_operations=args.batch_size),
    )
    config = ErpConfig(base_url=erp_url, tenant="local", environment="sandbox", company_id=COMPANY)
    expected = _expected_products(erp_url)
    page = args.page_size
    async with ErpClient(config) as erp, httpx.AsyncClient(timeout=60) as http:
        targets = bootstrap.channel_targets(settings, http)

        erp_before, shop_before = _erp_gets(erp_url), _channel_requests(shop_url)
        seconds, runs = await _sync_until_complete(erp, tables, targets, options)
        _report(
            f"full sync of {args.items:,} items (first run ever)",
            seconds,
            runs,
            _diff(_erp_gets(erp_url), erp_before),
            {
                "items": math.ceil(args.items / page),
                "itemContent": math.ceil(args.items / page),
                "itemCategories": 1,
            },
            _diff(_channel_requests(shop_url), shop_before),
            {name: math.ceil(n / args.batch_size) for name, n in expected.items()},
        )

        changed = sorted(
            random.Random(7).sample(
                [f"IT-{n:06d}" for n in range(20, args.items + 1)], int(args.items * args.changed)
            )
        )
        await _change_items(erp_url, changed)
        eu_changed = sum(code in EU_CATEGORIES for code in _categories_of(erp_url, changed))
        erp_before, shop_before = _erp_gets(erp_url), _channel_requests(shop_url)
        seconds, runs = await _sync_until_complete(erp, tables, targets, options)
        _report(
            f"delta sync, {len(changed):,} items changed ({args.changed:.0%})",
            seconds,
            runs,
            _diff(_erp_gets(erp_url), erp_before),
            {
                "items (changed rows / page)": math.ceil(len(changed) / page),
                "itemContent (delta page)": 1,
                "itemContent (join: changed / lookup size)": math.ceil(
                    len(changed) / args.lookup_size
                ),
                "itemCategories": 1,
            },
            _diff(_channel_requests(shop_url), shop_before),
            {
                "web": math.ceil(len(changed) / args.batch_size),
                "b2b-eu": math.ceil(eu_changed / args.batch_size),
            },
        )

        erp_before, shop_before = _erp_gets(erp_url), _channel_requests(shop_url)
        seconds, runs = await _sync_until_complete(erp, tables, targets, options)
        _report(
            "delta sync, nothing changed",
            seconds,
            runs,
            _diff(_erp_gets(erp_url), erp_before),
            {"items": 1, "itemContent": 1, "itemCategories": 1},
            _diff(_channel_requests(shop_url), shop_before),
            {"web": 0, "b2b-eu": 0},
        )
    await tables.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n  peak RSS of the sync process: {peak_mb:.0f} MB")


def _categories_of(erp_url: str, numbers: list[str]) -> list[str]:
    codes: list[str] = []
    for start in range(0, len(numbers), 100):
        chunk = numbers[start : start + 100]
        literal = ",".join("'" + n + "'" for n in chunk)
        response = httpx.get(
            f"{standard_api(erp_url)}/items",
            params={"$filter": f"number in ({literal})", "$select": "number,itemCategoryCode"},
            headers=SETUP_HEADERS,
            timeout=60,
        )
        codes += [item["itemCategoryCode"] for item in response.json()["value"]]
    return codes


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.content_bench", description=__doc__)
    parser.add_argument("--items", type=int, default=250_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of items changed")
    parser.add_argument("--page-size", type=int, default=5_000)
    parser.add_argument("--lookup-size", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--budget", type=float, default=300, help="seconds per run")
    args = parser.parse_args()
    python = sys.executable
    stack = LocalStack(ports=StackPorts.free())
    try:
        stack.start_tables()
        print(f"starting the ERP simulator with {args.items:,} items ...", flush=True)
        erp_argv = [python, "-m", "devtools.erp_sim", "--port", "0", "--items", str(args.items)]
        erp_argv += ["--customers", "200", "--seed", "42"]
        with (
            _child(erp_argv, timeout=600) as erp_url,
            _child([python, "-m", "devtools.storefront_sim", "--port", "0"], 60) as shop_url,
        ):
            asyncio.run(_run(args, stack, erp_url, shop_url))
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
