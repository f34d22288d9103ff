"""``POST /api/credit/check``: may this customer take on this amount, and why (not)?

Figures: the ERP's (live, read replica, one round trip) plus this product's pending holds
for orders accepted but not booked yet. While the ERP is down the last known figures are
used if they are recent enough (``stale: true``); otherwise the answer is 503, never a guess.

Currency: credit lives in the local currency (LCY). An amount in another currency is
converted with the exchange rate Business Central publishes for today (the price book holds
it) and rounded as BC rounds, which is exactly the figure the ERP's own credit check uses;
without a published rate the request is refused (422) rather than converted approximately.
"""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.adapters.stores.credit_holds import load_pending
from shared.domain.credit import CreditAssessment, assess_credit, to_lcy
from shared.services.credit.figures import FiguresReading
from shared.services.errors import Rejected
from shared.services.http_contract import DecimalString, MoneyInput, Timestamp, WireModel
from shared.services.orders.context import OrderContext

_CENT = Decimal("0.01")
Amount = MoneyInput


class CreditCheckRequest(BaseModel):
    """Body of ``POST /api/credit/check``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    customer_id: str = Field(alias="customerId", min_length=1, max_length=20)
    amount: Amount
    currency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$")

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value


class CurrencyNotConvertible(Rejected):
    """No published exchange rate for the currency today: an exact conversion is impossible."""

    def __init__(self, currency: str) -> None:
        super().__init__(
            "Invalid request",
            "the amount cannot be converted to the local currency exactly",
            [
                {
                    "rule": "currency-not-convertible",
                    "field": "currency",
                    "detail": f"no published exchange rate for {currency} today",
                }
            ],
        )
        self.currency = currency


def money(value: Decimal) -> str:
    """An LCY amount as the contract writes money: a decimal string with cents."""
    return format(value.quantize(_CENT, rounding=ROUND_HALF_UP), "f")


async def amount_in_lcy(ctx: OrderContext, amount: Decimal, currency: str) -> Decimal | None:
    """`amount` in LCY, or None when `currency` is LCY already; `CurrencyNotConvertible`."""
    if ctx.currencies.is_local(currency):
        return None
    await ctx.price_book.ensure_current()
    rate = ctx.price_book.lcy_per_unit(currency, ctx.clock().date())
    if rate is None:
        raise CurrencyNotConvertible(currency)
    return to_lcy(amount, rate)


async def check_credit(ctx: OrderContext, request: CreditCheckRequest) -> dict[str, Any]:
    """The contract's answer; raises ``UnknownCustomer``, ``Unavailable`` or
    ``CurrencyNotConvertible``."""
    now = ctx.clock()
    currency = ctx.currencies.resolve(request.currency)
    converted = await amount_in_lcy(ctx, request.amount, currency)
    reading, stored = await asyncio.gather(
        ctx.figures.read(ctx.erp, ctx.tables, request.customer_id, now),
        load_pending(ctx.tables, request.customer_id),
    )
    policy = ctx.settings.credit_policy
    pending = stored.pending.pending_for(reading.figures.as_of, policy)
    amount_lcy = request.amount if converted is None else converted
    assessment = assess_credit(reading.figures, pending, amount_lcy, policy)
    answer = credit_answer(request.customer_id, assessment, reading)
    answer["amount"] = format(request.amount, "f")
    answer["currency"] = currency
    answer["amountLcy"] = money(amount_lcy)
    answer["localCurrency"] = ctx.currencies.local_currency_code
    return answer


def credit_answer(
    customer_id: str, assessment: CreditAssessment, reading: FiguresReading
) -> dict[str, Any]:
    """The figures and reasons in the contract's names (money in LCY)."""
    answer: dict[str, Any] = {
        "customerId": customer_id,
        "approved": assessment.approved,
        "creditLimit": money(assessment.credit_limit),
        "balance": money(assessment.balance),
        "openOrdersAmount": money(assessment.open_orders),
        "pendingAmount": money(assessment.pending),
        # BC's credit limit 0 means "no limit": there is no available figure to show.
        "availableCredit": None if assessment.available is None else money(assessment.available),
        "unlimitedCredit": assessment.unlimited,
        "overdueAmount": money(assessment.overdue),
        "blocked": assessment.blocked,
        "reasons": [str(reason) for reason in assessment.reasons],
        "stale": reading.stale,
        "asOf": reading.figures.as_of.isoformat(),
    }
    if reading.erp_error:
        answer["staleReason"] = reading.erp_error
    return answer


class CreditAnswer(WireModel):
    """200 of ``POST /api/credit/check``; money in the local currency (LCY) unless named."""

    customer_id: str
    approved: bool
    credit_limit: DecimalString
    balance: DecimalString
    open_orders_amount: DecimalString
    pending_amount: DecimalString
    available_credit: DecimalString | None = Field(
        description="null when the credit limit is unlimited (Business Central's 0)."
    )
    unlimited_credit: bool
    overdue_amount: DecimalString
    blocked: str = Field(description="Business Central's Blocked value; empty when not blocked.")
    reasons: list[Literal["blocked", "over-limit", "overdue"]]
    stale: bool
    as_of: Timestamp
    stale_reason: str | None = None
    amount: DecimalString
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    amount_lcy: DecimalString
    local_currency: str = Field(pattern=r"^[A-Z]{3}$")
