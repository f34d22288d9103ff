"""Cold start of the price book: a new process answering its first quote, old path vs blob.

Starts the ERP simulator (default 250,000 items, 5,000 customers, about a million price list
lines), Azurite's tables and blobs, runs one full publish that writes both the table snapshot
and the snapshot blob, then starts fresh Python processes, alternating the paths: "tables"
(the table snapshot + deltas, every line built at load) and "blob" (the blob + deltas, lines
and items built when a quote touches them). With ``--baseline-tree DIR`` (a checkout of an
earlier commit) a third child per round runs the blob path of that code, "blob@baseline".
Each child first imports the whole function app (``function_app``, as the Functions worker does
when it indexes a new instance), then builds the book, answers one 20-line quote, then prices a
fixed set of 200 quotes and prints a digest of the answers, which must be equal for all paths.
The SKUs quoted come from a file the parent writes (the snapshot's item numbers), so no child
enumerates its items before the first quote. Reported per child: seconds from spawn to the
first quote (interpreter start and the app's import included; the Functions host's own start
is not), the app's import alone, the load alone, resident memory then (VmRSS) and the peak
(VmHWM); the load average before each round.

    .venv/bin/python -m bench.cold_start_bench [--items 250000 --customers 5000 --rounds 2]
        [--baseline-tree /tmp/main-checkout]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

STARTED = time.perf_counter()

from shared.adapters.blobs import BlobStore  # noqa: E402
from shared.adapters.stores import price_snapshot  # noqa: E402
from shared.adapters.tables import TableStore  # noqa: E402
from shared.domain.pricing import QuoteRejected, default_currency_table  # noqa: E402
from shared.services.errors import UnknownCustomer  # noqa: E402
from shared.services.pricing.book import PriceBook  # noqa: E402
from shared.services.pricing.quotes import (  # noqa: E402
    QuoteLineIn,
    QuoteRequest,
    price_from_book,
    quote_prices,
)

if TYPE_CHECKING:
    from devtools.stack import LocalStack

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")
PREFIX = "cold"
# The baseline's blob path reads the same snapshot in the previous release's format (2, no
# directory), under its own blob name.
BASELINE_PREFIX = "coldv2"


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    """VmHWM: this process's peak resident memory (ru_maxrss would carry the parent's over
    the fork and exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _quote(book: PriceBook, request: QuoteRequest) -> Any:
    try:
        return price_from_book(book, request, default_currency_table(), frozenset({"USD", "EUR"}))
    except QuoteRejected as error:
        return f"rejected: {error}"


