"""Trace context for invocations: the caller's W3C traceparent, or a new one."""

from __future__ import annotations

import re
import secrets

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def new_traceparent() -> str:
    """A fresh W3C traceparent (version 00, sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def traceparent_or_new(candidate: str | None) -> str:
    """The caller's traceparent when it is well formed, else a new one."""
    if candidate and _TRACEPARENT.match(candidate.strip().lower()):
        return candidate.strip().lower()
    return new_traceparent()
