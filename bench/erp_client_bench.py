"""Benchmark of the ERP client against the local simulator; prints a small table.

Starts ``python -m devtools.erp_sim`` on a free loopback port with 250,000 items (about a
million price list lines) and measures:
- rows/second of a full price-list-line read through ``ErpClient`` (page size as configured);
- peak memory growth of the client while iterating (tracemalloc, Python allocations);
- the client's overhead per request: the same small GET through ``ErpClient`` and through
  raw httpx, averaged over a few hundred requests.

Run: .venv/bin/python bench/erp_client_bench.py [--items 250000] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.adapters.erp import ErpClient, ErpConfig  # noqa: E402
from shared.adapters.erp.models import Customer  # noqa: E402
from shared.adapters.erp.odata import eq_filter  # noqa: E402

COMPANY_ID = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def simulator(items: int, customers: int, startup_timeout: float) -> Iterator[str]:
    """Run the simulator as a subprocess until the block ends; yield its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "devtools.erp_sim",
        "--host", "127.0.0.1", "--port", str(port),
        "--seed", "42", "--items", str(items), "--customers", str(customers),
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + startup_timeout
        url = None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"simulator exited with {process.wait()}")
            if line.startswith("READY "):
                url = line.split(maxsplit=1)[1].strip()
                break
        if url is None:
            raise RuntimeError("simulator did not become ready in time")
        print(f"simulator ready at {url} after {time.perf_counter() - started:.1f}s")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_config(base_url: str, page_size: int) -> ErpConfig:
    return ErpConfig(
        base_url=base_url,
        tenant="bench",
        environment="production",
        company_id=COMPANY_ID,
        page_size=page_size,
        # The simulator is local: the default read timeout is sized for BC, not for
        # a 2-core machine generating pages of a million-row set.
        read_timeout_seconds=60,
        request_timeout_seconds=60,
    )


async def full_read(config: ErpConfig, trace_memory: bool) -> tuple[int, float, float, int]:
    """Read every price list line; return rows, wall seconds, client CPU seconds, peak bytes.

    The simulator runs in another process, so this process's CPU time is the client's own
    cost (HTTP, JSON with Decimal, validation) without the simulator's.
    """
    async with ErpClient(config) as client:
        gc.collect()
        if trace_memory:
            tracemalloc.start()
            tracemalloc.reset_peak()
            baseline = tracemalloc.get_traced_memory()[0]
        rows = 0
        started = time.perf_counter()
        cpu_started = time.process_time()
        async for _line in client.iter_price_list_lines():
            rows += 1
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        peak = 0
        if trace_memory:
            peak = tracemalloc.get_traced_memory()[1] - baseline
            tracemalloc.stop()
        requests = client.counters().requests_sent
    print(f"  read {rows:,} rows in {requests} requests, {elapsed:.1f}s (client CPU {cpu:.1f}s)")
    return rows, elapsed, cpu, peak


async def overhead(config: ErpConfig, count: int) -> dict[str, float]:
    """Per-request cost of the same small GET through ErpClient and through raw httpx.

    The two are interleaved (one of each per round) so drift on a shared machine hits both
    alike; wall times are medians. CPU time is this process only (the simulator runs in
    another process), so it is the client's own work per request.
    """
    async with ErpClient(config) as client, httpx.AsyncClient(timeout=30) as raw:
        async with contextlib.aclosing(client.iter_customers()) as customers:
            number = (await anext(customers)).number
        filter_text = eq_filter("number", number)
        url = client.urls.with_query(
            client.urls.entity_set("customers"), {"$filter": filter_text, "$top": 1}
        )

        async def via_client() -> None:
            await client.find_first("customers", Customer, filter_text)

        async def via_httpx() -> None:
            response = await raw.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            response.json()

        for _ in range(20):  # warm both connection pools
            await via_client()
            await via_httpx()
        walls: dict[str, list[float]] = {"client": [], "httpx": []}
        cpus: dict[str, float] = {"client": 0.0, "httpx": 0.0}
        for _ in range(count):
            for name, call in (("client", via_client), ("httpx", via_httpx)):
                wall, cpu = time.perf_counter(), time.process_time()
                await call()
                walls[name].append(time.perf_counter() - wall)
                cpus[name] += time.process_time() - cpu
    return {
        "client_wall": statistics.median(walls["client"]),
        "httpx_wall": statistics.median(walls["httpx"]),
        "client_cpu": cpus["client"] / count,
        "httpx_cpu": cpus["httpx"] / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=250_000)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--startup-timeout", type=float, default=900)
    args = parser.parse_args()

    python = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {python}")
    with simulator(args.items, args.customers, args.startup_timeout) as base_url:
        config = make_config(base_url, args.page_size)
        print("full price-list-line read (throughput pass, no tracing):")
        rows, seconds, cpu, _ = asyncio.run(full_read(config, trace_memory=False))
        print("full price-list-line read (memory pass, tracemalloc on):")
        traced_rows, _, _, peak = asyncio.run(full_read(config, trace_memory=True))
        print(f"per-request overhead ({args.requests} interleaved rounds of one GET each):")
        cost = asyncio.run(overhead(config, args.requests))

    table = [
        ("items in simulator", f"{args.items:,}"),
        ("page size (Prefer: odata.maxpagesize)", f"{args.page_size:,}"),
        ("price list lines read", f"{rows:,}"),
        ("full read time", f"{seconds:.1f} s"),
        ("rows / second (wall clock, incl. simulator)", f"{rows / seconds:,.0f}"),
        ("client CPU time for the full read", f"{cpu:.1f} s"),
        ("rows / client CPU second", f"{rows / cpu:,.0f}"),
        ("peak traced memory growth while iterating", f"{peak / 1_048_576:.1f} MiB"),
        ("rows in memory pass", f"{traced_rows:,}"),
        ("small GET via ErpClient, median wall", f"{cost['client_wall'] * 1000:.2f} ms"),
        ("small GET via raw httpx, median wall", f"{cost['httpx_wall'] * 1000:.2f} ms"),
        ("small GET via ErpClient, CPU in process", f"{cost['client_cpu'] * 1000:.3f} ms"),
        ("small GET via raw httpx, CPU in process", f"{cost['httpx_cpu'] * 1000:.3f} ms"),
        (
            "client overhead per request (CPU)",
            f"{(cost['client_cpu'] - cost['httpx_cpu']) * 1000:.3f} ms",
        ),
    ]
    width = max(len(name) for name, _ in table)
    print()
    print(f"{'measure'.ljust(width)} | value")
    print(f"{'-' * width}-+-{'-' * 14}")
    for name, value in table:
        print(f"{name.ljust(width)} | {value}")


if __name__ == "__main__":
    main()
