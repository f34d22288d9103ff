"""Business Central's error envelope: ``{"error": {"code": ..., "message": ...}}``.

Handlers raise ``ApiError`` (or a subclass naming the situation); one place turns it into
the response, so every failure path answers in the same shape with the right status.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: HTTP status, Business Central-style code, readable message."""

    status = 400
    code = "BadRequest"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(ApiError):
    status, code = 400, "BadRequest"


class NotFound(ApiError):
    status, code = 404, "BadRequest_NotFound"


class MethodNotAllowed(ApiError):
    status, code = 405, "BadRequest_MethodNotAllowed"


class PreconditionRequired(ApiError):
    """PATCH or DELETE without If-Match: Business Central answers 400 (the exact error code is
    on the sandbox checklist in docs/erp-conformance.md)."""

    status, code = 400, "BadRequest"


class EntityChanged(ApiError):
    """A stale ETag: Business Central answers 409 ``Request_EntityChanged`` (not 412)."""

    status, code = 409, "Request_EntityChanged"

    def __init__(self) -> None:
        super().__init__(
            "Could not save the changes because the entity has been changed by another user. "
            "Refresh the entity and try again."
        )


class BusinessRuleViolation(ApiError):
    """A Business Central validation error raised from AL code (blocked, credit, ...)."""

    status, code = 400, "Application_DialogException"


class RecordNotFound(ApiError):
    """A referenced record (customer, item, location) does not exist."""

    status, code = 400, "Internal_RecordNotFound"


class RecordExists(ApiError):
    """A duplicate key: 409 in Business Central."""

    status, code = 409, "Internal_EntityWithSameKeyExists"


class Throttled(ApiError):
    status, code = 429, "Application_TooManyRequests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, retry_after))}


class ServiceUnavailable(ApiError):
    status, code = 503, "ServiceUnavailable"


class InternalError(ApiError):
    status, code = 500, "InternalServerError"
