"""Quote latency and index memory at catalog scale (prints figures; not a test).

Synthetic data generated in process: 250,000 items, 5,000 customers with contract
prices, about 1,000,000 price list lines of mixed sources with quantity breaks. Run:

    .venv/bin/python -m bench.quote_bench [--items N] [--customers N] [--quotes N] [--seed N]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from shared.domain.pricing import (
    AmountType,
    AssetType,
    CustomerPricingContext,
    ItemPricingInfo,
    PriceIndex,
    PriceListLine,
    QuoteLineRequest,
    SourceType,
    quote,
)

ORDER_DAY = date(2025, 6, 15)
PRICE_GROUPS = [f"PG{n:02d}" for n in range(20)]
DISCOUNT_GROUPS = [f"DG{n:03d}" for n in range(200)]
CAMPAIGNS = [f"CAMP{n:02d}" for n in range(10)]
BREAKS = (Decimal(0), Decimal(10), Decimal(50), Decimal(100))


def _price(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(100, 500_000)).scaleb(-2)


def generate_items(count: int, rng: random.Random) -> dict[str, ItemPricingInfo]:
    items: dict[str, ItemPricingInfo] = {}
    box = {"BOX": Decimal(12)}
    for n in range(count):
        number = f"ITEM{n:06d}"
        items[number] = ItemPricingInfo(
            number=number,
            base_unit_of_measure="PCS",
            unit_price=_price(rng),
            discount_group=DISCOUNT_GROUPS[n % len(DISCOUNT_GROUPS)],
            sales_units_of_measure=box if n % 4 == 0 else {},
        )
    return items


def generate_customers(count: int, rng: random.Random) -> list[CustomerPricingContext]:
    return [
        CustomerPricingContext(
            customer_no=f"CUST{n:05d}",
            price_group=PRICE_GROUPS[n % len(PRICE_GROUPS)] if n % 3 else "",
            allow_line_disc=n % 10 != 0,
            active_campaigns=frozenset(rng.sample(CAMPAIGNS, rng.randint(0, 2))),
        )
        for n in range(count)
    ]


def generate_lines(
    items: list[str], customers: list[CustomerPricingContext], rng: random.Random
) -> Iterator[PriceListLine]:
    """About 4 lines per item: public price breaks, group, contract, campaign, discounts."""
    counter = 0

    def make(**fields: object) -> PriceListLine:
        nonlocal counter
        counter += 1
        return PriceListLine(key=f"L{counter:08d}", **fields)  # type: ignore[arg-type]

    for number in items:
        base = _price(rng)
        # Public price list with two or three quantity breaks (about 2.5 lines per item).
        for step, minimum in enumerate(BREAKS[: rng.choice((2, 3))]):
            yield make(
                price_list_code="PUBLIC",
                source_type=SourceType.ALL_CUSTOMERS,
                source_no="",
                asset_type=AssetType.ITEM,
                asset_no=number,
                minimum_quantity=minimum,
                amount_type=AmountType.PRICE,
                unit_price=base * (Decimal(100) - 5 * step) / 100,
            )
        if rng.random() < 0.4:
            yield make(
                price_list_code="GROUP",
                source_type=SourceType.CUSTOMER_PRICE_GROUP,
                source_no=rng.choice(PRICE_GROUPS),
                asset_type=AssetType.ITEM,
                asset_no=number,
                amount_type=AmountType.ANY,
                unit_price=base * Decimal("0.93"),
                line_discount_percent=Decimal(rng.choice((0, 2, 5))),
                allow_line_disc=rng.random() < 0.8,
            )
        if rng.random() < 0.2:
            start = ORDER_DAY - timedelta(days=rng.randint(-20, 40))
            yield make(
                price_list_code="CAMPAIGN",
                source_type=SourceType.CAMPAIGN,
                source_no=rng.choice(CAMPAIGNS),
                asset_type=AssetType.ITEM,
                asset_no=number,
                amount_type=AmountType.PRICE,
                unit_price=base * Decimal("0.85"),
                starting_date=start,
                ending_date=start + timedelta(days=30),
            )
    # Contract prices: about 200,000 customer-specific lines, some with a break.
    for customer in customers:
        for number in rng.sample(items, 40):
            yield make(
                price_list_code=f"C-{customer.customer_no}",
                source_type=SourceType.CUSTOMER,
                source_no=customer.customer_no,
                asset_type=AssetType.ITEM,
                asset_no=number,
                minimum_quantity=rng.choice(BREAKS[:2]),
                amount_type=AmountType.PRICE,
                unit_price=_price(rng),
                allow_line_disc=rng.random() < 0.7,
            )
    # Discount group lines: a few per discount group and price group.
    for group in DISCOUNT_GROUPS:
        yield make(
            price_list_code="DISC",
            source_type=SourceType.ALL_CUSTOMERS,
            source_no="",
            asset_type=AssetType.ITEM_DISCOUNT_GROUP,
            asset_no=group,
            minimum_quantity=Decimal(20),
            amount_type=AmountType.DISCOUNT,
            line_discount_percent=Decimal(rng.choice((2, 3, 5))),
        )
        for price_group in rng.sample(PRICE_GROUPS, 5):
            yield make(
                price_list_code="GRPDISC",
                source_type=SourceType.CUSTOMER_PRICE_GROUP,
                source_no=price_group,
                asset_type=AssetType.ITEM_DISCOUNT_GROUP,
                asset_no=group,
                amount_type=AmountType.DISCOUNT,
                line_discount_percent=Decimal(rng.choice((4, 6, 8, 10))),
            )


def loader_line_bytes(sample: list[PriceListLine]) -> float:
    """Bytes per line when every field arrives as fresh text, as from Table storage rows."""
    rows = [
        {
            "key": f"{{{n:08x}-0000-4000-8000-{line.key.encode().hex()[:12]}}}",
            "code": "".join(line.price_list_code),
            "source_type": str(line.source_type.value),
            "source_no": "".join(line.source_no),
            "asset_type": str(line.asset_type.value),
            "asset_no": "".join(line.asset_no),
            "min": str(line.minimum_quantity),
            "amount_type": str(line.amount_type.value),
            "price": str(line.unit_price),
            "disc": str(line.line_discount_percent),
            "start": line.starting_date.isoformat() if line.starting_date else "",
            "end": line.ending_date.isoformat() if line.ending_date else "",
        }
        for n, line in enumerate(sample)
    ]
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    built = [
        PriceListLine(
            key=row["key"],
            price_list_code=row["code"],
            source_type=SourceType(row["source_type"]),
            source_no=row["source_no"],
            asset_type=AssetType(row["asset_type"]),
            asset_no=row["asset_no"],
            minimum_quantity=Decimal(row["min"]),
            amount_type=AmountType(row["amount_type"]),
            unit_price=Decimal(row["price"]),
            line_discount_percent=Decimal(row["disc"]),
            starting_date=date.fromisoformat(row["start"]) if row["start"] else None,
            ending_date=date.fromisoformat(row["end"]) if row["end"] else None,
        )
        for row in rows
    ]
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (after - before) / len(built)


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


def measure(
    index: PriceIndex,
    items: dict[str, ItemPricingInfo],
    customers: list[CustomerPricingContext],
    line_count: int,
    quotes: int,
    rng: random.Random,
) -> list[float]:
    numbers = list(items)
    quantities = [Decimal(q) for q in (1, 2, 5, 10, 12, 50, 100, "2.5")]
    samples: list[float] = []
    for _ in range(quotes):
        customer = rng.choice(customers)
        requests = [
            QuoteLineRequest(rng.choice(numbers), rng.choice(quantities)) for _ in range(line_count)
        ]
        started = time.perf_counter()
        quote(index, customer, items, requests, None, ORDER_DAY)
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=250_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--quotes", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    started = time.perf_counter()
    items = generate_items(args.items, rng)
    customers = generate_customers(args.customers, rng)
    lines = list(generate_lines(list(items), customers, rng))
    print(
        f"generated {len(items):,} items, {len(customers):,} customers, "
        f"{len(lines):,} price lines in {time.perf_counter() - started:.1f} s"
    )

    gc.collect()
    started = time.perf_counter()
    index = PriceIndex(lines)
    build_seconds = time.perf_counter() - started
    del index
    gc.collect()
    # Built a second time under tracemalloc, which slows allocation, only to measure memory.
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    index = PriceIndex(lines)
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"index build: {build_seconds:.2f} s for {len(index):,} lines "
        f"in {index.bucket_count:,} buckets"
    )
    print(
        f"index structures: {(after - before) / 2**20:.1f} MiB "
        f"({(after - before) / len(index):.0f} B/line), build peak "
        f"{(peak - before) / 2**20:.1f} MiB (the lines themselves are counted below)"
    )

    per_line = loader_line_bytes(lines[: min(len(lines), 100_000)])
    line_mib = per_line * len(index) / 2**20
    print(
        f"price list line objects built from text rows as a loader would: about "
        f"{per_line:.0f} B/line, about {line_mib:.0f} MiB for all lines"
    )
    print(f"total resident for pricing data: about {(after - before) / 2**20 + line_mib:.0f} MiB")

    delta = [replace(line, unit_price=line.unit_price + 1) for line in rng.sample(lines, 10_000)]
    started = time.perf_counter()
    index.upsert_many(delta)
    upsert_ms = (time.perf_counter() - started) * 1000
    print(f"delta: 10,000 upserts of existing lines in {upsert_ms:.0f} ms")

    del lines, delta
    gc.collect()
    for line_count in (1, 20):
        measure(index, items, customers, line_count, 200, rng)  # warm-up
        samples = measure(index, items, customers, line_count, args.quotes, rng)
        print(
            f"{line_count:>2}-line quote over {len(samples):,} quotes: "
            f"p50 {statistics.median(samples):.3f} ms, "
            f"p99 {percentile(samples, 0.99):.3f} ms, max {samples[-1]:.3f} ms"
        )


if __name__ == "__main__":
    main()
