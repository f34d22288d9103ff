"""What a service reports when it cannot give its answer: four kinds, rendered in one place.

A service says what happened in its own words (``title``, ``detail``); the HTTP layer
(``functions/http.py``) alone turns the kind into a status, headers and a problem+json body,
and message handlers decide for themselves what a kind means for a delivery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ServiceError(Exception):
    """Base of the four kinds; never raised itself."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(detail)
        self.title = title
        self.detail = detail


class NotFound(ServiceError):
    """The thing asked about does not exist (an order, a customer, a queue)."""


class Conflict(ServiceError):
    """The request clashes with the state it would change; ``retry_after_seconds`` when waiting
    can resolve it (the first request with the same key is still running)."""

    def __init__(self, title: str, detail: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(title, detail)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(ServiceError):
    """The answer cannot be given now without guessing (the ERP is down, contention); asking
    again after ``retry_after_seconds`` may succeed."""

    def __init__(self, title: str, detail: str, retry_after_seconds: int) -> None:
        super().__init__(title, detail)
        self.retry_after_seconds = retry_after_seconds


class Rejected(ServiceError):
    """The request breaks a rule; ``violations`` name each one (``rule``, ``field``, ``detail``)."""

    def __init__(self, title: str, detail: str, violations: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(title, detail)
        self.violations = [dict(v) for v in violations]


class UnknownCustomer(NotFound):
    """No customer with that number (the ERP's, or the published price data's)."""

    def __init__(self, customer_no: str) -> None:
        super().__init__("Unknown customer", f"no customer {customer_no}")
        self.customer_no = customer_no
