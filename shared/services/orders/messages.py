"""The messages of order booking: ``orders`` (book this order) and ``order-status`` events.

An ``orders`` message only names the order and which attempt it is; the order row is the
truth, so a stale or duplicate message is recognised by comparing (generation, attempt) with
the row. MessageId is the order id for the first message of an order, and
``<orderId>.<generation>.<attempt>`` for retries and replays, because Service Bus duplicate
detection would otherwise drop a retry sent within its window. A re-send of the same
attempt (the outbox) reuses its id, so the broker drops it when the first send had landed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.bus import MessageBus
from shared.domain.orders import Order, OrderStatus

ORDERS_QUEUE = "orders"
STATUS_TOPIC = "order-status"
ORDER_ID_PATTERN = r"^ORD-[0-9A-HJKMNP-TV-Z]{26}$"


class OrderMessage(BaseModel):
    """Body of a message on the ``orders`` queue."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    order_id: str = Field(alias="orderId", pattern=ORDER_ID_PATTERN)
    generation: int = Field(0, ge=0, le=10_000)
    attempt: int = Field(1, ge=1, le=10_000)


def booking_message_id(order_id: str, generation: int, attempt: int) -> str:
    if generation == 0 and attempt == 1:
        return order_id
    return f"{order_id}.{generation}.{attempt}"


async def send_booking_message(
    bus: MessageBus,
    order_id: str,
    generation: int,
    attempt: int,
    correlation_id: str | None,
    *,
    scheduled_at: datetime | None = None,
    message_id: str | None = None,
) -> None:
    """Queue (or schedule) booking attempt `attempt`; ``BusSendFailed`` if not confirmed."""
    body = OrderMessage(order_id=order_id, generation=generation, attempt=attempt)
    await bus.send_json(
        ORDERS_QUEUE,
        body.model_dump(mode="json", by_alias=True),
        message_id=message_id or booking_message_id(order_id, generation, attempt),
        correlation_id=correlation_id,
        subject="book-order",
        properties={"attempt": attempt, "generation": generation},
        scheduled_at=scheduled_at,
    )


def status_event(order: Order, occurred_at: datetime) -> dict[str, Any]:
    """The ``order-status`` body: what a storefront needs to update its own order."""
    body: dict[str, Any] = {
        "orderId": order.order_id,
        "externalOrderId": order.external_order_id,
        "channel": order.channel,
        "customerId": order.customer_no,
        "status": str(order.status),
        "currency": order.currency,
        "totalAmount": format(order.total_amount, "f"),
        "occurredAt": occurred_at.isoformat(),
    }
    if order.erp_order_number:
        body["erpOrderNumber"] = order.erp_order_number
    if order.erp_total_amount is not None:
        body["erpTotalAmount"] = format(order.erp_total_amount, "f")
        body["priceChanged"] = order.erp_total_amount != order.total_amount
    if order.status in (OrderStatus.FAILED, OrderStatus.REJECTED) and order.failure_reason:
        body["reason"] = order.failure_reason
    if order.status is OrderStatus.PENDING_APPROVAL and order.approval_until is not None:
        body["approvalUntil"] = order.approval_until.isoformat()
        body["rules"] = sorted({str(v.rule) for v in order.violations})
    if order.decisions:
        # Held for approval and decided since: the last decision says who and why.
        last = order.decisions[-1]
        body["decision"] = {
            "decision": str(last.decision),
            "approver": last.approver,
            "reason": last.reason,
            "at": last.at.isoformat(),
        }
        if order.status is OrderStatus.REJECTED:
            body["reason"] = last.reason
    # Per order the sequence only grows: 0 before booking, 1 for booked, then the ERP
    # lifecycle's events (shared/services/orders/lifecycle.py) count on from there.
    body["sequence"] = 1 if order.status is OrderStatus.BOOKED else 0
    if order.status is OrderStatus.BOOKED:
        body["lines"] = [
            {
                "sku": line.sku,
                "unitOfMeasure": line.unit_of_measure,
                "ordered": _quantity(line.quantity),
                "shipped": 0,
                "invoiced": 0,
                "backordered": _quantity(line.quantity),
                "backorderedAtIntake": _quantity(line.backordered),
                "cancelled": 0,
            }
            for line in order.lines
        ]
        body["shipments"] = []
        body["invoices"] = []
    return body


def _quantity(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else format(value.normalize(), "f")


async def publish_status(bus: MessageBus, order: Order, occurred_at: datetime) -> None:
    """Tell storefronts; MessageId per (order, status, generation) lets them drop repeats.

    SessionId is the order id: the ``storefront`` subscription requires sessions, so a
    consumer reads one order's changes in the order they were published.
    """
    await bus.send_json(
        STATUS_TOPIC,
        status_event(order, occurred_at),
        message_id=f"{order.order_id}:{order.status}:{order.generation}",
        correlation_id=order.correlation_id,
        subject=str(order.status),
        properties={"channel": order.channel, "status": str(order.status)},
        session_id=order.order_id,
    )
