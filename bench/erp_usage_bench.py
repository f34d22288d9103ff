"""Reading the recorded ERP usage for the connectivity audit and the operations page, the
path before per-principal usage beside the new one (prints figures; not a test).

Starts Azurite on a free port and fills ``ErpUsage`` with a day of heartbeat rows: one row
per 5-minute beat, instance and principal (the way ``erp_usage.UsageRecorder`` writes them),
plus a tenth of them as old rows without a principal. Then, in alternating rounds so the
machine's load hits both alike:

- old: the two range queries the connectivity audit made before (the 5-minute window and
  the day, summed over everything: ``erp_usage.usage_between`` twice);
- new: ``connectivity.recorded_usage``, one range query over the day, summed per principal
  for the window and the day (what the audit does);
- page: ``sections.erp_budget_section``, the operations page's ERP budget section (the
  window's rows only, per principal).

    .venv/bin/python -m bench.erp_usage_bench [--instances N] [--principals N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

from devtools.stack import LocalStack, StackPorts
from shared.adapters.erp.breaker import BreakerState
from shared.adapters.erp.request_pipeline import ErpCounters
from shared.adapters.stores import erp_usage
from shared.adapters.tables import TableOperation, TableStore
from shared.services.operations.audit.connectivity import recorded_usage
from shared.services.operations.sections import erp_budget_section

BEATS_PER_DAY = 288


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _row(bucket: str, instance: int, position: int, label: str | None) -> dict[str, object]:
    entity: dict[str, object] = {
        "PartitionKey": bucket,
        "RowKey": f"bench-{instance}.{position}" if label else f"bench-old-{instance}",
        **erp_usage.UsageTotals(requests_sent=40 + position, retries=1).as_entity(),
        "breakerState": "closed",
    }
    if label:
        entity["principal"] = label
    return entity


async def _seed(tables: TableStore, now: datetime, instances: int, labels: list[str]) -> int:
    rows = 0
    for beat in range(BEATS_PER_DAY):
        bucket = erp_usage.bucket_of(now - timedelta(minutes=5 * beat))
        entities = [
            _row(bucket, instance, position, label)
            for instance in range(instances)
            for position, label in enumerate(labels)
        ]
        if beat % 10 == 0:
            entities.append(_row(bucket, 0, 0, None))
        rows += await tables.transact(
            erp_usage.USAGE_TABLE, [TableOperation("upsert", e) for e in entities]
        )
    return rows


async def _measure(args: argparse.Namespace, connection: str) -> None:
    tables = TableStore.from_connection_string(connection, prefix="bench")
    labels = ["default"] + [f"principal-{n}" for n in range(1, args.principals)]
    counters = ErpCounters(0, 0, 0, 0, 0, 0, 0, 0, BreakerState.CLOSED, 0)
    current = [(label, counters) for label in labels]
    try:
        now = datetime.now(UTC)
        started = time.perf_counter()
        rows = await _seed(tables, now, args.instances, labels)
        print(f"seeded {rows} rows in {time.perf_counter() - started:.1f} s", flush=True)
        old: list[float] = []
        new: list[float] = []
        page: list[float] = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            window = await erp_usage.usage_between(tables, now - erp_usage.BUDGET_WINDOW, now)
            day = await erp_usage.usage_between(tables, now - timedelta(days=1), now)
            old.append(time.perf_counter() - started)
            started = time.perf_counter()
            usage = await recorded_usage(tables, current, now)
            new.append(time.perf_counter() - started)
            started = time.perf_counter()
            section = await erp_budget_section(tables, current, now)
            page.append(time.perf_counter() - started)
            # Both paths must read the same totals, or the comparison says nothing.
            assert (usage.window_requests, usage.day_requests) == (
                window.requests_sent,
                day.requests_sent,
            ), (usage, window, day)
            assert section.rows[-1].value.startswith(f"{window.requests_sent} of "), section
        print(f"rows per day: {rows}; principals: {len(usage.principals)}", flush=True)
        for name, times in (
            ("old (2 queries, total)", old),
            ("new (1 query, per principal)", new),
            ("page section (window only)", page),
        ):
            print(
                f"{name}: p50 {_percentile(times, 0.5) * 1000:.0f} ms, "
                f"p99 {_percentile(times, 0.99) * 1000:.0f} ms over {len(times)} rounds",
                flush=True,
            )
        print(f"new / old at the median: {_percentile(new, 0.5) / _percentile(old, 0.5):.2f}")
    finally:
        await tables.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--principals", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    stack = LocalStack(ports=StackPorts.free())
    try:
        stack.start_tables()
        print(f"load average at start: {os.getloadavg()}", flush=True)
        asyncio.run(_measure(args, stack.settings()["AzureWebJobsStorage"]))
        print(f"load average at the end: {os.getloadavg()}", flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