async def _child(path: str, connection: str, skus_file: str, app_import: float) -> None:
    tables = TableStore.from_connection_string(connection, PREFIX)
    store = BlobStore.from_connection_string(connection, price_snapshot.CONTAINER)
    blob_prefix = BASELINE_PREFIX if path == "blob@baseline" else PREFIX
    snapshots = price_snapshot.SnapshotBlobs(store, blob_prefix) if path != "tables" else None
    book = PriceBook(tables, snapshots=snapshots)
    load_started = time.perf_counter()
    await book.ensure_current()
    load = time.perf_counter() - load_started
    rng = random.Random(5)
    customers = sorted(book.customers)
    with open(skus_file) as file:
        items: list[str] = json.load(file)
    first = QuoteRequest(
        customer_id=customers[0],
        lines=[QuoteLineIn(sku=rng.choice(items), quantity=Decimal(3)) for _ in range(20)],
    )
    _quote(book, first)
    first_quote = time.perf_counter() - STARTED
    rss = _rss_mib()
    digest = hashlib.sha256()
    # Right after the start most items are touched for the first time: on the blob path a
    # quote then builds their lines, so these latencies are the cold instance's, not a warm one's.
    latencies = _timed_quotes(book, customers, items, rng, 200, lines=5, most=50, digest=digest)
    # The steady state the contract's bar is about: 20-line quotes over the whole catalog.
    # Beyond the book's caches (20,000 items' lines) most items are built again on the blob
    # path; the table path built them all at load.
    steady = _timed_quotes(book, customers, items, rng, 1000, lines=20, most=60)
    peak_before_reload = _peak_mib()
    reload_s, during = await _reload_while_quoting(book, customers, items, rng)
    print(
        json.dumps(
            {
                "path": path,
                "loaded_from": book.loaded_from,
                "first_quote_s": first_quote,
                "quote_p50_ms": latencies[len(latencies) // 2],
                "quote_p99_ms": latencies[int(len(latencies) * 0.99) - 1],
                "app_import_s": app_import,
                "steady_20_line_p50_ms": steady[len(steady) // 2],
                "steady_20_line_p99_ms": steady[int(len(steady) * 0.99) - 1],
                "steady_20_line_max_ms": steady[-1],
                "reload_s": reload_s,
                "quotes_during_reload": len(during),
                "during_reload_p50_ms": during[len(during) // 2] if during else None,
                "during_reload_max_ms": during[-1] if during else None,
                "load_s": load,
                "rss_mib": rss,
                "peak_mib": peak_before_reload,
                "peak_with_reload_mib": _peak_mib(),  # the old and the new book at once
                "digest": digest.hexdigest(),
            }
        ),
        flush=True,
    )
    await tables.close()
    await store.close()


def _timed_quotes(
    book: PriceBook,
    customers: list[str],
    items: list[str],
    rng: random.Random,
    count: int,
    *,
    lines: int,
    most: int,
    digest: Any = None,
) -> list[float]:
    """``count`` quotes of ``lines`` random items (quantities 1 to ``most``) for random
    customers: their latencies in ms, sorted; each answer goes into ``digest`` if given."""
    latencies: list[float] = []
    for _ in range(count):
        request = QuoteRequest(
            customer_id=rng.choice(customers),
            lines=[
                QuoteLineIn(sku=rng.choice(items), quantity=Decimal(rng.randint(1, most)))
                for _ in range(lines)
            ],
        )
        started = time.perf_counter()
        answer = _quote(book, request)
        latencies.append((time.perf_counter() - started) * 1000)
        if digest is not None:
            digest.update(json.dumps(answer, default=str, sort_keys=True).encode())
    return sorted(latencies)


async def _reload_while_quoting(
    book: PriceBook, customers: list[str], items: list[str], rng: random.Random
) -> tuple[float, list[float]]:
    """What an instance does after a full publish: one caller's refresh reloads the book
    (holding the book's lock, as ``ensure_current`` does when the feed announces a snapshot)
    while quotes keep coming through ``quote_prices`` every 5 ms. Answers the reload's seconds
    and the latencies of the quotes that arrived while it ran. Uses the book's private lock
    and loader: the feed's reload entry is minutes old by now, so a real one cannot be waited
    for here."""
    book._refresh_interval = 0.0  # every quote checks for a refresh, as when one is due

    async def reload() -> float:
        started = time.perf_counter()
        async with book._lock:
            await book._load_all()
        return time.perf_counter() - started

    reloading = asyncio.create_task(reload())
    await asyncio.sleep(0)  # the reload takes the lock
    latencies: list[float] = []
    while not reloading.done():
        request = QuoteRequest(
            customer_id=rng.choice(customers),
            lines=[QuoteLineIn(sku=rng.choice(items), quantity=Decimal(2)) for _ in range(5)],
        )
        started = time.perf_counter()
        with contextlib.suppress(QuoteRejected, UnknownCustomer):
            await quote_prices(book, request, default_currency_table(), frozenset({"USD", "EUR"}))
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.005)
    return await reloading, sorted(latencies)


def _spawn(path: str, connection: str, skus_file: str, tree: str) -> dict[str, Any]:
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": tree}
    # This script's child code, importing the shared/ and devtools/ of ``tree``.
    command = [sys.executable, os.path.abspath(__file__), "--child", path, connection, skus_file]
    out = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        # Reported and counted, not fatal: the other children's figures still stand.
        print(f"{path} child failed ({out.returncode}):\n{out.stderr[-12000:]}", flush=True)
        return {"path": path, "failed": out.returncode}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["spawn_to_exit_s"] = time.perf_counter() - started
    return result


async def _publish(
    args: argparse.Namespace, stack: LocalStack, connection: str, skus_file: str
) -> None:
    from shared.adapters.erp.client import ErpClient
    from shared.adapters.erp.config import ErpConfig
    from shared.services.pricing import publisher as price_publisher

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
    content = await price_snapshot.read_snapshot(
        price_snapshot.SnapshotBlobs(store, PREFIX), snapshot.run_id
    )
    numbers = sorted(
        {
            key
            for frame in content.column_frames()
            if frame.dataset == "items"
            for key, _ in frame.rows()
        }
    )
    with open(skus_file, "w") as file:
        json.dump(numbers, file)
    await _write_format_2_copy(store, content, snapshot.run_id)
    await tables.close()
    await store.close()


async def _write_format_2_copy(
    store: BlobStore, content: price_snapshot.SnapshotContent, run_id: str
) -> None:
    """The snapshot again as the previous release wrote it (format 2: the same frames, no
    directory), for the baseline tree's blob path."""
    name = price_snapshot.blob_name(BASELINE_PREFIX, run_id)
    digest, blocks, records = hashlib.sha256(), [], 0
    for offset, length, count in content.spans:
        data = content.content[offset - 8 : offset + length]  # with its length and count
        block = base64.b64encode(f"{len(blocks):08d}".encode()).decode()
        await store.stage_block(name, block, data)
        digest.update(data)
        blocks.append(block)
        records += count
    manifest = {"format": "2", "runid": run_id, "frames": str(len(blocks))}
    manifest.update(records=str(records), sha256=digest.hexdigest())
    await store.commit(name, blocks, manifest)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        importing = time.perf_counter()
        import function_app  # noqa: F401  (what the worker imports to index a new instance)

        app_import = time.perf_counter() - importing
        asyncio.run(_child(sys.argv[2], sys.argv[3], sys.argv[4], app_import))
        return
    from devtools.stack import LocalStack, StackPorts

    # SIGTERM ends like Ctrl-C, so the finally block stops every process this started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=250_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--page-size", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline-tree", help="a checkout whose blob path runs beside ours")
    args = parser.parse_args()
    paths = [("tables", os.getcwd()), ("blob", os.getcwd())]
    if args.baseline_tree:
        paths.append(("blob@baseline", os.path.abspath(args.baseline_tree)))
    skus_file = os.path.join(tempfile.mkdtemp(prefix="cold-start-"), "skus.json")
    stack = LocalStack(ports=StackPorts.free(), erp_items=args.items, erp_customers=args.customers)
    try:
        stack.start_tables()
        stack.start_blobs()
        stack.start_erp(timeout=900)
        connection = stack.settings()["AzureWebJobsStorage"]
        asyncio.run(_publish(args, stack, connection, skus_file))
        results = []
        for _ in range(args.rounds):
            print(f"load average: {os.getloadavg()}", flush=True)
            for label, tree in paths:
                result = _spawn(label, connection, skus_file, tree)
                result["load_average"] = os.getloadavg()
                results.append(result)
                print(json.dumps(result), flush=True)
        print(
            "\n| path | loaded from | spawn -> first quote s | app import s | load s | RSS MiB "
            "| peak MiB | next 200 quotes p50 / p99 ms | 20-line quotes p50 / p99 / max ms "
            "| reload s | quotes during it | their p50 / max ms | load |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        failed = [r for r in results if "failed" in r]
        results = [r for r in results if "failed" not in r]
        print(f"children failed: {len(failed)}")
        for r in results:
            print(
                f"| {r['path']} | {r['loaded_from']} | {r['first_quote_s']:.2f} | "
                f"{r['app_import_s']:.2f} | {r['load_s']:.2f} | {r['rss_mib']:,.0f} | "
                f"{r['peak_mib']:,.0f} | "
                f"{r['quote_p50_ms']:.2f} / {r['quote_p99_ms']:.2f} | "
                f"{r['steady_20_line_p50_ms']:.2f} / {r['steady_20_line_p99_ms']:.2f} / "
                f"{r['steady_20_line_max_ms']:.1f} | {r['reload_s']:.2f} | "
                f"{r['quotes_during_reload']} | {r['during_reload_p50_ms'] or 0:.1f} / "
                f"{r['during_reload_max_ms'] or 0:.1f} | {r['load_average'][0]:.1f} |"
            )
        digests = {r["digest"] for r in results}
        print(f"quote digests equal across paths: {len(digests) == 1}")
    finally:
        with contextlib.suppress(Exception):
            stack.stop()


if __name__ == "__main__":
    main()
