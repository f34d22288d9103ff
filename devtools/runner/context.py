"""The `context` argument a function can declare, shaped like the Python worker's."""

from __future__ import annotations

import re
import secrets
from typing import Any

import azure.functions as func
from azure.functions import _abc as func_abc

from devtools.runner import logcontext

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def new_traceparent() -> str:
    """A fresh W3C traceparent (version 00, sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def traceparent_or_new(candidate: str | None) -> str:
    """The caller's traceparent when it is well formed, else a new one."""
    if candidate and _TRACEPARENT.match(candidate.strip().lower()):
        return candidate.strip().lower()
    return new_traceparent()


class TraceContext(func_abc.TraceContext):
    def __init__(self, trace_parent: str, trace_state: str = "") -> None:
        self._trace_parent = trace_parent
        self._trace_state = trace_state

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def trace_state(self) -> str:
        return self._trace_state

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class RetryContext(func_abc.RetryContext):
    """The runner has no function-level retry policies: always the first attempt."""

    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    def __init__(
        self,
        *,
        invocation_id: str,
        function_name: str,
        function_directory: str,
        trace_context: TraceContext,
    ) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace_context = trace_context
        self._retry_context = RetryContext()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return self._trace_context

    @property
    def retry_context(self) -> RetryContext:
        return self._retry_context

    @property
    def thread_local_storage(self) -> Any:
        return logcontext.thread_local_storage
