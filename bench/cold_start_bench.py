"""Cold start of the price book: a new process answering its first quote, old path vs blob.

Starts the ERP simulator (default 250,000 items, 5,000 customers, about a million price list
lines), Azurite's tables and blobs, runs one full publish that writes both the table snapshot
and the snapshot blob, then starts fresh Python processes, alternating the two paths:
"tables" (today's load: the table snapshot + deltas) and "blob" (the blob + deltas). Each
child builds the book, answers one 20-line quote, then prices a fixed set of 200 quotes and
prints a digest of the answers, which must be equal for both paths. Reported per child:
seconds from spawn to the first quote (interpreter start and imports included), the load
alone, resident memory then (VmRSS) and the peak (ru_maxrss).

    .venv/bin/python -m bench.cold_start_bench [--items 250000 --customers 5000 --rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any
from uuid import UUID

STARTED = time.perf_counter()

from devtools.stack import LocalStack, StackPorts  # noqa: E402
from shared.adapters.blobs import BlobStore  # noqa: E402
from shared.adapters.erp.client import ErpClient  # noqa: E402
from shared.adapters.erp.config import ErpConfig  # noqa: E402
from shared.adapters.stores import price_snapshot  # noqa: E402
from shared.adapters.tables import TableStore  # noqa: E402
from shared.domain.pricing import QuoteRejected, default_currency_table  # noqa: E402
from shared.services.pricing import publisher as price_publisher  # noqa: E402
from shared.services.pricing.book import PriceBook  # noqa: E402
from shared.services.pricing.quotes import QuoteLineIn, QuoteRequest, price_from_book  # noqa: E402

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")
PREFIX = "cold"


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _quote(book: PriceBook, request: QuoteRequest) -> Any:
    try:
        return price_from_book(book, request, default_currency_table(), frozenset({"USD", "EUR"}))
    except QuoteRejected as error:
        return f"rejected: {error}"


async def _child(path: str, connection: str) -> None:
    tables = TableStore.from_connection_string(connection, PREFIX)
    store = BlobStore.from_connection_string(connection, price_snapshot.CONTAINER)
    snapshots = price_snapshot.SnapshotBlobs(store, PREFIX) if path == "blob" else None
    book = PriceBook(tables, snapshots=snapshots)
    load_started = time.perf_counter()
    await book.ensure_current()
    load = time.perf_counter() - load_started
    rng = random.Random(5)
    customers = sorted(book.customers)
    items = sorted(book.items)
    first = QuoteRequest(
        customer_id=customers[0],
        lines=[QuoteLineIn(sku=rng.choice(items), quantity=Decimal(3)) for _ in range(20)],
    )
    _quote(book, first)
    first_quote = time.perf_counter() - STARTED
    rss = _rss_mib()
    digest = hashlib.sha256()
    for _ in range(200):
        request = QuoteRequest(
            customer_id=rng.choice(customers),
            lines=[
                QuoteLineIn(sku=rng.choice(items), quantity=Decimal(rng.randint(1, 50)))
                for _ in range(5)
            ],
        )
        digest.update(json.dumps(_quote(book, request), default=str, sort_keys=True).encode())
    print(
        json.dumps(
            {
                "path": path,
                "loaded_from": book.loaded_from,
                "first_quote_s": first_quote,
                "load_s": load,
                "rss_mib": rss,
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "lines": len(book.index),
                "digest": digest.hexdigest(),
            }
        ),
        flush=True,
    )
    await tables.close()
    await store.close()


def _spawn(path: str, connection: str) -> dict[str, Any]:
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    command = [sys.executable, "-m", "bench.cold_start_bench", "--child", path, connection]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{path} child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["spawn_to_exit_s"] = time.perf_counter() - started
    return result


async def _publish(args: argparse.Namespace, stack: LocalStack, connection: str) -> None:
    tables = TableStore.from_connection_string(connection, PREFIX)
    store = BlobStore.from_connection_string(connection, price_snapshot.CONTAINER)
    config = ErpConfig(
        base_url=stack.settings()["ERP_BASE_URL"],
        tenant="local",
        environment="sandbox",
        company_id=COMPANY,
        page_size=args.page_size,
    )
    async with ErpClient(config) as erp:
        started = time.perf_counter()
        report = await price_publisher.publish(
            erp, tables, "full", snapshots=price_snapshot.SnapshotBlobs(store, PREFIX)
        )
        print(
            f"full publish with the snapshot blob: {report.read:,} rows in "
            f"{time.perf_counter() - started:.1f} s"
        )
    snapshot = await price_publisher.current_snapshot(tables)
    assert snapshot is not None
    blob = await store.read(price_snapshot.blob_name(PREFIX, snapshot.run_id))
    assert blob is not None
    print(f"snapshot blob: {len(blob.content) / 2**20:,.1f} MiB, {blob.metadata}")
    await tables.close()
    await store.close()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        asyncio.run(_child(sys.argv[2], sys.argv[3]))
        return
    # SIGTERM ends like Ctrl-C, so the finally block stops every process this started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=250_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--page-size", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    stack = LocalStack(ports=StackPorts.free(), erp_items=args.items, erp_customers=args.customers)
    try:
        stack.start_tables()
        stack.start_blobs()
        stack.start_erp(timeout=900)
        connection = stack.settings()["AzureWebJobsStorage"]
        asyncio.run(_publish(args, stack, connection))
        results = []
        for _ in range(args.rounds):
            for path in ("tables", "blob"):
                result = _spawn(path, connection)
                results.append(result)
                print(json.dumps(result), flush=True)
        print("\n| path | loaded from | spawn -> first quote s | load s | RSS MiB | peak MiB |")
        print("|---|---|---:|---:|---:|---:|")
        for r in results:
            print(
                f"| {r['path']} | {r['loaded_from']} | {r['first_quote_s']:.2f} | "
                f"{r['load_s']:.2f} | {r['rss_mib']:,.0f} | {r['peak_mib']:,.0f} |"
            )
        digests = {r["digest"] for r in results}
        print(f"quote digests equal across paths: {len(digests) == 1}")
    finally:
        with contextlib.suppress(Exception):
            stack.stop()


if __name__ == "__main__":
    main()
