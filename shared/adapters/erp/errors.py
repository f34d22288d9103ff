"""Named failures of the Business Central client, so callers branch on type, not status codes.

The split follows what a caller must do next: retry later (``ErpTransientError``), look the
record up before doing anything again (``ErpAmbiguousResult``), or give up on this input
(not found, conflict, rejected, contract broken).
"""

from __future__ import annotations

from datetime import datetime


class ErpError(Exception):
    """Base of every failure raised by the ERP adapter; subclasses pass ``entity_set`` and
    ``correlation_id`` through as ``**context``."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        entity_set: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.entity_set = entity_set
        self.correlation_id = correlation_id


class ErpTransientError(ErpError):
    """The ERP could not answer now; the same call may succeed later."""


class ErpUnavailable(ErpTransientError):
    """Breaker open, outage, or retries exhausted on 5xx/timeouts/connection errors."""


class ErpThrottled(ErpTransientError):
    """Still throttled (429) after the retry budget, or asked to wait longer than we may."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float | None = None,
        status_code: int | None = 429,
        **context: str | None,
    ) -> None:
        super().__init__(message, status_code=status_code, **context)
        self.retry_after_seconds = retry_after_seconds


class ErpAmbiguousResult(ErpError):
    """A non-idempotent request was sent but its outcome is unknown (timeout, 5xx, drop).

    The caller must look the record up (by its external document number) before trying again.
    ``decided_by`` (when known) is the moment after which Business Central has surely ended
    the request one way or the other: a request can wait in BC's queue and commit long after
    we stopped waiting, so a lookup that finds nothing proves nothing before that moment.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        decided_by: datetime | None = None,
        **context: str | None,
    ) -> None:
        super().__init__(message, status_code=status_code, **context)
        self.decided_by = decided_by


class ErpContractError(ErpError):
    """The ERP answered with a shape this client does not understand."""


class ErpNotFound(ErpError):
    """The addressed record does not exist (404, or a lookup by number found nothing)."""


class ErpConflict(ErpError):
    """The record changed since it was read (412 stale ETag) or a concurrent change (409)."""


class ErpRejected(ErpError):
    """The ERP refused the request on a business rule (400 and other 4xx), with BC's code."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        erp_message: str | None = None,
        status_code: int | None = 400,
        **context: str | None,
    ) -> None:
        super().__init__(message, status_code=status_code, **context)
        self.code = code
        self.erp_message = erp_message


class ErpAuthFailed(ErpError):
    """The token could not be obtained or was refused (401/403) even after a fresh token."""
