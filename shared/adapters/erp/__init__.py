"""Business Central adapter: the async client, its settings, models and errors."""

from shared.adapters.erp.booking import BookingOutcome, BookingResult
from shared.adapters.erp.breaker import BreakerState
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import AuthMode, ErpConfig
from shared.adapters.erp.errors import (
    ErpAmbiguousResult,
    ErpAuthFailed,
    ErpConflict,
    ErpContractError,
    ErpError,
    ErpNotFound,
    ErpRejected,
    ErpThrottled,
    ErpTransientError,
    ErpUnavailable,
)
from shared.adapters.erp.odata import Api
from shared.adapters.erp.request_pipeline import ErpCounters
from shared.observability.correlation import correlation_scope, current_correlation_id

__all__ = [
    "Api",
    "AuthMode",
    "BookingOutcome",
    "BookingResult",
    "BreakerState",
    "ErpAmbiguousResult",
    "ErpAuthFailed",
    "ErpClient",
    "ErpConfig",
    "ErpConflict",
    "ErpContractError",
    "ErpCounters",
    "ErpError",
    "ErpNotFound",
    "ErpRejected",
    "ErpThrottled",
    "ErpTransientError",
    "ErpUnavailable",
    "correlation_scope",
    "current_correlation_id",
]
