"""Price publishing and quoting at catalog scale, on the real parts.

Starts the ERP simulator (default 250,000 items, 5,000 customers, about a million price list
lines) and Azurite, runs a full publish into Table storage, loads a price book from the
tables the way an instance does at start, then times quotes in process (1-line and 20-line
carts) and checks, via the simulator's request counters, that quoting made no ERP call.

    .venv/bin/python -m bench.price_publish_bench [--items 250000 --customers 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import resource
import statistics
import time
from decimal import Decimal
from uuid import UUID

import httpx

from devtools.stack import LocalStack, StackPorts
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.adapters.tables import TableStore
from shared.domain.pricing import QuoteRejected, default_currency_table
from shared.services.pricing import publisher as price_publisher
from shared.services.pricing.book import PriceBook
from shared.services.pricing.quotes import QuoteLineIn, QuoteRequest, price_from_book

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")


def _rss_mib() -> float:
    """Current resident set size (not the peak), from /proc."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _time_quotes(book: PriceBook, lines: int, count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    customers = sorted(book.customers)
    items = sorted(n for n, item in book.items.items() if not item.blocked)
    currencies = default_currency_table()
    sold = frozenset({"USD", "EUR"})
    timings = []
    for _ in range(count):
        request = QuoteRequest(
            customer_id=rng.choice(customers),
            lines=[
                QuoteLineIn(sku=rng.choice(items), quantity=Decimal(rng.randint(1, 50)))
                for _ in range(lines)
            ],
        )
        started = time.perf_counter()
        # A rejected quote (say, no price in the customer's currency) is still a full evaluation.
        with contextlib.suppress(QuoteRejected):
            price_from_book(book, request, currencies, sold)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def _run(args: argparse.Namespace, stack: LocalStack) -> None:
    erp_url = stack.settings()["ERP_BASE_URL"]
    tables = TableStore.from_connection_string(stack.settings()["AzureWebJobsStorage"], "bench")
    config = ErpConfig(
        base_url=erp_url,
        tenant="local",
        environment="sandbox",
        company_id=COMPANY,
        page_size=args.page_size,
    )
    async with ErpClient(config) as erp:
        started = time.perf_counter()
        report = await price_publisher.publish(erp, tables, "full")
        publish_seconds = time.perf_counter() - started
        requests_sent = erp.counters().requests_sent
    print(
        f"full publish: {report.read:,} rows read, {report.written:,} written, "
        f"{report.skipped} skipped in {publish_seconds:.1f} s "
        f"({report.read / publish_seconds:,.0f} rows/s, {requests_sent} ERP requests)"
    )

    gc.collect()
    rss_before = _rss_mib()
    book = PriceBook(tables)
    started = time.perf_counter()
    await book.ensure_current()
    load_seconds = time.perf_counter() - started
    gc.collect()
    print(
        f"price book load from tables: {len(book.index):,} lines, {len(book.items):,} items, "
        f"{len(book.customers):,} customers in {load_seconds:.1f} s; "
        f"resident memory grew by {_rss_mib() - rss_before:,.0f} MiB"
    )

    stats_before = httpx.get(f"{erp_url}/_sim/stats", timeout=30).json()["total"]
    rows = []
    for lines in (1, 20):
        timings = _time_quotes(book, lines, args.quotes, seed=lines)
        rows.append(
            (
                lines,
                statistics.median(timings),
                _percentile(timings, 0.99),
                max(timings),
            )
        )
    stats_after = httpx.get(f"{erp_url}/_sim/stats", timeout=30).json()["total"]
    print(f"\nquote latency in process ({args.quotes:,} quotes each)")
    print("| lines | p50 ms | p99 ms | max ms |")
    print("|---:|---:|---:|---:|")
    for lines, p50, p99, worst in rows:
        print(f"| {lines} | {p50:.3f} | {p99:.3f} | {worst:.3f} |")
    print(f"ERP requests made while quoting: {stats_after - stats_before}")
    assert stats_after == stats_before, "the quote path called the ERP"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:,.0f} MiB")
    await tables.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=250_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--quotes", type=int, default=5_000)
    parser.add_argument("--page-size", type=int, default=5_000)
    args = parser.parse_args()
    stack = LocalStack(ports=StackPorts.free(), erp_items=args.items, erp_customers=args.customers)
    try:
        stack.start_tables()
        started = time.perf_counter()
        stack.start_erp(timeout=600)  # generating a million price lines takes a while
        print(
            f"simulator up with {args.items:,} items / {args.customers:,} customers "
            f"in {time.perf_counter() - started:.0f} s"
        )
        asyncio.run(_run(args, stack))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
