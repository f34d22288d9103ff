"""The HTTP contract of orders: request models and the shapes of the answers.

Field names are the contract's (product.md); adding fields is fine, renaming is not. Money
is a decimal string, times are ISO 8601 UTC. ``pending`` is internal: the contract shows
accepted, booked, rejected and failed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.orders import Order, OrderLine, OrderStatus, OrderViolation
from shared.services.http_contract import (
    DecimalString,
    MoneyInput,
    Timestamp,
    Violation,
    WireModel,
    WireQuantity,
)
from shared.services.orders.lifecycle_view import (
    CreditMemoAnswer,
    InvoiceAnswer,
    LineProgressAnswer,
    ShipmentAnswer,
)
from shared.services.pricing.quotes import CurrencyCode, Quantity, Sku, UnitCode

MAX_ORDER_LINES = 200
IDEMPOTENCY_KEY_MAX = 255
# Business Central's Code[20] for customer numbers.
CUSTOMER_NUMBER_MAX = 20
ORDER_ID_PATTERN = r"^ORD-[0-9A-HJKMNP-TV-Z]{26}$"

UnitPrice = MoneyInput


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class OrderLineIn(_Contract):
    sku: Sku
    quantity: Quantity
    unit_of_measure: UnitCode | None = Field(None, alias="unitOfMeasure")
    expected_unit_price: UnitPrice | None = Field(None, alias="expectedUnitPrice")


class ShipToIn(_Contract):
    """Where to ship; lengths are Business Central's for the sales header fields."""

    name: str | None = Field(None, max_length=100)
    contact: str | None = Field(None, max_length=100)
    address_line1: str | None = Field(None, alias="addressLine1", max_length=100)
    address_line2: str | None = Field(None, alias="addressLine2", max_length=50)
    city: str | None = Field(None, max_length=30)
    state: str | None = Field(None, max_length=30)
    post_code: str | None = Field(None, alias="postCode", max_length=20)
    country: str | None = Field(None, max_length=10)
    email: str | None = Field(None, max_length=80)
    phone_number: str | None = Field(None, alias="phoneNumber", max_length=30)

    def as_sales_header(self) -> dict[str, str]:
        """The ship-to as ``salesOrder`` fields (snake_case names of the ERP payload)."""
        fields = {
            "ship_to_name": self.name,
            "ship_to_contact": self.contact,
            "ship_to_address_line1": self.address_line1,
            "ship_to_address_line2": self.address_line2,
            "ship_to_city": self.city,
            "ship_to_state": self.state,
            "ship_to_post_code": self.post_code,
            "ship_to_country": self.country,
            "email": self.email,
            "phone_number": self.phone_number,
        }
        return {key: value for key, value in fields.items() if value}


class OrderRequest(_Contract):
    """Body of ``POST /api/orders``."""

    customer_id: str = Field(alias="customerId", min_length=1, max_length=CUSTOMER_NUMBER_MAX)
    currency: CurrencyCode | None = None
    external_order_id: str = Field(alias="externalOrderId", min_length=1, max_length=100)
    channel: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9-]*$")
    lines: list[OrderLineIn] = Field(min_length=1, max_length=MAX_ORDER_LINES)
    ship_to: ShipToIn | None = Field(None, alias="shipTo")

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value


class IdempotencyKeyHeader(_Contract):
    """The ``Idempotency-Key`` header: 1 to 255 visible ASCII characters."""

    key: str = Field(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=r"^[\x21-\x7e]+$",
    )


def _dec(value: Decimal) -> str:
    return format(value, "f")


def _quantity(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else format(value, "f")


def _line(line: OrderLine) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sku": line.sku,
        "quantity": _quantity(line.quantity),
        "unitOfMeasure": line.unit_of_measure,
        "unitPrice": _dec(line.unit_price),
        "lineDiscountPercent": _dec(line.line_discount_percent),
        "lineAmount": _dec(line.line_amount),
        "allocations": [
            {"location": part.location, "quantity": _quantity(part.quantity)}
            for part in line.allocations
        ],
        "reserved": _quantity(line.reserved),
        "backordered": _quantity(line.backordered),
    }
    if line.expected_unit_price is not None:
        body["expectedUnitPrice"] = _dec(line.expected_unit_price)
    return body


