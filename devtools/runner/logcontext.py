"""Stamp log records with the function name and invocation id of the current invocation.

The invocation scope lives in a ContextVar, which asyncio tasks inherit and the runner copies
into the worker thread of sync functions; `thread_local_storage.invocation_id` (as on the
real worker) covers threads the function starts itself. A LogRecord factory applies the
stamp, so every record created during an invocation carries `function_name` and
`invocation_id`, whichever logger or handler sees it (pytest's caplog included).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from azure_functions_runtime import invocation_id_cv

NO_VALUE = "-"


@dataclass(frozen=True)
class InvocationScope:
    function_name: str
    invocation_id: str


_current: ContextVar[InvocationScope | None] = ContextVar("runner_invocation", default=None)
# What `context.thread_local_storage` returns: a function sets `.invocation_id` on it in
# threads it starts, as with the real worker, and their records are stamped too.
thread_local_storage = threading.local()
_active: dict[str, InvocationScope] = {}


def current_scope() -> InvocationScope | None:
    """The invocation the calling code runs in, if any."""
    scope = _current.get()
    if scope is None:
        # Sync functions run in the worker's thread pool, which sets its own context variable.
        invocation_id = getattr(thread_local_storage, "invocation_id", None) or (
            invocation_id_cv.get()
        )
        if invocation_id is not None:
            scope = _active.get(invocation_id)
    return scope


@contextlib.contextmanager
def invocation_scope(function_name: str, invocation_id: str) -> Iterator[InvocationScope]:
    scope = InvocationScope(function_name, invocation_id)
    token = _current.set(scope)
    _active[invocation_id] = scope
    try:
        yield scope
    finally:
        _active.pop(invocation_id, None)
        _current.reset(token)


def stamp(record: logging.LogRecord) -> logging.LogRecord:
    """Add the invocation attributes to a record (keeping any already set)."""
    scope = current_scope()
    if getattr(record, "function_name", NO_VALUE) == NO_VALUE:
        record.function_name = scope.function_name if scope else NO_VALUE
    if getattr(record, "invocation_id", NO_VALUE) == NO_VALUE:
        record.invocation_id = scope.invocation_id if scope else NO_VALUE
    return record


class InvocationLogFilter(logging.Filter):
    """For handlers that may also see records created before the factory was installed."""

    def filter(self, record: logging.LogRecord) -> bool:
        stamp(record)
        return True


class InvocationFormatter(logging.Formatter):
    """Shows `[function_name invocation_id]` when a record belongs to an invocation."""

    def format(self, record: logging.LogRecord) -> str:
        stamp(record)
        invocation_id = getattr(record, "invocation_id", NO_VALUE)
        scope = ""
        if invocation_id != NO_VALUE:
            scope = f" [{getattr(record, 'function_name', NO_VALUE)} {invocation_id}]"
        record.invocation_scope = scope
        return super().format(record)


_install_lock = threading.Lock()
_install_count = 0
_previous_factory: Any = None


def install_record_factory() -> None:
    """Install the stamping factory (reference-counted so several runners can share it)."""
    global _install_count, _previous_factory
    with _install_lock:
        if _install_count == 0:
            previous = logging.getLogRecordFactory()
            _previous_factory = previous

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                return stamp(previous(*args, **kwargs))

            logging.setLogRecordFactory(factory)
        _install_count += 1


def uninstall_record_factory() -> None:
    global _install_count, _previous_factory
    with _install_lock:
        if _install_count == 0:
            return
        _install_count -= 1
        if _install_count == 0 and _previous_factory is not None:
            logging.setLogRecordFactory(_previous_factory)
            _previous_factory = None
