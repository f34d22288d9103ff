"""Run one invocation through the Python worker, then deliver its output bindings.

The host side of an invocation: it builds the InvocationRequest (trigger data, trigger
metadata, trace context), hands it to `azure-functions-runtime`, which binds the arguments,
calls the function (sync ones in its thread pool, async ones on its loop) and converts the
results, and then it sends what the output bindings hold, only after a success, as the host
does. A failure while sending fails the invocation.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from devtools.runner import wire
from devtools.runner import worker_messages as messages
from devtools.runner.context import traceparent_or_new
from devtools.runner.indexing import RETURN, FunctionSpec
from devtools.runner.logcontext import invocation_scope
from devtools.runner.outputs import ServiceBusOutputs
from devtools.runner.worker import WorkerBridge

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
    http_answer: wire.HttpAnswer | None
    error: str | None


def _outputs_of(response: messages.InvocationResponse) -> dict[str, messages.TypedData]:
    values = {b.name: b.data for b in response.output_data or [] if b.data is not None}
    if response.return_value is not None:
        values[RETURN] = response.return_value
    return values


class Invoker:
    def __init__(self, *, outputs: ServiceBusOutputs, worker: WorkerBridge) -> None:
        self._outputs = outputs
        self._worker = worker
        self.history: deque[InvocationRecord] = deque(maxlen=HISTORY_LIMIT)
        self._changed = asyncio.Event()

    async def invoke(
        self,
        spec: FunctionSpec,
        trigger_data: messages.TypedData,
        trigger_metadata: dict[str, messages.TypedData] | None = None,
        *,
        reason: str,
        trace_parent: str | None = None,
    ) -> InvocationResult:
        assert spec.indexed is not None
        invocation_id = str(uuid.uuid4())
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        error: str | None = None
        cancelled: asyncio.CancelledError | None = None
        http_answer: wire.HttpAnswer | None = None
        with invocation_scope(spec.name, invocation_id):
            _log.info(
                "Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id
            )
            try:
                response = await self._worker.invoke(
                    function=spec.indexed,
                    invocation_id=invocation_id,
                    input_data=[
                        messages.ParameterBinding(name=spec.trigger_param, data=trigger_data)
                    ],
                    trigger_metadata=trigger_metadata or {},
                    trace_parent=traceparent_or_new(trace_parent),
                )
                result = response.result
                if result is None or result.status != messages.StatusResult.Success:
                    exception = result.exception if result is not None else None
                    error = exception.message if exception is not None else "failed"
                    if exception is not None and exception.stack_trace:
                        _log.error("Function %s failed:\n%s", spec.name, exception.stack_trace)
                else:
                    values = _outputs_of(response)
                    await asyncio.gather(
                        *(
                            self._outputs.send(o, wire.output_bodies(values.get(o.name)))
                            for o in spec.outputs
                        )
                    )
                    if spec.http_output_name is not None:
                        http_answer = wire.http_answer(values.get(spec.http_output_name))
            except asyncio.CancelledError as exc:
                cancelled = exc
                error = "cancelled"
            except Exception as exc:  # delivering the outputs failed: the invocation failed
                error = repr(exc)
                _log.error("Function %s: %r", spec.name, exc)
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
                    "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms): %s",
                    spec.name,
                    invocation_id,
                    duration_ms,
                    error,
                )
        self._record(
            InvocationRecord(
                function_name=spec.name,
                invocation_id=invocation_id,
                reason=reason,
                succeeded=error is None,
                error=error,
                started_at=started_at,
                duration_ms=duration_ms,
            )
        )
        if cancelled is not None:
            raise cancelled
        return InvocationResult(invocation_id, error is None, http_answer, error)

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
        """Nothing to release: the worker's thread pool belongs to the worker."""
