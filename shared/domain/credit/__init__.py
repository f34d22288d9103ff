"""Customer credit: the ERP's figures plus this product's pending orders, and the decision.

Pure domain code: no I/O. How the layers above use it:

1. The service reads `CreditFigures` from the ERP (``customerCreditSummaries``, read
   replica), or the last known ones when the ERP is down and they are recent enough.
2. The credit check loads the customer's `PendingCredit` and calls
   `assess_credit(figures, pending.pending_for(figures.as_of, policy), amount, policy)`.
3. Order intake calls `hold_credit` inside an ETag-conditional write of the customer's
   `PendingCredit` (retried on 412), so concurrent orders cannot together exceed the limit;
   booking and rejection call `release_credit`.
4. Amounts in another currency are converted with `to_lcy` first.
"""

from .assessment import CreditAssessment, CreditReason, CreditRefused, assess_credit
from .conversion import LCY_AMOUNT_PRECISION, to_lcy
from .errors import CreditError, HoldConflict, InvalidCreditInput
from .figures import ORDER_BLOCKING_VALUES, CreditFigures, CreditPolicy
from .holds import HoldChange, PendingCredit, ReleasedHold, hold_credit, release_credit

__all__ = [
    "LCY_AMOUNT_PRECISION",
    "ORDER_BLOCKING_VALUES",
    "CreditAssessment",
    "CreditError",
    "CreditFigures",
    "CreditPolicy",
    "CreditReason",
    "CreditRefused",
    "HoldChange",
    "HoldConflict",
    "InvalidCreditInput",
    "PendingCredit",
    "ReleasedHold",
    "assess_credit",
    "hold_credit",
    "release_credit",
    "to_lcy",
]
