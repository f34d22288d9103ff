"""Everything the running simulator holds: the data, its settings, faults, limits and stats."""

from __future__ import annotations

import asyncio
import gc
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from devtools.erp_sim.datagen import generate
from devtools.erp_sim.dataset import Dataset
from devtools.erp_sim.faults import Faults
from devtools.erp_sim.limits import Limiter, LimitSettings
from devtools.erp_sim.stamps import Stamper
from devtools.erp_sim.stats import Stats
from devtools.erp_sim.webhooks import SubscriptionStore


@dataclass(frozen=True)
class SimulatorOptions:
    seed: int = 42
    items: int = 200
    customers: int = 50
    anchor: date | None = None  # the "today" dates are generated around; None = UTC today
    limits: LimitSettings = field(default_factory=LimitSettings)
    # Business Central only warns (a notification in the UI) when an order goes over the
    # customer's credit limit; an API create is never refused for it (codeunit 312
    # "Cust-Check Cr. Limit"). On: a stricter tenant whose extension refuses such orders.
    credit_check: bool = False
    reserve_on_order: bool = False
    default_page_size: int = 20_000
    # Call the notification URL with ?validationToken= on subscribe and renew, as BC does.
    subscription_handshake: bool = True


class SimulatorState:
    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self.limiter = Limiter(options.limits)
        self.faults = Faults(rng=random.Random(options.seed))
        self.stats = Stats()
        self.subscriptions = SubscriptionStore()
        self.reset_lock = asyncio.Lock()
        self.dataset = build_dataset(options)

    def reset(self, options: SimulatorOptions, dataset: Dataset) -> None:
        """Swap in freshly generated data; clear documents, faults, stats and limits' history."""
        self.options = replace(options, limits=self.limiter.settings)
        self.dataset = dataset
        self.faults = Faults(rng=random.Random(options.seed))
        self.stats.reset()
        self.limiter.clear()
        self.subscriptions.clear()


def build_dataset(options: SimulatorOptions) -> Dataset:
    """Generate the data for ``options`` (seconds at full scale; run off the event loop)."""
    anchor = options.anchor or datetime.now(UTC).date()
    # Millions of long-lived dicts: pausing the cyclic collector during the build and
    # freezing the result afterwards keeps later request latency free of full GC passes.
    gc.disable()
    try:
        dataset = generate(
            seed=options.seed,
            items=options.items,
            customers=options.customers,
            anchor=anchor,
            stamper=Stamper(),
        )
    finally:
        gc.enable()
    gc.freeze()
    return dataset
