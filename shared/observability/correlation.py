"""The correlation id carried on every ERP request, so one storefront call is traceable in BC.

The product sets it once per invocation (``correlation_scope``); the client reads it per
request. Without one, each request gets a fresh id so it is still traceable on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

current_correlation_id: ContextVar[str | None] = ContextVar("erp_correlation_id", default=None)


def get_correlation_id() -> str | None:
    """The id of the invocation in progress, if the product set one."""
    return current_correlation_id.get()


def new_correlation_id() -> str:
    """A fresh id for requests made outside any invocation."""
    return str(uuid.uuid4())


@contextmanager
def correlation_scope(correlation_id: str) -> Iterator[str]:
    """Make ``correlation_id`` the id of every ERP request made inside the block."""
    token = current_correlation_id.set(correlation_id)
    try:
        yield correlation_id
    finally:
        current_correlation_id.reset(token)
