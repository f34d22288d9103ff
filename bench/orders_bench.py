"""Order intake latency, ERP calls per order and booking throughput (prints figures; not a test).

Starts its own stack on free ports (Azurite, Service Bus stand-in, ERP simulator, the
function app in the local runner with the booking trigger disabled), publishes prices, puts
stock on hand, sets the simulator's latency to 50 ms per request, then:

1. intake: POST /api/orders through the runner, one at a time, then 8 at a time
   (p50/p99 of the HTTP round trip, each order 3 lines);
2. booking: the real ``orders`` handler, 16 deliveries at a time (the host's
   maxConcurrentCalls), until every accepted order is booked; orders per second;
3. the ERP requests counted by the simulator, per accepted order, for each phase.

Old path beside new in the same run (issue 20): the in-process intake runs once reading
credit live for every order (the policy's default, and the only way before) and once with the
policy's ``credit.intakeCache`` at ``--intake-cache``; the booking handler books the first
half of the queue with the look-up before every create (the old path, by forcing
``may_have_reached_erp``) and the rest with the new path (the look-up only after an earlier
claim). A third part of the queue is booked by the new path spread over ``--principals``
principals (ERP_BOOKING_PRINCIPALS; each phase has its own static tokens, so the
simulator counts each principal on its own). While booking, the simulator and the client
enforce Business Central's sustained rate per principal, 20 requests per second, over a
``--window-seconds`` window instead of 6,000 per 300 s, so the budget binds within seconds
as it would after the first 5 minutes of a long catch-up. Then the catch-up time for
``--backlog`` queued orders is worked out from the measured rate and from Business Central's
budget (6,000 requests per 5 minutes per principal).

    .venv/bin/python -m bench.orders_bench [--orders N] [--latency-ms N] [--intake-cache PT30S]
        [--principals N] [--window-seconds S] [--rate R]

``--rate`` below BC's 20 per second makes the ERP budget, not this machine, the bound, so the
spreading over principals shows on a loaded 2-vCPU machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import httpx
from azure.servicebus.aio import ServiceBusClient

from devtools.erp_sim.testing import custom_api, standard_api
from devtools.stack import LocalStack, StackPorts
from shared.adapters.bus import MessageBus
from shared.adapters.erp.client import ErpClient
from shared.adapters.stores import stock as stock_store
from shared.adapters.stores.orders import load_order
from shared.adapters.tables import TableStore
from shared.bootstrap import erp_config, figures_source, order_settings
from shared.config.settings import load_settings
from shared.domain.orders import OrderStatus
from shared.domain.pricing import CampaignPolicy, default_currency_table
from shared.domain.stock import StockPosition
from shared.services.orders import booking as booking_service
from shared.services.orders.api import OrderRequest
from shared.services.orders.booking import handle_booking_message
from shared.services.orders.context import OrderContext
from shared.services.orders.erp import LocationDirectory
from shared.services.orders.intake import IntakeAccepted, submit_order
from shared.services.orders.messages import OrderMessage
from shared.services.pricing import publisher as price_publisher
from shared.services.pricing.book import PriceBook

LINES_PER_ORDER = 3
# Business Central's sustained rate per principal: 6,000 requests per 300 s.
BC_REQUESTS_PER_SECOND = 20
_NEW_LOOK_FIRST = booking_service.may_have_reached_erp


def _catch_up_seconds(
    backlog: int, per_order: float, principals: int, orders_per_second: float
) -> float:
    """When the last of ``backlog`` queued orders is booked, modelled: each principal sends
    its share at the measured rate, but never more than 6,000 requests in any 5 minutes
    (Business Central's budget), so a request waits until the one 6,000 before it is 300 s
    old. Orders spread evenly over the principals, each with its own 5 slots and budget."""
    requests = round(backlog * per_order / principals)
    gap = 1 / (orders_per_second * per_order)  # seconds between requests at the measured rate
    sent: list[float] = []
    for i in range(requests):
        moment = sent[-1] + gap if sent else 0.0
        if i >= 6000:
            moment = max(moment, sent[i - 6000] + 300.0)
        sent.append(moment)
    return (sent[-1] + gap) if sent else 0.0


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _erp_requests(erp_url: str) -> int:
    stats = httpx.get(f"{erp_url}/_sim/stats", timeout=10).json()
    return int(stats["total"])


def _sales_order_requests(erp_url: str) -> int:
    """Requests to salesOrders only: what booking sends (locations are read once per
    phase)."""
    stats = httpx.get(f"{erp_url}/_sim/stats", timeout=10).json()
    per_method = stats["requests"].get("salesOrders", {})
    return sum(int(n) for statuses in per_method.values() for n in statuses.values())


def _stop_runner(stack: LocalStack) -> None:
    """The runner's timers (lifecycle poll, reconciliation, ...) keep calling the ERP, some of
    them salesOrders; the rest is measured in process without them."""
    for process in stack._processes:  # the runner this script started
        if process.name == "runner":
            process.popen.terminate()
            process.popen.wait(20)


def _erp_throttled(erp_url: str) -> int:
    stats = httpx.get(f"{erp_url}/_sim/stats", timeout=10).json()
    return int(stats["throttled"])


def _customers(erp_url: str, count: int) -> list[str]:
    """Customers the ERP accepts orders for, given no credit limit so none runs out."""
    rows = httpx.get(f"{custom_api(erp_url)}/customerCreditSummaries", timeout=30).json()["value"]
    chosen = [
        row["customerNumber"] for row in rows if row["blocked"] in ("_x0020_", "", " ", "Invoice")
    ][:count]
    customers = f"{standard_api(erp_url)}/customers"
    for number in chosen:
        row = httpx.get(customers, params={"$filter": f"number eq '{number}'"}, timeout=10)
        record = row.json()["value"][0]
        httpx.patch(
            f"{customers}({record['id']})",
            json={"creditLimit": 0},
            headers={"If-Match": record["@odata.etag"]},
            timeout=10,
        ).raise_for_status()
    return chosen


async def _prepare(stack: LocalStack, prefix: str, erp_url: str) -> tuple[list[str], list[str]]:
    settings = stack.settings()
    tables = TableStore.from_connection_string(settings["AzureWebJobsStorage"], prefix)
    erp = ErpClient(erp_config(load_settings(ERP_BASE_URL=erp_url)))
    try:
        await price_publisher.publish(erp, tables, "full")
        book = PriceBook(tables)
        await book.ensure_current()
        skus = [
            number
            for number, item in sorted(book.items.items())
            if not item.blocked and number.startswith("IT-")
        ][:30]
        for sku in skus:
            stored = await stock_store.load_position(tables, sku, "MAIN")
            position = replace(StockPosition.new(sku, "MAIN"), on_hand=Decimal(1_000_000))
            await stock_store.save_position(tables, stored, position)
        customers = [c for c in _customers(erp_url, 8) if c in book.customers]
    finally:
        await erp.aclose()
        await tables.close()
    return skus, customers


def _order_body(n: int, skus: list[str], customers: list[str]) -> dict[str, Any]:
    return {
        "customerId": customers[n % len(customers)],
        "externalOrderId": f"bench-{n}",
        "channel": "web",
        "lines": [
            {"sku": skus[(n * LINES_PER_ORDER + k) % len(skus)], "quantity": 1 + k}
            for k in range(LINES_PER_ORDER)
        ],
    }


async def _intake(
    base_url: str, key: str, bodies: list[dict[str, Any]], parallel: int
) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    accepted: list[str] = []
    gate = asyncio.Semaphore(parallel)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"x-functions-key": key}, timeout=60
    ) as client:

        async def one(body: dict[str, Any]) -> None:
            async with gate:
                started = time.perf_counter()
                response = await client.post(
                    "/api/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
                )
                latencies.append(time.perf_counter() - started)
            if response.status_code == 202:
                accepted.append(response.json()["orderId"])
            else:
                print(f"  not accepted: {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(one(body) for body in bodies))
    return latencies, accepted


@dataclass(frozen=True)
class Principals:
    """The booking principals of one phase: static tokens the simulator counts apart."""

    phase: str = ""
    count: int = 1
    window_seconds: float = 300.0
    per_second: float = BC_REQUESTS_PER_SECOND

    def settings(self) -> dict[str, str]:
        if not self.phase:
            return {}
        tokens = [f"bench-{self.phase}-{n}" for n in range(self.count)]
        return {
            "ERP_AUTH_MODE": "static",
            "ERP_STATIC_TOKEN": tokens[0],
            "ERP_BOOKING_PRINCIPALS": json.dumps([{"token": t} for t in tokens[1:]]),
        }

    def per_window(self) -> int:
        return max(1, round(self.per_second * self.window_seconds))


def _context(
    stack: LocalStack,
    prefix: str,
    erp_url: str,
    intake_cache: str = "PT0S",
    principals: Principals | None = None,
) -> OrderContext:
    """The order context over the stack, built the way the composition root builds it."""
    settings = stack.settings()
    chosen = principals or Principals()
    app_settings = load_settings(
        ERP_BASE_URL=erp_url,
        CREDIT_OVERDUE_TOLERANCE="100000000",
        SYNC_POLICY=json.dumps({"credit": {"intakeCache": intake_cache}}),
        **chosen.settings(),
    )
    config = erp_config(app_settings)
    if principals is not None:
        config = config.model_copy(
            update={
                "requests_per_window": chosen.per_window(),
                "window_seconds": chosen.window_seconds,
            }
        )
    tables = TableStore.from_connection_string(settings["AzureWebJobsStorage"], prefix)
    return OrderContext(
        tables=tables,
        bus=MessageBus.from_connection_string(settings["ServiceBusConnection"]),
        erp=ErpClient(config),
        price_book=PriceBook(tables),
        currencies=default_currency_table(app_settings.local_currency),
        campaign_policy=CampaignPolicy(app_settings.campaign_policy),
        settings=order_settings(app_settings),
        figures=figures_source(app_settings),
        locations=LocationDirectory(),
    )


async def _close(ctx: OrderContext) -> None:
    await ctx.erp.aclose()
    await ctx.bus.close()
    await ctx.tables.close()


async def _intake_in_process(
    stack: LocalStack,
    prefix: str,
    erp_url: str,
    bodies: list[dict[str, Any]],
    intake_cache: str = "PT0S",
) -> tuple[list[float], list[str]]:
    """The intake service alone (no HTTP, no runner), one order at a time."""
    ctx = _context(stack, prefix, erp_url, intake_cache)
    latencies: list[float] = []
    accepted: list[str] = []
    try:
        for number, body in enumerate(bodies):
            request = OrderRequest.model_validate(body)
            started = time.perf_counter()
            answer = await submit_order(ctx, uuid.uuid4().hex, body, request, None)
            if number:  # the first one warms up this process's clients
                latencies.append(time.perf_counter() - started)
            if isinstance(answer, IntakeAccepted):
                accepted.append(json.loads(answer.body)["orderId"])
    finally:
        await _close(ctx)
    return latencies, accepted


async def _book_all(
    stack: LocalStack, prefix: str, erp_url: str, expected: int, principals: Principals
) -> float:
    """Run the real handler over the queue, 16 at a time; seconds until ``expected`` more
    orders are booked."""
    settings = stack.settings()
    ctx = _context(stack, prefix, erp_url, principals=principals)
    booked = 0
    outcomes: Counter[str] = Counter()
    started = time.perf_counter()
    try:
        async with (
            ServiceBusClient.from_connection_string(settings["ServiceBusConnection"]) as client,
            client.get_queue_receiver("orders", prefetch_count=16) as receiver,
        ):

            async def settle(received: Any) -> bool:
                message = OrderMessage.model_validate_json(str(received))
                report = await handle_booking_message(
                    ctx, message, (received.delivery_count or 0) + 1
                )
                await receiver.complete_message(received)
                outcomes[str(report.outcome)] += 1
                return str(report.outcome) == "booked"

            while booked < expected:
                wanted = min(16, expected - booked)
                batch = await receiver.receive_messages(max_message_count=wanted, max_wait_time=1)
                booked += sum(await asyncio.gather(*(settle(m) for m in batch)))
        seconds = time.perf_counter() - started
        print(f"  handler outcomes: {dict(outcomes)}")
        return seconds
    finally:
        await _close(ctx)


async def _count_booked(stack: LocalStack, prefix: str, order_ids: list[str]) -> int:
    tables = TableStore.from_connection_string(stack.settings()["AzureWebJobsStorage"], prefix)
    try:
        found = await asyncio.gather(*(load_order(tables, order_id) for order_id in order_ids))
    finally:
        await tables.close()
    return sum(1 for s in found if s is not None and s.order.status is OrderStatus.BOOKED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=150)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--intake-cache", default="PT30S", help="credit.intakeCache, new path")
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--principals", type=int, default=2, help="booking principals, last phase")
    parser.add_argument(
        "--window-seconds",
        type=float,
        default=1.0,
        help="budget window while booking (20 requests per second per principal, as BC's)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=BC_REQUESTS_PER_SECOND,
        help="requests per second per principal while booking (below 20: the ERP binds first)",
    )
    args = parser.parse_args()
    prefix = "bench" + uuid.uuid4().hex[:8]
    stack = LocalStack(ports=StackPorts.free(), erp_items=200, erp_customers=50)
    try:
        stack.start_tables()
        stack.start_servicebus()
        stack.start_erp()
        erp_url = f"http://127.0.0.1:{stack.ports.erp}"
        skus, customers = asyncio.run(_prepare(stack, prefix, erp_url))
        stack.start_runner(
            {
                "TABLE_PREFIX": prefix,
                # Bookings wait in the queue so the intake is measured alone.
                "AzureWebJobs.orders_book.Disabled": "true",
                "AzureWebJobs.orders_sweep.Disabled": "true",
                "CREDIT_OVERDUE_TOLERANCE": "100000000",
            }
        )
        base_url = f"http://127.0.0.1:{stack.ports.runner}"
        key = stack.settings()["LOCAL_FUNCTION_KEY"]
        warm = [_order_body(n, skus, customers) for n in range(10)]
        _, warm_accepted = asyncio.run(_intake(base_url, key, warm, 1))
        httpx.post(f"{erp_url}/_sim/faults", json={"latencyMs": args.latency_ms}, timeout=10)

        print(
            f"orders bench: {args.orders} orders x {LINES_PER_ORDER} lines, "
            f"ERP latency {args.latency_ms} ms, {len(customers)} customers, {len(skus)} skus"
        )
        results: dict[int, tuple[list[float], list[str]]] = {}
        calls_before = _erp_requests(erp_url)
        for parallel in (1, 8):
            bodies = [
                _order_body(n + parallel * 10_000, skus, customers) for n in range(args.orders)
            ]
            started = time.perf_counter()
            results[parallel] = asyncio.run(_intake(base_url, key, bodies, parallel))
            elapsed = time.perf_counter() - started
            latencies, accepted = results[parallel]
            print(
                f"intake, {parallel} in flight: p50 {_percentile(latencies, 0.5) * 1000:.1f} ms,"
                f" p99 {_percentile(latencies, 0.99) * 1000:.1f} ms,"
                f" mean {statistics.mean(latencies) * 1000:.1f} ms,"
                f" {len(accepted)}/{len(bodies)} accepted, {len(bodies) / elapsed:.1f} orders/s"
            )
        runner_calls = _erp_requests(erp_url) - calls_before
        _stop_runner(stack)
        runner_accepted = sum(len(ids) for _, ids in results.values())
        in_process: list[str] = []
        per_order_credit: dict[str, float] = {}
        for offset, cache in ((90_000, "PT0S"), (95_000, args.intake_cache)):
            bodies = [_order_body(n + offset, skus, customers) for n in range(args.orders + 1)]
            credit_before = _erp_requests(erp_url)
            latencies, accepted_here = asyncio.run(
                _intake_in_process(stack, prefix, erp_url, bodies, cache)
            )
            per_order_credit[cache] = (_erp_requests(erp_url) - credit_before) / max(
                1, len(accepted_here)
            )
            in_process += accepted_here
            print(
                f"intake service alone (no HTTP, no runner), 1 in flight, credit.intakeCache"
                f" {cache}: p50 {_percentile(latencies, 0.5) * 1000:.1f} ms,"
                f" p99 {_percentile(latencies, 0.99) * 1000:.1f} ms,"
                f" {len(accepted_here)}/{len(bodies)} accepted (the first one warms up),"
                f" ERP requests per order {per_order_credit[cache]:.2f}"
            )
        accepted_ids = [i for _, ids in results.values() for i in ids] + in_process
        # The warm-up orders wait in the queue too; the handler books them with the rest.
        queued = len(accepted_ids) + len(warm_accepted)
        rates: dict[str, tuple[float, float, int]] = {}
        many = args.principals
        phases = [
            ("old (look-up, create), 1 principal", True, 1),
            ("new (create only), 1 principal", False, 1),
            (f"new (create only), {many} principals", False, many),
        ]
        shares = [queued // 3, queued // 3, queued - 2 * (queued // 3)]
        per_window = Principals(
            count=1, window_seconds=args.window_seconds, per_second=args.rate
        ).per_window()
        httpx.post(
            f"{erp_url}/_sim/limits",
            json={"requestsPerWindow": per_window, "windowSeconds": args.window_seconds},
            timeout=10,
        ).raise_for_status()
        for number, ((label, old, count), share) in enumerate(zip(phases, shares, strict=True)):
            booking_service.may_have_reached_erp = (  # type: ignore[assignment]
                (lambda order: True) if old else _NEW_LOOK_FIRST
            )
            principals = Principals(f"phase{number}", count, args.window_seconds, args.rate)
            before_booking = _sales_order_requests(erp_url)
            all_before = _erp_requests(erp_url)
            throttled_before = _erp_throttled(erp_url)
            seconds = asyncio.run(_book_all(stack, prefix, erp_url, share, principals))
            per_order = (_sales_order_requests(erp_url) - before_booking) / share
            others = _erp_requests(erp_url) - all_before - per_order * share
            rates[label] = (share / seconds, per_order, count)
            print(
                f"booking, {label}: {share} orders in {seconds:.1f} s = {share / seconds:.1f}"
                f" orders/s, salesOrders requests per order {per_order:.2f} (other ERP"
                f" requests meanwhile: {others:.0f}), 429s"
                f" {_erp_throttled(erp_url) - throttled_before} (16 deliveries at a time, 5"
                f" requests in flight and {per_window} per {args.window_seconds:g} s per"
                " principal)"
            )
        booking_service.may_have_reached_erp = _NEW_LOOK_FIRST  # type: ignore[assignment]
        booked = asyncio.run(_count_booked(stack, prefix, accepted_ids + warm_accepted))
        print(f"booked {booked}/{queued}")
        print(
            f"ERP requests per accepted order through the runner's intake (the shipped policy,"
            f" credit live): {runner_calls / max(1, runner_accepted):.2f}"
        )
        for label, (rate, per_order, count) in rates.items():
            seconds = _catch_up_seconds(args.backlog, per_order, count, rate / count)
            print(
                f"catch-up of {args.backlog} queued orders, {label} (from the measured rate"
                f" per principal, 6,000 requests per 5 min each): {seconds:.0f} s ="
                f" {args.backlog / seconds:.1f} orders/s"
            )
            if count == 1:
                for modelled in (2, 4):
                    seconds = _catch_up_seconds(args.backlog, per_order, modelled, rate)
                    print(
                        f"  modelled as before over {modelled} principals (this rate each):"
                        f" {seconds:.0f} s"
                    )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
