"""What the ERP says about a customer's credit, and the product's credit policy.

Every amount here is in the local currency (LCY): Business Central keeps the customer
ledger, credit limit and outstanding orders in LCY whatever the document currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from .errors import InvalidCreditInput

ZERO = Decimal(0)
# Business Central refuses new sales orders for these values of Customer.Blocked; "Invoice"
# only stops posting invoices, so orders (and credit for them) are still allowed.
ORDER_BLOCKING_VALUES = frozenset({"All", "Ship"})


def money(value: object, name: str) -> Decimal:
    """`value` if it is a finite Decimal; floats are refused so no binary rounding sneaks in."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidCreditInput(f"{name} must be a finite Decimal, got {value!r}")
    return value


def aware(value: object, name: str) -> datetime:
    """`value` if it is a timezone-aware datetime (naive times would be a guess)."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidCreditInput(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class CreditFigures:
    """One reading of the customer's credit from the ERP (the ``customerCreditSummaries`` page).

    `credit_limit` 0 means "no limit", as in Business Central. `open_orders` is the ERP's
    outstanding (not yet invoiced) sales orders amount. `as_of` is when the ERP was asked,
    which matters when the figures are reused while the ERP is unreachable.
    """

    customer_no: str
    credit_limit: Decimal
    balance: Decimal
    open_orders: Decimal
    overdue: Decimal
    blocked: str
    as_of: datetime

    def __post_init__(self) -> None:
        if not self.customer_no or self.customer_no != self.customer_no.strip():
            raise InvalidCreditInput("customer number must be non-empty without blanks around it")
        for name in ("credit_limit", "balance", "open_orders", "overdue"):
            money(getattr(self, name), name)
        if self.credit_limit < 0:
            raise InvalidCreditInput("credit limit must not be negative")
        aware(self.as_of, "as_of")
        object.__setattr__(self, "blocked", self.blocked.strip())

    @property
    def unlimited(self) -> bool:
        """Business Central's credit limit 0 means the customer has no limit."""
        return self.credit_limit == 0

    @property
    def blocks_orders(self) -> bool:
        """Whether the ERP would refuse a new sales order for this customer."""
        return self.blocked in ORDER_BLOCKING_VALUES


@dataclass(frozen=True, slots=True)
class CreditPolicy:
    """The product's configured credit rules.

    - `overdue_tolerance`: an overdue balance above this (LCY) is a reason to refuse.
    - `replica_lag`: how far the ERP's read replica may trail its primary; a pending hold
      released less than this before a reading is still counted, so an order booked in the
      ERP a moment ago is never missing from both sides.
    """

    overdue_tolerance: Decimal = ZERO
    replica_lag: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if money(self.overdue_tolerance, "overdue_tolerance") < 0:
            raise InvalidCreditInput("overdue tolerance must not be negative")
        if self.replica_lag < timedelta(0):
            raise InvalidCreditInput("replica lag must not be negative")
