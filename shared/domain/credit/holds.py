"""This product's pending credit: order totals accepted here but not yet booked in the ERP.

One `PendingCredit` per customer, keyed by order id, so a retried intake or a redelivered
booking cannot hold or release twice. Released holds are remembered for a while with the
time of release: an ERP reading taken before that moment does not contain the booked order
yet, so for such a reading the released amount still counts (see `pending_for`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from .assessment import CreditAssessment, CreditRefused, assess_credit
from .errors import HoldConflict, InvalidCreditInput
from .figures import ZERO, CreditFigures, CreditPolicy, aware, money


@dataclass(frozen=True, slots=True)
class ReleasedHold:
    """A hold given back (its order was booked or dropped) and when."""

    amount: Decimal
    released_at: datetime


def _frozen(mapping: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class PendingCredit:
    """The holds of one customer; immutable, so storage can compare, write with ETag, retry."""

    customer_no: str
    holds: Mapping[str, Decimal] = field(default_factory=dict)
    released: Mapping[str, ReleasedHold] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.customer_no:
            raise InvalidCreditInput("customer number must not be empty")
        for order_id, amount in self.holds.items():
            if not order_id or money(amount, "hold") < 0:
                raise InvalidCreditInput(f"hold of order {order_id!r} must be >= 0")
        for order_id, released in self.released.items():
            if not order_id:
                raise InvalidCreditInput("released hold without order id")
            aware(released.released_at, "released_at")
        object.__setattr__(self, "holds", _frozen(self.holds))
        object.__setattr__(self, "released", _frozen(self.released))

    @property
    def held(self) -> Decimal:
        """The sum of the current holds."""
        return sum(self.holds.values(), ZERO)

    def pending_for(self, figures_as_of: datetime, policy: CreditPolicy) -> Decimal:
        """What to add to an ERP reading taken at `figures_as_of`.

        Current holds always count. A hold released after the reading (less the replica
        lag) belonged to an order the reading cannot contain yet, so it counts too: an
        order is never missing from both the ERP figures and the product's pending amount.
        """
        cutoff = aware(figures_as_of, "figures_as_of") - policy.replica_lag
        recent = sum((r.amount for r in self.released.values() if r.released_at > cutoff), ZERO)
        return self.held + recent


@dataclass(frozen=True, slots=True)
class HoldChange:
    """Result of a hold or release; `changed` is False when the call repeated an earlier one."""

    pending: PendingCredit
    changed: bool
    assessment: CreditAssessment | None = None


def hold_credit(
    pending: PendingCredit,
    order_id: str,
    amount: Decimal,
    figures: CreditFigures,
    policy: CreditPolicy,
    *,
    refused_allowed: bool = False,
) -> HoldChange:
    """Hold `amount` (LCY) for `order_id` if the assessment approves it, else `CreditRefused`.

    `refused_allowed` holds it anyway (an order held for a person's approval): the amount
    still counts against the customer's credit, so no other order can use it meanwhile.

    Idempotent: the same order holding the same amount again changes nothing. The check
    uses the pending amount as stored, so writers serialised by an ETag can never together
    exceed the limit.
    """
    if figures.customer_no != pending.customer_no:
        raise InvalidCreditInput("figures and pending credit are for different customers")
    existing = pending.holds.get(order_id)
    if existing is not None:
        if existing != amount:
            raise HoldConflict(order_id, existing, amount)
        return HoldChange(pending, False)
    others = pending.pending_for(figures.as_of, policy)
    # An order released earlier and held again must not count twice.
    again = pending.released.get(order_id)
    if again is not None and again.released_at > figures.as_of - policy.replica_lag:
        others -= again.amount
    assessment = assess_credit(figures, others, amount, policy)
    if not assessment.approved and not refused_allowed:
        raise CreditRefused(assessment)
    released = {k: v for k, v in pending.released.items() if k != order_id}
    updated = replace(pending, holds={**pending.holds, order_id: amount}, released=released)
    return HoldChange(updated, True, assessment)


def release_credit(
    pending: PendingCredit,
    order_id: str,
    now: datetime,
    keep_released_for: timedelta,
    *,
    booked: bool,
) -> HoldChange:
    """Give back what `order_id` holds, and forget releases older than `keep_released_for`.

    `booked` says the order now exists in the ERP: its amount is remembered with the time of
    release, because ERP readings taken before then do not contain it yet. An order dropped
    without booking (rejected, rolled back) never reached the ERP and is simply forgotten.
    Releasing an order that holds nothing changes nothing except pruning.
    """
    aware(now, "now")
    horizon = now - keep_released_for
    kept = {k: v for k, v in pending.released.items() if v.released_at > horizon}
    amount = pending.holds.get(order_id)
    if amount is None:
        changed = len(kept) != len(pending.released)
        return HoldChange(replace(pending, released=kept) if changed else pending, changed)
    holds = {k: v for k, v in pending.holds.items() if k != order_id}
    if booked:
        kept[order_id] = ReleasedHold(amount, now)
    return HoldChange(replace(pending, holds=holds, released=kept), True)
