"""The customer's credit figures: live from the ERP, or the last known ones while it is down.

One read of the custom ``customerCreditSummaries`` page (read replica) gives limit, balance,
overdue, outstanding orders and blocked in one round trip. Every successful reading is kept
in Table storage; when the ERP cannot answer, a kept reading younger than the configured
bound is used and marked stale, and an older one is never used: the caller answers 503.

Order intake may ask for ``reuse_for``: a live reading of the same customer taken by this
process at most that long ago answers without an ERP request (not stale: the sync policy's
``credit.intakeCache`` declares that age acceptable; its ``as_of`` is the reading's time, so
orders accepted or booked since are counted on top of it as for any reading).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.errors import ErpError, ErpNotFound, ErpThrottled
from shared.adapters.erp.models import CustomerCreditSummary
from shared.adapters.ports import TableStorage
from shared.domain.credit import CreditFigures
from shared.services.errors import Unavailable, UnknownCustomer

FIGURES_TABLE = "CreditFigures"
_ROW = "erp"
# Rewrite an unchanged reading at most this often: its time still moves the stale bound.
_REWRITE_UNCHANGED_SECONDS = 60.0
_log = logging.getLogger(__name__)


def _credit_unavailable(detail: str, retry_after_seconds: int) -> Unavailable:
    """The ERP cannot answer and no recent enough reading is kept: never guess."""
    return Unavailable("Credit cannot be checked now", detail, retry_after_seconds)


@dataclass(frozen=True)
class FiguresReading:
    figures: CreditFigures
    stale: bool
    erp_error: str | None = None


def figures_from_summary(summary: CustomerCreditSummary, as_of: datetime) -> CreditFigures:
    return CreditFigures(
        customer_no=summary.customer_number,
        credit_limit=summary.credit_limit,
        balance=summary.balance,
        open_orders=summary.outstanding_orders_amount,
        overdue=summary.overdue_amount,
        blocked=summary.blocked,
        as_of=as_of,
    )


def _entity(figures: CreditFigures) -> dict[str, object]:
    return {
        "PartitionKey": figures.customer_no,
        "RowKey": _ROW,
        "creditLimit": str(figures.credit_limit),
        "balance": str(figures.balance),
        "openOrders": str(figures.open_orders),
        "overdue": str(figures.overdue),
        "blocked": figures.blocked,
        "asOf": figures.as_of,
    }


class CreditFiguresSource:
    """Reads figures for the credit check and order intake (one per process)."""

    def __init__(self, *, erp_timeout: timedelta, stale_bound: timedelta) -> None:
        self.erp_timeout = erp_timeout
        self.stale_bound = stale_bound
        self._written: dict[str, tuple[CreditFigures, float]] = {}
        self._live: dict[str, CreditFigures] = {}

    async def read(
        self,
        erp: ErpClient,
        tables: TableStorage,
        customer_no: str,
        now: datetime,
        reuse_for: timedelta = timedelta(0),
    ) -> FiguresReading:
        """Live figures (or this process's live reading up to ``reuse_for`` old), or recent
        kept ones marked stale; raises ``UnknownCustomer`` or ``Unavailable``."""
        if reuse_for > timedelta(0):
            recent = self._live.get(customer_no)
            if recent is not None and timedelta(0) <= now - recent.as_of <= reuse_for:
                return FiguresReading(recent, stale=False)
        try:
            summary = await asyncio.wait_for(
                erp.get_credit_summary(customer_no, read_only=True),
                self.erp_timeout.total_seconds(),
            )
        except ErpNotFound:
            raise UnknownCustomer(customer_no) from None
        except (ErpError, TimeoutError) as error:
            return await self._last_known(tables, customer_no, now, error)
        figures = figures_from_summary(summary, now)
        self._live[customer_no] = figures
        await self._keep(tables, figures)
        return FiguresReading(figures, stale=False)

    async def _keep(self, tables: TableStorage, figures: CreditFigures) -> None:
        previous = self._written.get(figures.customer_no)
        if previous is not None:
            same = _comparable(previous[0]) == _comparable(figures)
            if same and time.monotonic() - previous[1] < _REWRITE_UNCHANGED_SECONDS:
                return
        try:
            await tables.upsert(FIGURES_TABLE, _entity(figures))
        except Exception:  # the live answer must not fail because the cache write did
            _log.warning("could not keep credit figures of %s", figures.customer_no, exc_info=True)
            return
        self._written[figures.customer_no] = (figures, time.monotonic())

    async def _last_known(
        self, tables: TableStorage, customer_no: str, now: datetime, error: BaseException
    ) -> FiguresReading:
        reason = _describe(error)
        retry_after = _retry_after(error)
        row = await tables.get(FIGURES_TABLE, customer_no, _ROW)
        if row is None:
            raise _credit_unavailable(
                f"the ERP cannot be asked ({reason}) and no figures are known for {customer_no}",
                retry_after,
            )
        as_of: datetime = row.entity["asOf"]
        age = now - as_of
        if age > self.stale_bound:
            raise _credit_unavailable(
                f"the ERP cannot be asked ({reason}) and the last known figures are "
                f"{int(age.total_seconds())} s old (the bound is "
                f"{int(self.stale_bound.total_seconds())} s)",
                retry_after,
            )
        figures = CreditFigures(
            customer_no=customer_no,
            credit_limit=Decimal(row.entity["creditLimit"]),
            balance=Decimal(row.entity["balance"]),
            open_orders=Decimal(row.entity["openOrders"]),
            overdue=Decimal(row.entity["overdue"]),
            blocked=str(row.entity["blocked"]),
            as_of=as_of,
        )
        return FiguresReading(figures, stale=True, erp_error=reason)


def _comparable(figures: CreditFigures) -> tuple[object, ...]:
    return (
        figures.credit_limit,
        figures.balance,
        figures.open_orders,
        figures.overdue,
        figures.blocked,
    )


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return f"{type(error).__name__}: {error}"


def _retry_after(error: BaseException) -> int:
    if isinstance(error, ErpThrottled) and error.retry_after_seconds:
        return max(1, int(error.retry_after_seconds))
    return 30