def accepted_answer(
    order: Order, *, credit_stale: bool, prices_as_of: datetime | None = None
) -> dict[str, Any]:
    """The 202 body of an accepted order (always the answer as of acceptance).

    `creditStale` says the credit was checked on the last known ERP figures (the ERP was
    unreachable); `pricesAsOf` is when the published prices the order was priced from were
    current (the ERP prices the order again at booking).
    """
    body: dict[str, Any] = {
        "orderId": order.order_id,
        "status": "accepted",
        "externalOrderId": order.external_order_id,
        "channel": order.channel,
        "customerId": order.customer_no,
        "currency": order.currency,
        "totalAmount": _dec(order.total_amount),
        "lines": [_line(line) for line in order.lines],
        "acceptedAt": order.created_at.isoformat(),
        "creditStale": credit_stale,
        "pricesAsOf": prices_as_of.isoformat() if prices_as_of else None,
        "links": {"self": f"/api/orders/{order.order_id}"},
    }
    if order.status is OrderStatus.PENDING_APPROVAL:
        # Held for a person: the rules it breaks, and until when its holds are kept.
        body["status"] = str(order.status)
        body["violations"] = [violation.as_contract() for violation in order.violations]
        if order.approval_until is not None:
            body["approvalUntil"] = order.approval_until.isoformat()
    return body


def rejection_problem(order_id: str, violations: tuple[OrderViolation, ...]) -> dict[str, Any]:
    """The 422 problem+json body listing every violation."""
    return {
        "type": "about:blank",
        "title": "Order rejected",
        "status": 422,
        "detail": f"the order breaks {len(violations)} rule(s); nothing was reserved",
        "orderId": order_id,
        "violations": [violation.as_contract() for violation in violations],
    }


def order_view(order: Order) -> dict[str, Any]:
    """``GET /api/orders/{orderId}``: status, figures and the whole history."""
    body: dict[str, Any] = {
        "orderId": order.order_id,
        "status": str(order.status),
        "externalOrderId": order.external_order_id,
        "channel": order.channel,
        "customerId": order.customer_no,
        "currency": order.currency,
        "totalAmount": _dec(order.total_amount),
        "lines": [_line(line) for line in order.lines],
        "createdAt": order.created_at.isoformat(),
        "updatedAt": order.updated_at.isoformat(),
        "correlationId": order.correlation_id,
        "history": [
            {
                "at": entry.at.isoformat(),
                "event": str(entry.event),
                "detail": entry.detail,
                "correlationId": entry.correlation_id,
                **({"attempt": entry.attempt} if entry.attempt is not None else {}),
            }
            for entry in order.history
        ],
    }
    if order.erp_order_number:
        body["erpOrderNumber"] = order.erp_order_number
    if order.erp_total_amount is not None:
        body["erpTotalAmount"] = _dec(order.erp_total_amount)
    if order.failure_reason and str(order.status) in ("failed", "accepted"):
        body["lastError"] = order.failure_reason
    if order.violations:
        body["violations"] = [violation.as_contract() for violation in order.violations]
    if order.approval_until is not None:
        body["approvalUntil"] = order.approval_until.isoformat()
    if order.decisions:
        body["decisions"] = [
            {
                "at": d.at.isoformat(),
                "decision": str(d.decision),
                "approver": d.approver,
                "reason": d.reason,
            }
            for d in order.decisions
        ]
    return body


class OrderIdPath(_Contract):
    """The ``{orderId}`` of the order routes (anything else is answered 404)."""

    order_id: str = Field(alias="orderId", max_length=30, pattern=ORDER_ID_PATTERN)


class AllocationAnswer(WireModel):
    location: str
    quantity: WireQuantity


class OrderLineAnswer(WireModel):
    sku: str
    quantity: WireQuantity
    unit_of_measure: str
    unit_price: DecimalString
    line_discount_percent: DecimalString
    line_amount: DecimalString
    allocations: list[AllocationAnswer]
    reserved: WireQuantity = Field(
        description="Held for the order now (the sum of allocations), in the line's unit."
    )
    backordered: WireQuantity = Field(
        description="Accepted beyond the stock there was (sync policy insufficient-stock: "
        "backorder): booked with the line in the ERP, shipped when stock arrives; 0 otherwise."
    )
    expected_unit_price: DecimalString | None = None


