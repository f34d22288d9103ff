"""Scale check for the simulator: ``python -m devtools.erp_sim.benchmark [--items N ...]``.

Starts the simulator in-process at catalogue scale (default 250,000 items, 5,000 customers,
about a million price list lines), then prints how long generation took, the memory it
holds, and how fast the collections page. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import httpx

from devtools.erp_sim.limits import LimitSettings
from devtools.erp_sim.testing import custom_api, running_simulator, standard_api


def _read_all(client: httpx.Client, url: str, params: dict[str, str]) -> tuple[int, int]:
    rows = pages = 0
    next_url: str | None = url
    first = True
    while next_url is not None:
        response = client.get(next_url, params=params if first else None)
        response.raise_for_status()
        first = False
        body = response.json()
        rows += len(body["value"])
        pages += 1
        next_url = body.get("@odata.nextLink")
    return rows, pages


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.erp_sim.benchmark")
    parser.add_argument("--items", type=int, default=250_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    arguments = parser.parse_args()

    started = time.perf_counter()
    unlimited = LimitSettings(max_concurrent=100, requests_per_window=10_000_000)
    with running_simulator(
        seed=arguments.seed,
        items=arguments.items,
        customers=arguments.customers,
        limits=unlimited,
        startup_timeout=600,
    ) as base_url:
        ready = time.perf_counter() - started
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"generate+start: {ready:.1f} s, peak RSS {rss_mb:.0f} MB")
        with httpx.Client(timeout=300) as client:
            counts = client.get(f"{base_url}/_sim/info").json()["counts"]
            print(
                "rows: "
                + ", ".join(f"{name}={count}" for name, count in sorted(counts.items()) if count)
            )
            cus, std = custom_api(base_url), standard_api(base_url)
            for label, url, params in (
                ("priceListLines, all pages", f"{cus}/priceListLines", {}),
                ("items, all pages", f"{std}/items", {}),
                (
                    "priceListLines, delta filter (nothing new)",
                    f"{cus}/priceListLines",
                    {"$filter": "lastModifiedDateTime gt 2100-01-01T00:00:00Z"},
                ),
                (
                    "itemAvailabilityByLocation, one item (index)",
                    f"{cus}/itemAvailabilityByLocation",
                    {"$filter": "itemNumber eq 'IT-000100'"},
                ),
            ):
                began = time.perf_counter()
                rows, pages = _read_all(client, url, params)
                took = time.perf_counter() - began
                rate = rows / took if took else 0.0
                print(f"{label}: {rows} rows in {pages} pages, {took:.2f} s ({rate:,.0f} rows/s)")
            latencies = []
            for n in range(200):
                began = time.perf_counter()
                client.get(
                    f"{base_url}/_sim/price",
                    params={
                        "customerNumber": f"C{n % 50 + 1:05d}",
                        "itemNumber": f"IT-{n * 997 % arguments.items + 10:06d}",
                        "quantity": "12",
                    },
                ).raise_for_status()
                latencies.append((time.perf_counter() - began) * 1000)
            latencies.sort()
            print(
                f"/_sim/price round trip: p50 {statistics.median(latencies):.2f} ms, "
                f"p99 {latencies[int(len(latencies) * 0.99) - 1]:.2f} ms"
            )


if __name__ == "__main__":
    main()
