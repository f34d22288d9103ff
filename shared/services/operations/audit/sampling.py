"""The logic layer's sample: (customer, item, quantity) triples, deterministic per seed.

Half of the triples (where the data has them) sit on a quantity break of a price or discount
line, or one below it, because that is where a rule the product does not mirror would show;
the rest use small everyday quantities.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

_EVERYDAY_MAX = 12


@dataclass(frozen=True)
class Triple:
    customer: str
    item: str
    quantity: Decimal


def sample_triples(
    customers: Sequence[str],
    items: Sequence[str],
    breaks: Mapping[str, Sequence[Decimal]],
    size: int,
    seed: int,
) -> list[Triple]:
    """Up to ``size`` distinct triples; the same inputs and seed give the same list."""
    if size <= 0 or not customers or not items:
        return []
    rng = random.Random(seed)
    customer_pool = sorted(set(customers))
    item_pool = sorted(set(items))
    with_breaks = sorted(item for item in item_pool if any(b > 1 for b in breaks.get(item, ())))
    chosen: dict[tuple[str, str, Decimal], Triple] = {}
    attempts = 0
    while len(chosen) < size and attempts < size * 20:
        attempts += 1
        customer = rng.choice(customer_pool)
        if with_breaks and len(chosen) % 2 == 0:
            item = rng.choice(with_breaks)
            brk = rng.choice(sorted(b for b in breaks[item] if b > 1))
            quantity = brk if rng.random() < 0.5 else brk - 1
        else:
            item = rng.choice(item_pool)
            quantity = Decimal(rng.randint(1, _EVERYDAY_MAX))
        quantity = quantity.to_integral_value()
        if quantity < 1:
            continue
        chosen.setdefault((customer, item, quantity), Triple(customer, item, quantity))
    return list(chosen.values())