class _OrderFigures(WireModel):
    order_id: str = Field(pattern=ORDER_ID_PATTERN)
    external_order_id: str
    channel: str
    customer_id: str
    currency: str
    total_amount: DecimalString
    lines: list[OrderLineAnswer]


class OrderLinks(WireModel):
    self_: str = Field(alias="self")


class OrderAccepted(_OrderFigures):
    """202 of ``POST /api/orders`` (replayed as is for the same Idempotency-Key)."""

    status: Literal["accepted", "pending-approval"] = Field(
        description="pending-approval: the order breaks rules the sync policy routes to a "
        "person; its stock and credit are held until approvalUntil."
    )
    accepted_at: Timestamp
    credit_stale: bool
    prices_as_of: Timestamp | None
    links: OrderLinks
    violations: list[Violation] | None = None
    approval_until: Timestamp | None = None


class DecisionAnswer(WireModel):
    """One decision about an order held for approval: who, when, why."""

    at: Timestamp
    decision: Literal["approved", "rejected", "expired"]
    approver: str
    reason: str


class HistoryEntry(WireModel):
    at: Timestamp
    event: str = Field(examples=["accepted", "booking-started", "booked"])
    detail: str
    correlation_id: str | None
    attempt: int | None = None


class OrderView(_OrderFigures):
    """200 of ``GET /api/orders/{orderId}``; a booked order also shows what the ERP did with
    it since (``progress``, ``shipments``, ``invoices``), as its latest ``order-status`` event."""

    status: Literal[
        "accepted",
        "pending-approval",
        "booked",
        "released",
        "partially-shipped",
        "shipped",
        "invoiced",
        "cancelled",
        "rejected",
        "failed",
    ]
    created_at: Timestamp
    updated_at: Timestamp
    correlation_id: str | None
    history: list[HistoryEntry]
    erp_order_number: str | None = None
    erp_total_amount: DecimalString | None = None
    last_error: str | None = None
    violations: list[Violation] | None = None
    approval_until: Timestamp | None = None
    decisions: list[DecisionAnswer] | None = None
    erp_status: str | None = None
    progress: list[LineProgressAnswer] | None = None
    shipments: list[ShipmentAnswer] | None = None
    invoices: list[InvoiceAnswer] | None = None
    credit_memos: list[CreditMemoAnswer] | None = None
    lifecycle_sequence: int | None = None
    lifecycle_at: Timestamp | None = None


class OrderAdminAnswer(WireModel):
    """200 (nothing to do) or 202 (done) of the operator's replay and cancel routes."""

    order_id: str
    status: Literal["pending", "pending-approval", "accepted", "booked", "rejected", "failed"]
    changed: bool
    detail: str


class ApprovalDecisionRequest(_Contract):
    """Body of ``POST /api/ops/orders/{orderId}/approve`` and ``/reject``."""

    approver: str = Field(
        min_length=1, max_length=100, pattern=r"^\S(.*\S)?$", description="Who decides."
    )
    reason: str = Field(
        min_length=1, max_length=500, pattern=r"^\S(.*\S)?$", description="Why (recorded)."
    )


class WaitingOrder(WireModel):
    """One order held for approval: the broken rules and the figures behind them."""

    order_id: str
    external_order_id: str
    customer_id: str
    channel: str
    currency: str
    total_amount: DecimalString
    created_at: Timestamp
    approval_until: Timestamp
    violations: list[Violation]
    links: OrderLinks


class ApprovalsAnswer(WireModel):
    """200 of ``GET /api/ops/approvals``: every order waiting, soonest expiry first."""

    items: list[WaitingOrder]


def waiting_order(order: Order) -> dict[str, Any]:
    """The ``GET /api/ops/approvals`` entry of a held order."""
    assert order.approval_until is not None
    return {
        "orderId": order.order_id,
        "externalOrderId": order.external_order_id,
        "customerId": order.customer_no,
        "channel": order.channel,
        "currency": order.currency,
        "totalAmount": _dec(order.total_amount),
        "createdAt": order.created_at.isoformat(),
        "approvalUntil": order.approval_until.isoformat(),
        "violations": [violation.as_contract() for violation in order.violations],
        "links": {"self": f"/api/orders/{order.order_id}"},
    }
