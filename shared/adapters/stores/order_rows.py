"""How orders are laid out in Table storage: flat columns for queries, JSON for the rest.

PartitionKey = order id, RowKey = ``order``: one row per order, written only with its ETag.
Lines, history and violations are JSON split over string properties of at most 30,000
characters (a property holds 64 KiB), so a 200-line order with its full history still fits
the 1 MiB entity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.domain.orders import (
    ApprovalDecision,
    BookingClaim,
    Decision,
    HistoryEntry,
    HistoryEvent,
    LineAllocation,
    Order,
    OrderLine,
    OrderRule,
    OrderStatus,
    OrderViolation,
)

ORDERS_TABLE = "Orders"
ORDER_ROW = "order"
_CHUNK_CHARS = 30_000
_MAX_CHUNKS = 30


class OrderRowTooLarge(ValueError):
    """The order's JSON would not fit one entity."""


def pack_json(entity: dict[str, Any], prefix: str, value: Any) -> None:
    """Store `value` as JSON chunks ``<prefix>0..n`` plus ``<prefix>Chunks``."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    chunks = [text[i : i + _CHUNK_CHARS] for i in range(0, len(text), _CHUNK_CHARS)] or [""]
    if len(chunks) > _MAX_CHUNKS:
        raise OrderRowTooLarge(f"{prefix}: {len(text)} characters do not fit one row")
    entity[f"{prefix}Chunks"] = len(chunks)
    for index, chunk in enumerate(chunks):
        entity[f"{prefix}{index}"] = chunk


def unpack_json(entity: Mapping[str, Any], prefix: str) -> Any:
    count = int(entity.get(f"{prefix}Chunks", 0))
    if count == 0:
        return None
    return json.loads("".join(str(entity[f"{prefix}{index}"]) for index in range(count)))


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _line_record(line: OrderLine) -> dict[str, Any]:
    record: dict[str, Any] = {
        "line": line.line,
        "sku": line.sku,
        "quantity": _dec(line.quantity),
        "unitOfMeasure": line.unit_of_measure,
        "qtyPerUnit": _dec(line.qty_per_unit),
        "unitPrice": _dec(line.unit_price),
        "lineDiscountPercent": _dec(line.line_discount_percent),
        "lineAmount": _dec(line.line_amount),
        "expectedUnitPrice": _dec(line.expected_unit_price),
        "allocations": [
            {"location": a.location, "quantity": _dec(a.quantity)} for a in line.allocations
        ],
    }
    if line.backordered:  # only backorders carry it: rows of other orders stay as they were
        record["backordered"] = _dec(line.backordered)
    return record


def _line_from(record: Mapping[str, Any]) -> OrderLine:
    expected = record.get("expectedUnitPrice")
    return OrderLine(
        line=int(record["line"]),
        sku=str(record["sku"]),
        quantity=Decimal(record["quantity"]),
        unit_of_measure=str(record["unitOfMeasure"]),
        qty_per_unit=Decimal(record["qtyPerUnit"]),
        unit_price=Decimal(record["unitPrice"]),
        line_discount_percent=Decimal(record["lineDiscountPercent"]),
        line_amount=Decimal(record["lineAmount"]),
        expected_unit_price=None if expected is None else Decimal(expected),
        allocations=tuple(
            LineAllocation(str(a["location"]), Decimal(a["quantity"]))
            for a in record["allocations"]
        ),
        backordered=Decimal(record.get("backordered") or 0),
    )


def _history_record(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "event": str(entry.event),
        "detail": entry.detail,
        "correlationId": entry.correlation_id,
        "attempt": entry.attempt,
    }


def _history_from(record: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        at=datetime.fromisoformat(record["at"]),
        event=HistoryEvent(record["event"]),
        detail=str(record.get("detail") or ""),
        correlation_id=record.get("correlationId"),
        attempt=record.get("attempt"),
    )


def _decision_record(decision: ApprovalDecision) -> dict[str, Any]:
    return {
        "at": decision.at.isoformat(),
        "decision": str(decision.decision),
        "approver": decision.approver,
        "reason": decision.reason,
    }


def _decision_from(record: Mapping[str, Any]) -> ApprovalDecision:
    return ApprovalDecision(
        at=datetime.fromisoformat(record["at"]),
        decision=Decision(record["decision"]),
        approver=str(record["approver"]),
        reason=str(record["reason"]),
    )


def _violation_record(violation: OrderViolation) -> dict[str, Any]:
    return {
        "rule": str(violation.rule),
        "detail": violation.detail,
        "sku": violation.sku,
        "line": violation.line,
        "figures": dict(violation.figures),
    }


def _violation_from(record: Mapping[str, Any]) -> OrderViolation:
    return OrderViolation(
        rule=OrderRule(record["rule"]),
        detail=str(record["detail"]),
        sku=record.get("sku"),
        line=record.get("line"),
        figures=dict(record.get("figures") or {}),
    )


def order_entity(order: Order) -> dict[str, Any]:
    """The row for an order."""
    entity: dict[str, Any] = {
        "PartitionKey": order.order_id,
        "RowKey": ORDER_ROW,
        "status": str(order.status),
        "customerNo": order.customer_no,
        "channel": order.channel,
        "currency": order.currency,
        "externalOrderId": order.external_order_id,
        "createdAt": order.created_at,
        "updatedAt": order.updated_at,
        "totalAmount": _dec(order.total_amount),
        "creditAmount": _dec(order.credit_amount),
        "correlationId": order.correlation_id or "",
        "generation": order.generation,
        "attempt": order.attempt,
        "claims": order.claims,
        "claimToken": order.claim.token if order.claim else "",
        "erpOrderNumber": order.erp_order_number or "",
        "erpOrderId": order.erp_order_id or "",
        "erpTotalAmount": _dec(order.erp_total_amount) or "",
        "failureReason": order.failure_reason or "",
        "holdsReleased": order.holds_released,
        "settled": order.settled,
    }
    if order.claim is not None:
        entity["claimUntil"] = order.claim.until
    if order.approval_until is not None:
        entity["approvalUntil"] = order.approval_until
    pack_json(
        entity,
        "data",
        {
            "lines": [_line_record(line) for line in order.lines],
            "shipTo": dict(order.ship_to),
            "violations": [_violation_record(v) for v in order.violations],
            "history": [_history_record(h) for h in order.history],
            "decisions": [_decision_record(d) for d in order.decisions],
        },
    )
    return entity


def order_from_entity(entity: Mapping[str, Any]) -> Order:
    data = unpack_json(entity, "data") or {}
    claim = None
    if entity.get("claimToken"):
        claim = BookingClaim(str(entity["claimToken"]), entity["claimUntil"])
    erp_total = entity.get("erpTotalAmount") or None
    return Order(
        order_id=str(entity["PartitionKey"]),
        status=OrderStatus(entity["status"]),
        customer_no=str(entity["customerNo"]),
        channel=str(entity["channel"]),
        currency=str(entity["currency"]),
        external_order_id=str(entity["externalOrderId"]),
        created_at=entity["createdAt"],
        updated_at=entity["updatedAt"],
        lines=tuple(_line_from(r) for r in data.get("lines", [])),
        total_amount=Decimal(entity["totalAmount"]),
        credit_amount=Decimal(entity["creditAmount"]),
        correlation_id=str(entity.get("correlationId") or "") or None,
        ship_to=data.get("shipTo", {}),
        violations=tuple(_violation_from(r) for r in data.get("violations", [])),
        generation=int(entity.get("generation", 0)),
        attempt=int(entity.get("attempt", 0)),
        claims=int(entity.get("claims", 0)),
        claim=claim,
        erp_order_number=str(entity.get("erpOrderNumber") or "") or None,
        erp_order_id=str(entity.get("erpOrderId") or "") or None,
        erp_total_amount=None if erp_total is None else Decimal(erp_total),
        failure_reason=str(entity.get("failureReason") or "") or None,
        holds_released=bool(entity.get("holdsReleased", False)),
        settled=bool(entity.get("settled", False)),
        history=tuple(_history_from(r) for r in data.get("history", [])),
        approval_until=entity.get("approvalUntil"),
        decisions=tuple(_decision_from(r) for r in data.get("decisions", [])),
    )
