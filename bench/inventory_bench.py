"""Inventory events through the real Service Bus stand-in, the runner and Azurite; prints figures.

Starts Azurite and the Service Bus stand-in on free loopback ports, then for each trigger mode
(batch: ``cardinality="many"``, up to 100 messages per call; single: one message per call,
16 at a time) runs the function app in ``python -m devtools.runner`` and measures:

- throughput: N events over K keys (a count first, then deltas; locally shuffled so some are
  held for a gap; plus 10% redeliveries with new MessageIds, which the handler must recognise)
  sent as fast as the client can, until every key's position shows its last sequence;
- send-to-visible latency: single events sent one at a time at a steady rate, each timed
  until its (sku, location) row in Table storage carries it (the availability route reads that
  row with no cache, so this is when a storefront can see it), p50/p99;
- Table operations per event: the same workload applied in process through the service with
  a counting TableStore, in batches of 1 and of 100 messages, with the service's own rate and
  call time (no broker, no runner), which separates the handler's cost from the host's;
- availability route latency for a 10-SKU request (HTTP through the runner);
- the service's own CPU per event (``time.process_time`` of this process, which runs nothing
  else while it measures), for three paths in the same run, alternating: "earlier" (one
  partition query per item, every request through the SDK's pipeline with aiohttp trusting
  the environment), "previous" (one query per 15 items, conditional updates through the lean
  REST client, the rest through the SDK) and "today" (every entity request through the lean
  REST client); Azurite's CPU over the same interval is reported beside it, not included.

Everything shares the machine's cores (Azurite, the stand-in, the runner and this script).
The runner receives with the real azure-servicebus client, which keeps pulling for 200 ms
after the first message to fill a batch; that wait is part of both latency figures.

Run: .venv/bin/python -m bench.inventory_bench [--events 3000] [--keys 300] [--samples 200]
     [--service-only] [--rounds 3] [--sizes 1 100] [--variants earlier previous today]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from azure.data.tables.aio import TableServiceClient
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.previous_table_rest import TableRestClient as PreviousRestClient  # noqa: E402
from devtools.stack import LocalStack, StackPorts, free_port  # noqa: E402
from shared.adapters.stores import stock as stock_store  # noqa: E402
from shared.adapters.tables import (  # noqa: E402
    TableOperation,
    TableStore,
    _transport,
    chunk_operations,
)
from shared.services.inventory.events import (  # noqa: E402
    InboundMessage,
    apply_inventory_messages,
)
from shared.services.inventory.messages import INVENTORY_QUEUE  # noqa: E402
from shared.services.inventory.policy import StockPolicy  # noqa: E402

ADMIN_KEY = "bench-admin-key"
FUNCTION_KEY = "bench-function-key"

# The function apps the runner serves are script files in bench/apps/ (the worker loads one
# script per app): inventory_batch_app.py and inventory_single_app.py.
APPS = ROOT / "bench" / "apps"


# ---- workload ---------------------------------------------------------------------------------


def _body(sku: str, sequence: int, kind: str, quantity: int, at: datetime) -> dict[str, Any]:
    return {
        "eventId": f"{sku}|MAIN|{sequence}",
        "sku": sku,
        "location": "MAIN",
        "kind": kind,
        "quantity": str(quantity),
        "sequence": sequence,
        "occurredAt": at.isoformat(),
        "source": "wms",
    }


@dataclass(frozen=True)
class Workload:
    """Messages in arrival order (MessageId, body) and each key's final sequence."""

    messages: list[tuple[str, dict[str, Any]]]
    final_sequence: dict[str, int]
    redeliveries: int


