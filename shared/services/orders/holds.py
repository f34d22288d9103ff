"""Taking and giving back an order's holds: stock per (sku, location) and credit per customer.

Stock positions of different items live in different partitions, so an order's holds are not
one transaction. Each hold is idempotent per order id (holding again changes nothing,
releasing what is not held changes nothing), which makes every step safe to repeat: a failed
intake gives back whatever it took, and a sweeper can finish the job after a crash by
releasing the order everywhere it might hold something.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.adapters.ports import TableStorage
from shared.adapters.stores import stock as stock_store
from shared.adapters.stores.credit_holds import change_pending
from shared.domain.credit import CreditFigures, CreditPolicy, hold_credit, release_credit
from shared.domain.orders import Order
from shared.domain.stock import ReservationChange, StockPosition, hand_over, release, reserve


async def _all(steps: Iterable[Awaitable[Any]]) -> None:
    """Run every step; raise the first failure only after all have finished."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


PositionChange = Callable[[StockPosition], tuple[StockPosition, ReservationChange]]


def _reserve(quantity: Decimal, order_id: str, with_expected: bool) -> PositionChange:
    def change(position: StockPosition) -> tuple[StockPosition, ReservationChange]:
        result = reserve(position, quantity, order_id, with_expected=with_expected)
        return result.position, result

    return change


def _release(order_id: str, booked_at: datetime | None) -> PositionChange:
    """Give the hold back, or (booked) hand it over to the ERP's demand in the same write."""

    def change(position: StockPosition) -> tuple[StockPosition, ReservationChange]:
        if booked_at is None:
            result = release(position, order_id)
        else:
            result = hand_over(position, order_id, booked_at)
        return result.position, result

    return change


async def take_holds(
    tables: TableStorage,
    order: Order,
    figures: CreditFigures,
    policy: CreditPolicy,
    *,
    with_expected: bool = False,
    for_approval: bool = False,
) -> None:
    """Hold the order's credit and stock, or hold nothing and raise why.

    `for_approval`: the order waits for a person, so its credit is held even beyond what the
    credit rules allow (its stock holds are only what there is: see ``allocate``).

    Raises the domain's refusal (``CreditRefused``, ``InsufficientStock``) when a concurrent
    order got there first; whatever this call had already taken is given back first.
    """

    async def credit() -> None:
        await change_pending(
            tables,
            order.customer_no,
            lambda p: (
                hold_credit(
                    p,
                    order.order_id,
                    order.credit_amount,
                    figures,
                    policy,
                    refused_allowed=for_approval,
                ).pending,
                None,
            ),
        )

    async def stock(sku: str, location: str, quantity: Decimal) -> None:
        await stock_store.change_position(
            tables, sku, location, _reserve(quantity, order.order_id, with_expected)
        )

    try:
        await _all(
            [
                credit(),
                *(stock(h.sku, h.location, h.quantity) for h in order.stock_holds),
            ]
        )
    except BaseException:
        await release_holds(
            tables, order, booked=False, now=datetime.now(UTC), remember_for=timedelta(0)
        )
        raise


async def release_holds(
    tables: TableStorage,
    order: Order,
    *,
    booked: bool,
    now: datetime,
    remember_for: timedelta,
) -> None:
    """Give back everything `order` may hold, wherever it is (safe to repeat).

    Looks at every stored location of each of the order's items rather than trusting one
    allocation plan, so holds taken by an interrupted intake round are found too. A `booked`
    order's stock holds are handed over to the ERP's demand instead (`hand_over`): the units
    stay out of availability, counted once, until an ERP read shows the order.
    """
    booked_at = (order.booked_at or now) if booked else None

    async def credit() -> None:
        await change_pending(
            tables,
            order.customer_no,
            lambda p: (
                release_credit(p, order.order_id, now, remember_for, booked=booked).pending,
                None,
            ),
        )

    async def stock(sku: str) -> None:
        positions = await stock_store.positions_of(tables, sku)
        await _all(
            stock_store.change_position(
                tables, sku, stored.position.location, _release(order.order_id, booked_at)
            )
            for stored in positions
            if order.order_id in stored.position.reservations
        )

    skus = sorted({line.sku for line in order.lines})
    await _all([credit(), *(stock(sku) for sku in skus)])
