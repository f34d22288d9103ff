"""Reading one order as a storefront may see it (``GET /api/orders/{orderId}``)."""

from __future__ import annotations

from shared.adapters.ports import TableStorage
from shared.adapters.stores.orders import load_order
from shared.domain.orders import Order, OrderStatus
from shared.services.orders.booking import UnknownOrder


async def visible_order(tables: TableStorage, order_id: str) -> Order:
    """The stored order; ``UnknownOrder`` when there is none or its intake is still deciding
    (a pending order is not an order yet)."""
    stored = await load_order(tables, order_id)
    if stored is None or stored.order.status is OrderStatus.PENDING:
        raise UnknownOrder(order_id)
    return stored.order