def workload(events: int, keys: int, seed: int, prefix: str) -> Workload:
    rng = random.Random(seed)
    per_key = max(2, events // keys)
    start = datetime.now(UTC) - timedelta(minutes=10)
    skus = [f"{prefix}-{n:05d}/B#" for n in range(keys)]
    ordered: list[dict[str, Any]] = []
    for sequence in range(1, per_key + 1):
        for sku in skus:
            kind = "counted" if sequence == 1 else "adjusted"
            quantity = 1000 if sequence == 1 else rng.choice([-2, -1, 1, 2])
            ordered.append(
                _body(sku, sequence, kind, quantity, start + timedelta(milliseconds=sequence))
            )
    # Producers and brokers do not keep perfect order: shuffle within windows of 50.
    arrival: list[dict[str, Any]] = []
    for index in range(0, len(ordered), 50):
        window = ordered[index : index + 50]
        rng.shuffle(window)
        arrival.extend(window)
    messages = [(str(body["eventId"]), body) for body in arrival]
    redelivered = rng.sample(arrival, k=len(arrival) // 10)
    for body in redelivered:
        position = rng.randrange(len(messages) + 1)
        messages.insert(position, (f"again-{uuid.uuid4().hex}", body))
    return Workload(messages, dict.fromkeys(skus, per_key), len(redelivered))


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# ---- processes ------------------------------------------------------------------------------


@contextlib.contextmanager
def runner(app: str, settings: dict[str, str], log_path: Path) -> Iterator[str]:
    """The runner subprocess serving ``app``; yields its base URL once READY."""
    port = free_port()
    env = {
        **os.environ,
        **settings,
        "RUNNER_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable, "-m", "devtools.runner", "--app", app, "--app-dir", str(APPS),
        "--host-json", str(ROOT / "host.json"),
        "--no-settings",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"runner did not start: {line!r}; see {log_path}")
        yield line.split()[1]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- measurements ---------------------------------------------------------------------------


async def _send_all(connection: str, messages: Iterable[tuple[str, dict[str, Any]]]) -> float:
    started = time.perf_counter()
    async with ServiceBusClient.from_connection_string(connection) as client:
        sender = client.get_queue_sender(INVENTORY_QUEUE)
        async with sender:
            batch = await sender.create_message_batch()
            for message_id, body in messages:
                message = ServiceBusMessage(json.dumps(body), message_id=message_id)
                try:
                    batch.add_message(message)
                except ValueError:
                    await sender.send_messages(batch)
                    batch = await sender.create_message_batch()
                    batch.add_message(message)
            if len(batch):
                await sender.send_messages(batch)
    return time.perf_counter() - started


async def _all_applied(tables: TableStore, final: dict[str, int]) -> bool:
    done = 0
    async for row in tables.query(
        stock_store.POSITIONS_TABLE,
        "kind eq 'position'",
        select=["PartitionKey", "RowKey", "lastSequence"],
    ):
        if final.get(row.partition_key) == row.entity.get("lastSequence"):
            done += 1
    return done == len(final)


async def throughput(connection: str, tables: TableStore, load: Workload) -> dict[str, float]:
    started = time.perf_counter()
    send_seconds = await _send_all(connection, load.messages)
    while not await _all_applied(tables, load.final_sequence):
        if time.perf_counter() - started > 600:
            raise RuntimeError("events were not all applied within 10 minutes")
        await asyncio.sleep(0.2)
    seconds = time.perf_counter() - started
    return {
        "messages": len(load.messages),
        "seconds": seconds,
        "per_second": len(load.messages) / seconds,
        "send_seconds": send_seconds,
    }


async def latency(
    connection: str, tables: TableStore, samples: int, rate: float, prefix: str
) -> list[float]:
    """Seconds from just before each send to the row carrying the event."""
    results: list[float] = []
    async with ServiceBusClient.from_connection_string(connection) as client:
        sender = client.get_queue_sender(INVENTORY_QUEUE)
        async with sender:
            await sender.send_messages(ServiceBusMessage("warm-up: not json"))  # dead-lettered
            # One send at a time on the link, as the product's MessageBus does: the 7.15 client
            # numbers concurrent transfers on one link wrongly and the peer drops the connection.
            sending = asyncio.Lock()

            async def one(n: int) -> None:
                sku = f"{prefix}-lat-{n:05d}"
                body = _body(sku, 1, "counted", n + 1, datetime.now(UTC))
                started = time.perf_counter()
                async with sending:
                    await sender.send_messages(
                        ServiceBusMessage(json.dumps(body), message_id=body["eventId"])
                    )
                while True:
                    row = await tables.get(stock_store.POSITIONS_TABLE, sku, "MAIN")
                    if row is not None and row.entity.get("lastSequence") == 1:
                        results.append(time.perf_counter() - started)
                        return
                    if time.perf_counter() - started > 60:
                        raise RuntimeError(f"{sku} never became visible")
                    await asyncio.sleep(0.005)

            tasks = []
            for n in range(samples):
                tasks.append(asyncio.create_task(one(n)))
                await asyncio.sleep(1 / rate)
            await asyncio.gather(*tasks)
    return results


def http_latency(base_url: str, skus: list[str], requests: int) -> list[float]:
    timings = []
    with httpx.Client(base_url=base_url, headers={"x-functions-key": FUNCTION_KEY}) as client:
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get("/api/availability", params={"skus": ",".join(skus)})
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
    return timings


class CountingTableStore(TableStore):
    """Counts the requests the inventory service makes (one per call; one per chunk)."""

    requests = 0

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return await super().get(*args, **kwargs)

    async def create(self, *args: Any, **kwargs: Any) -> str:
        self.requests += 1
        return await super().create(*args, **kwargs)

    async def upsert(self, *args: Any, **kwargs: Any) -> str:
        self.requests += 1
        return await super().upsert(*args, **kwargs)

    async def update(self, *args: Any, **kwargs: Any) -> str:
        self.requests += 1
        return await super().update(*args, **kwargs)

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        self.requests += 1
        await super().delete(*args, **kwargs)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1  # the partitions here fit in one page
        return super().query(*args, **kwargs)

    async def transact(
        self, table: str, operations: Iterable[TableOperation], concurrency: int = 1
    ) -> int:
        operations = list(operations)
        self.requests += len(chunk_operations(operations))
        return await super().transact(table, operations, concurrency)


@dataclass(frozen=True)
class InProcess:
    """The service alone (no broker, no runner) on the same workload."""

    variant: str
    batch_size: int
    requests_per_event: float
    requests: int
    events_per_second: float
    call_ms: list[float]
    cpu_ms_per_event: float
    azurite_cpu_ms_per_event: float


def _cpu_seconds(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    total = 0.0
    for one in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = one.cpu_times()
            total += times.user + times.system
    return total


async def in_process(
    connection: str,
    load: Workload,
    batch_size: int,
    prefix: str,
    variant: str = "today",
    azurite: psutil.Process | None = None,
) -> InProcess:
    """``variant``: "earlier" one partition query per item and the SDK for every request;
    "previous" shared partition reads, the lean REST client for conditional updates only
    (the SDK for queries, transactions, deletes); "today" every entity request lean."""
    if variant == "earlier":
        store: CountingTableStore = CountingTableStore(
            TableServiceClient.from_connection_string(connection), prefix
        )
    elif variant == "previous":
        store = CountingTableStore(
            TableServiceClient.from_connection_string(connection, transport=_transport()),
            prefix,
            PreviousRestClient.from_connection_string(connection),  # type: ignore[arg-type]
            rest_for_updates_only=True,
        )
    else:
        made = CountingTableStore.from_connection_string(connection, prefix=prefix)
        assert isinstance(made, CountingTableStore)
        store = made
    bus = _NullBus()
    policy = StockPolicy()
    calls: list[float] = []
    try:
        messages = [InboundMessage(mid, json.dumps(body)) for mid, body in load.messages]
        # Tables exist and connections are open before the clock starts.
        await store.client(stock_store.POSITIONS_TABLE)
        store.requests = 0
        cpu_started, azurite_started = time.process_time(), _cpu_seconds(azurite)
        started = time.perf_counter()
        for start in range(0, len(messages), batch_size):
            call_started = time.perf_counter()
            await apply_inventory_messages(
                store,
                bus,
                messages[start : start + batch_size],
                policy,
                read_together=variant != "earlier",
            )
            calls.append((time.perf_counter() - call_started) * 1000)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        azurite_cpu = _cpu_seconds(azurite) - azurite_started
        return InProcess(
            variant,
            batch_size,
            store.requests / len(messages),
            store.requests,
            len(messages) / seconds,
            calls,
            cpu / len(messages) * 1000,
            azurite_cpu / len(messages) * 1000,
        )
    finally:
        await store.close()


class _NullBus:
    async def send_json(self, entity: str, body: Any, **_: Any) -> None:
        return None


# ---- main ---------------------------------------------------------------------------------------


async def _measure_mode(
    mode: str, stack: LocalStack, args: argparse.Namespace, log_dir: Path
) -> dict[str, Any]:
    prefix = f"b{mode[:1]}{uuid.uuid4().hex[:6]}"
    settings = {
        **stack.settings(),
        "TABLE_PREFIX": prefix,
        "LOCAL_FUNCTION_KEY": FUNCTION_KEY,
        "LOCAL_ADMIN_KEY": ADMIN_KEY,
        # Keep the timers quiet while measuring.
        "SYNC_POLICY": json.dumps(
            {"stock": {"paused": True}, "housekeeping": {"stockSweep": {"paused": True}}}
        ),
    }
    tables = TableStore.from_connection_string(settings["AzureWebJobsStorage"], prefix=prefix)
    load = workload(args.events, args.keys, args.seed, f"{mode}-tp")
    app = f"inventory_{mode}_app:app"
    try:
        with runner(app, settings, log_dir / f"inventory-bench-runner-{mode}.log") as url:
            flow = await throughput(settings["ServiceBusConnection"], tables, load)
            delays = await latency(
                settings["ServiceBusConnection"], tables, args.samples, args.rate, mode
            )
            skus = list(load.final_sequence)[:10]
            http = http_latency(url, skus, 200)
    finally:
        await tables.close()
    return {"load": load, "flow": flow, "latency": delays, "http": http}


async def main_async(args: argparse.Namespace) -> None:
    log_dir = ROOT / ".run"
    log_dir.mkdir(exist_ok=True)
    stack = LocalStack(ports=StackPorts.free(), log_dir=log_dir)
    try:
        stack.start_tables()
        results: dict[str, dict[str, Any]] = {}
        if not args.service_only:
            stack.start_servicebus()
            for mode in args.modes:
                results[mode] = await _measure_mode(mode, stack, args, log_dir)
        load = workload(args.events, args.keys, args.seed, "ops")
        connection = stack.settings()["AzureWebJobsStorage"]
        azurite = psutil.Process(stack.pid("azurite"))
        ops: list[InProcess] = []
        # Alternate the two paths, each round on fresh tables, so load drifts hit both alike.
        for round_number in range(args.rounds):
            for size in args.sizes:
                for variant in args.variants:
                    name = f"ops{variant[0]}{size}r{round_number}x{os.getpid()}"
                    ops.append(await in_process(connection, load, size, name, variant, azurite))
    finally:
        stack.stop()
    print(
        f"\nInventory events: {args.events} events over {args.keys} keys "
        f"(+{load.redeliveries} redeliveries), latency samples {args.samples} at {args.rate}/s"
    )
    print(f"{'figure':58} {'value':>24}")
    for mode, result in results.items():
        flow = result["flow"]
        delays = [d * 1000 for d in result["latency"]]
        http = [d * 1000 for d in result["http"]]
        print(
            f"{mode + ' mode: events/s (send until all applied)':58} "
            f"{flow['per_second']:>15,.0f} ev/s  ({flow['messages']:,} in {flow['seconds']:.1f} s,"
            f" send {flow['send_seconds']:.1f} s)"
        )
        p50, p99 = _percentile(delays, 0.5), _percentile(delays, 0.99)
        print(f"{mode + ' mode: send -> visible, p50 / p99':58} {p50:>10.1f} ms / {p99:.1f} ms")
        p50, p99 = _percentile(http, 0.5), _percentile(http, 0.99)
        print(
            f"{mode + ' mode: GET /api/availability (10 SKUs), p50 / p99':58} "
            f"{p50:>10.1f} ms / {p99:.1f} ms"
        )
    print(f"\nThe service alone (no broker, no runner), {args.rounds} rounds alternating:")
    print(
        f"{'path':8} {'batch':>5} {'CPU ms/event':>13} {'Azurite CPU ms/ev':>18} "
        f"{'requests/ev':>12} {'events/s':>9} {'call p50 / p99 ms':>20}"
    )
    for measured in ops:
        p50, p99 = _percentile(measured.call_ms, 0.5), _percentile(measured.call_ms, 0.99)
        print(
            f"{measured.variant:8} {measured.batch_size:>5} {measured.cpu_ms_per_event:>13.3f} "
            f"{measured.azurite_cpu_ms_per_event:>18.3f} {measured.requests_per_event:>12.3f} "
            f"{measured.events_per_second:>9,.0f} {p50:>10.1f} / {p99:.1f}"
        )
    for size in args.sizes:
        for variant in args.variants:
            cpu = sorted(
                m.cpu_ms_per_event for m in ops if (m.variant, m.batch_size) == (variant, size)
            )
            median = _percentile(cpu, 0.5)
            print(
                f"median CPU per event, {variant}, batches of {size}: {median:.3f} ms"
                f" (= {1000 / median:,.0f} events per CPU-second)"
            )


def main() -> None:
    # SIGTERM ends like Ctrl-C, so the finally blocks stop every process this started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="latency sends per second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--modes", nargs="+", default=["batch", "single"])
    parser.add_argument(
        "--service-only", action="store_true", help="skip the broker and runner modes"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating service-alone rounds")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100], help="batch sizes")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["earlier", "previous", "today"],
        choices=["earlier", "previous", "today"],
        help="service-alone paths to alternate",
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
