"""The ``erpsync.*`` metrics, each recorded with one call where the fact is known.

Instruments come from the global meter provider through the API's proxy, so they are created
at import and start recording once a provider is set (never, locally, unless asked).

Transactional accuracy = 1 - ``erpsync.orders.price_mismatches`` / ``erpsync.orders.booked``:
the share of booked orders whose ERP total equals the total the shopper was promised.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from opentelemetry import metrics

METER_NAME = "erpsync"

_meter = metrics.get_meter(METER_NAME)
_quote_duration = _meter.create_histogram(
    "erpsync.quote.duration", unit="ms", description="Time to answer a price quote."
)
_erp_calls = _meter.create_counter(
    "erpsync.erp.calls", unit="{request}", description="HTTP attempts at the ERP, by outcome."
)
_erp_throttles = _meter.create_counter(
    "erpsync.erp.throttles", unit="{response}", description="429 answers from the ERP."
)
_events = _meter.create_counter(
    "erpsync.events.processed", unit="{message}", description="Messages handled, by outcome."
)
_dead_letters = _meter.create_counter(
    "erpsync.dead_letters", unit="{message}", description="Messages dead-lettered, by reason."
)
_drift_found = _meter.create_counter(
    "erpsync.reconciliation.drift_found",
    unit="{key}",
    description="Item x location keys whose projection differed from the ERP.",
)
_drift_size = _meter.create_histogram(
    "erpsync.reconciliation.drift_size",
    unit="{unit}",
    description="Size of one drift (|on hand| + |reserved| difference).",
)
_notifications = _meter.create_counter(
    "erpsync.erp.notifications",
    unit="{notification}",
    description="Business Central notifications received, by what the receiver did.",
)
_orders_booked = _meter.create_counter(
    "erpsync.orders.booked", unit="{order}", description="Orders booked in the ERP."
)
_price_mismatches = _meter.create_counter(
    "erpsync.orders.price_mismatches",
    unit="{order}",
    description="Booked orders whose ERP total differs from the accepted total.",
)


@contextmanager
def quote_timer() -> Iterator[None]:
    """Record how long the block took as one quote, with ``outcome`` ok or error."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        _quote_duration.record((time.perf_counter() - started) * 1000, {"outcome": outcome})


def erp_call(method: str, outcome: str) -> None:
    """One HTTP attempt at the ERP; outcome: ok, throttled, client-error, server-error,
    transport-error."""
    _erp_calls.add(1, {"method": method, "outcome": outcome})


def erp_throttled(entity_set: str) -> None:
    _erp_throttles.add(1, {"entity_set": entity_set})


def event_processed(kind: str, outcome: str, count: int = 1) -> None:
    """Messages of ``kind`` (the queue) completed, dead-lettered or abandoned for a retry."""
    if count > 0:
        _events.add(count, {"kind": kind, "outcome": outcome})


def dead_lettered(queue: str, reason: str, count: int = 1) -> None:
    if count > 0:
        _dead_letters.add(count, {"queue": queue, "reason": reason})


def erp_notifications(outcome: str, count: int = 1) -> None:
    """Notifications received; outcome: queued, unregistered, foreign, naive-time, refused."""
    if count > 0:
        _notifications.add(count, {"outcome": outcome})


def drift_found(size: Decimal) -> None:
    """One drifted key found by reconciliation, with the size of its drift."""
    _drift_found.add(1)
    _drift_size.record(float(size))


def order_booked(accepted_total: Decimal, erp_total: Decimal | None, currency: str) -> None:
    """A booked order; a mismatch when the ERP priced it differently from the acceptance."""
    _orders_booked.add(1, {"currency": currency})
    if erp_total is not None and erp_total != accepted_total:
        _price_mismatches.add(1, {"currency": currency})
