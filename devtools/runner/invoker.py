"""Run one invocation the way the Python worker does.

Sync functions run in a thread pool (PYTHON_THREADPOOL_THREAD_COUNT, as on the worker),
async ones on the event loop. Arguments are matched by parameter name: the trigger, each
output binding (an `Out`), and `context` when declared. Outputs are sent only after the
function returned; a failure while sending fails the invocation.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devtools.runner.context import InvocationContext, TraceContext, traceparent_or_new
from devtools.runner.indexing import RETURN, FunctionSpec
from devtools.runner.logcontext import invocation_scope
from devtools.runner.outputs import OutValue, ServiceBusOutputs

_log = logging.getLogger("devtools.runner.invocations")
HISTORY_LIMIT = 10_000


@dataclass(frozen=True)
class InvocationRecord:
    """One finished invocation, kept for `Runner.invocations` and tests."""

    function_name: str
    invocation_id: str
    reason: str
    succeeded: bool
    error: str | None
    started_at: datetime
    duration_ms: float


@dataclass(frozen=True)
class InvocationResult:
    invocation_id: str
    succeeded: bool
    http_response: Any
    error: BaseException | None


def _thread_count() -> int | None:
    raw = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


class Invoker:
    def __init__(self, *, outputs: ServiceBusOutputs, function_directory: str) -> None:
        self._outputs = outputs
        self._function_directory = function_directory
        self._executor = ThreadPoolExecutor(
            max_workers=_thread_count(), thread_name_prefix="runner-worker"
        )
        self.history: deque[InvocationRecord] = deque(maxlen=HISTORY_LIMIT)
        self._changed = asyncio.Event()

    async def invoke(
        self,
        spec: FunctionSpec,
        trigger_value: Any,
        *,
        reason: str,
        trace_parent: str | None = None,
    ) -> InvocationResult:
        invocation_id = str(uuid.uuid4())
        outs: dict[str, OutValue[Any]] = {
            name: OutValue()
            for name in (*(o.name for o in spec.outputs), spec.http_output_name)
            if name is not None and name != RETURN and name in spec.parameters
        }
        kwargs: dict[str, Any] = {spec.trigger_param: trigger_value, **outs}
        if spec.wants_context:
            kwargs["context"] = InvocationContext(
                invocation_id=invocation_id,
                function_name=spec.name,
                function_directory=self._function_directory,
                trace_context=TraceContext(traceparent_or_new(trace_parent)),
            )
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        error: BaseException | None = None
        http_response: Any = None
        with invocation_scope(spec.name, invocation_id):
            _log.info(
                "Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id
            )
            try:
                returned = await self._call(spec.user_function, spec.is_async, kwargs)
                await asyncio.gather(
                    *(
                        self._outputs.send(o, self._output_value(o.name, returned, outs))
                        for o in spec.outputs
                    )
                )
                if spec.http_output_name == RETURN or spec.http_output_name is None:
                    http_response = returned
                elif spec.http_output_name in outs:
                    http_response = outs[spec.http_output_name].get()
            except Exception as exc:  # any failure of user code is an outcome
                error = exc
            except asyncio.CancelledError as exc:
                error = exc
            duration_ms = (time.perf_counter() - started) * 1000
            if error is None:
                _log.info(
                    "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)",
                    spec.name,
                    invocation_id,
                    duration_ms,
                )
            else:
                _log.error(
                    "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms): %r",
                    spec.name,
                    invocation_id,
                    duration_ms,
                    error,
                    exc_info=None if isinstance(error, asyncio.CancelledError) else error,
                )
        self._record(
            InvocationRecord(
                function_name=spec.name,
                invocation_id=invocation_id,
                reason=reason,
                succeeded=error is None,
                error=None if error is None else repr(error),
                started_at=started_at,
                duration_ms=duration_ms,
            )
        )
        if isinstance(error, asyncio.CancelledError):
            raise error
        return InvocationResult(invocation_id, error is None, http_response, error)

    @staticmethod
    def _output_value(name: str, returned: Any, outs: dict[str, OutValue[Any]]) -> Any:
        if name == RETURN:
            return returned
        return outs[name].get() if name in outs else None

    async def _call(
        self, function: Callable[..., Any], is_async: bool, kwargs: dict[str, Any]
    ) -> Any:
        if is_async:
            return await function(**kwargs)
        loop = asyncio.get_running_loop()
        # A copy of the current context carries the invocation scope into the worker thread.
        context = contextvars.copy_context()
        return await loop.run_in_executor(
            self._executor, functools.partial(context.run, functools.partial(function, **kwargs))
        )

    def _record(self, record: InvocationRecord) -> None:
        self.history.append(record)
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_change(self, timeout: float) -> None:
        """Return when an invocation finishes, or after `timeout` seconds."""
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return

    def close(self) -> None:
        # Threads of abandoned sync invocations cannot be interrupted; do not wait for them.
        self._executor.shutdown(wait=False, cancel_futures=True)
