"""The order-outcome ledger: one row per order saying how it ended, for accuracy and impact.

Table ``OrderOutcomes``: PartitionKey = the UTC day the order was taken (``YYYY-MM-DD``),
RowKey = the order id. Written where the order changes state (intake rejection, booking,
booking failure) with a replacing upsert, so a repeated write changes nothing and a replayed
order that books after failing ends as booked. The ledger is a by-product: a failed write is
logged and never fails the order path. A booked row also says whether intake accepted the
order with backordered quantities (``backordered``, ``backorderedUnits`` in base units); rows
written before those fields existed read as not backordered.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.adapters.ports import TableStorage
from shared.adapters.table_keys import encode_key
from shared.domain.orders import Order, OrderViolation
from shared.domain.orders.outcomes import OutcomeKind, ProblemCategory, categories_of

TABLE = "OrderOutcomes"
_log = logging.getLogger(__name__)


def day_key(moment: datetime) -> str:
    return moment.date().isoformat()


@dataclass(frozen=True)
class OutcomeRow:
    """One ledger row as read back."""

    order_id: str
    day: date
    kind: OutcomeKind
    customer: str
    currency: str
    created_at: datetime
    decided_at: datetime
    intake_total: Decimal
    erp_total: Decimal | None
    categories: tuple[ProblemCategory, ...]
    rules: tuple[str, ...]
    reason: str
    # Booked after a person approved it: an order the rules alone would have refused.
    approved: bool = False
    # Accepted at intake with backordered quantities (the sync policy's backorder): an order
    # the insufficient-stock rule alone would have refused. Units in the items' base units.
    backordered: bool = False
    backordered_units: Decimal = Decimal(0)

    @property
    def repriced(self) -> bool:
        return (
            self.kind is OutcomeKind.BOOKED
            and self.erp_total is not None
            and self.erp_total != self.intake_total
        )


def _entity(order: Order, kind: OutcomeKind, **extra: Any) -> dict[str, Any]:
    return {
        "PartitionKey": day_key(order.created_at),
        "RowKey": order.order_id,
        "kind": str(kind),
        "customer": order.customer_no,
        "channel": order.channel,
        "currency": order.currency,
        "createdAt": order.created_at,
        "decidedAt": order.updated_at,
        "intakeTotal": str(order.total_amount),
        "erpTotal": "",
        "repriced": False,
        "categories": "",
        "rules": "",
        "reason": "",
        **extra,
    }


async def _write(tables: TableStorage, entity: dict[str, Any]) -> None:
    try:
        await tables.upsert(TABLE, entity)
    except Exception:  # the ledger must never fail the order it describes
        _log.warning(
            "order %s: outcome %s not recorded",
            entity["RowKey"],
            entity["kind"],
            exc_info=True,
        )


async def record_rejected_at_intake(
    tables: TableStorage, order: Order, violations: Iterable[OrderViolation]
) -> None:
    found = tuple(violations)
    await _write(
        tables,
        _entity(
            order,
            OutcomeKind.REJECTED_AT_INTAKE,
            categories=",".join(categories_of(found)),
            rules=",".join(sorted({str(v.rule) for v in found})),
        ),
    )


def _backordered_units(order: Order) -> Decimal:
    """What intake accepted beyond the stock there was, in base units over all lines."""
    return sum((line.backordered * line.qty_per_unit for line in order.lines), Decimal(0))


async def record_booked(tables: TableStorage, order: Order) -> None:
    erp_total = order.erp_total_amount
    backordered = _backordered_units(order)
    await _write(
        tables,
        _entity(
            order,
            OutcomeKind.BOOKED,
            erpTotal="" if erp_total is None else str(erp_total),
            repriced=erp_total is not None and erp_total != order.total_amount,
            approved=any(str(d.decision) == "approved" for d in order.decisions),
            backordered=backordered > 0,
            backorderedUnits=str(backordered),
            rules=",".join(sorted({str(v.rule) for v in order.violations})),
        ),
    )


async def record_rejected_at_approval(tables: TableStorage, order: Order) -> None:
    last = order.decisions[-1] if order.decisions else None
    await _write(
        tables,
        _entity(
            order,
            OutcomeKind.REJECTED_AT_APPROVAL,
            categories=",".join(categories_of(order.violations)),
            rules=",".join(sorted({str(v.rule) for v in order.violations})),
            reason=f"{last.decision} by {last.approver}: {last.reason}" if last else "rejected",
        ),
    )


async def record_failed_at_booking(tables: TableStorage, order: Order) -> None:
    await _write(
        tables,
        _entity(order, OutcomeKind.FAILED_AT_BOOKING, reason=order.failure_reason or "failed"),
    )


def _split(text: object) -> tuple[str, ...]:
    return tuple(part for part in str(text or "").split(",") if part)


def _row(entity: dict[str, Any]) -> OutcomeRow:
    erp_total = str(entity.get("erpTotal") or "")
    return OutcomeRow(
        order_id=str(entity["RowKey"]),
        day=date.fromisoformat(str(entity["PartitionKey"])),
        kind=OutcomeKind(str(entity["kind"])),
        customer=str(entity.get("customer", "")),
        currency=str(entity.get("currency", "")),
        created_at=entity["createdAt"],
        decided_at=entity["decidedAt"],
        intake_total=Decimal(str(entity["intakeTotal"])),
        erp_total=Decimal(erp_total) if erp_total else None,
        categories=tuple(ProblemCategory(c) for c in _split(entity.get("categories"))),
        rules=_split(entity.get("rules")),
        reason=str(entity.get("reason") or ""),
        approved=bool(entity.get("approved", False)),
        backordered=bool(entity.get("backordered", False)),
        backordered_units=Decimal(str(entity.get("backorderedUnits") or "0")),
    )


async def outcomes_between(
    tables: TableStorage, first_day: date, last_day: date
) -> AsyncIterator[OutcomeRow]:
    """Every row of the days ``first_day`` .. ``last_day`` (inclusive), day by day.

    One range query over the day partitions (ISO days sort as they follow each other), not
    one query per day: a 30-day report is then one round trip when the days are few rows,
    where it was 30 in a row (about 230 ms on the operations page).
    """
    if last_day < first_day:
        return
    async for row in tables.query(
        TABLE,
        "PartitionKey ge @first and PartitionKey le @last",
        {"first": encode_key(first_day.isoformat()), "last": encode_key(last_day.isoformat())},
    ):
        yield _row(row.entity)
