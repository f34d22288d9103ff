"""Orders: intake rules, the order's life cycle and booking decisions.

Pure domain code: no I/O. How the layers above use it:

1. Intake gathers facts (price book, ERP credit figures, pending credit, stock positions)
   and calls `evaluate_order`; violations are answered 422, all at once.
2. An acceptable order is stored `pending` with its `stock_holds`, then the holds are taken
   (`shared.domain.stock.reserve`, `shared.domain.credit.hold_credit`) and `accept`ed.
3. The ``orders`` handler calls `decide` for each message, then `claim_booking`,
   `record_booked` / `schedule_retry` (delays from `BookingRetryPolicy`) / `record_failed`,
   each written with the order row's ETag.
4. Replays call `request_replay`; the sweeper calls `abandon` for intakes that never
   finished.
"""

from .allocation import (
    AllocationResult,
    Backorder,
    LineAllocation,
    LineDemand,
    Shortage,
    allocate,
)
from .approvals import ApprovalAction, BackorderPolicy, approval_needed, price_changes
from .booking import BookingDecision, Disposition, decide
from .evaluation import (
    Evaluation,
    OrderFacts,
    PricingData,
    RequestedLine,
    credit_violations,
    evaluate_order,
)
from .ids import PREFIX, InvalidOrderId, is_order_id, new_order_id
from .model import (
    EXPIRY_APPROVER,
    ApprovalDecision,
    BookingClaim,
    Decision,
    HistoryEntry,
    HistoryEvent,
    InvalidTransition,
    Order,
    OrderLine,
    OrderStatus,
    StockHold,
    abandon,
    accept,
    approve,
    cancel,
    claim_booking,
    expire_approval,
    hold_for_approval,
    mark_holds_released,
    mark_settled,
    record_booked,
    record_failed,
    reject,
    reject_held,
    release_claim,
    request_replay,
    schedule_retry,
)
from .quantity_limits import LineLimit, QuantityLimits, quantity_violations
from .retry import BookingRetryPolicy
from .violations import OrderRule, OrderViolation

__all__ = [
    "EXPIRY_APPROVER",
    "PREFIX",
    "AllocationResult",
    "ApprovalAction",
    "ApprovalDecision",
    "Backorder",
    "BackorderPolicy",
    "BookingClaim",
    "BookingDecision",
    "BookingRetryPolicy",
    "Decision",
    "Disposition",
    "Evaluation",
    "HistoryEntry",
    "HistoryEvent",
    "InvalidOrderId",
    "InvalidTransition",
    "LineAllocation",
    "LineDemand",
    "LineLimit",
    "Order",
    "OrderFacts",
    "OrderLine",
    "OrderRule",
    "OrderStatus",
    "OrderViolation",
    "PricingData",
    "QuantityLimits",
    "RequestedLine",
    "Shortage",
    "StockHold",
    "abandon",
    "accept",
    "allocate",
    "approval_needed",
    "approve",
    "cancel",
    "claim_booking",
    "credit_violations",
    "decide",
    "evaluate_order",
    "expire_approval",
    "hold_for_approval",
    "is_order_id",
    "mark_holds_released",
    "mark_settled",
    "new_order_id",
    "price_changes",
    "quantity_violations",
    "record_booked",
    "record_failed",
    "reject",
    "reject_held",
    "release_claim",
    "request_replay",
    "schedule_retry",
]
