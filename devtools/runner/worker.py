"""Drive Microsoft's Python worker (`azure-functions-runtime`) the way the host does.

The host starts the worker, sends it a WorkerInitRequest (the worker imports and indexes the
whole app there), a FunctionsMetadataRequest (it answers with every function's metadata and
raw bindings), one FunctionLoadRequest per function and then one InvocationRequest per
invocation. This module sends exactly those requests, in that order, through the package's
public handlers, with the message objects of `worker_messages`. Whatever the worker refuses
fails start-up with the worker's own message, as it leaves the host with no functions on Azure.

The worker lives on a thread of its own with its own event loop, as it lives in a process of
its own beside the host: a function that blocks its loop (for instance while it waits for the
host's settlement service) cannot stall the host's HTTP server or Service Bus receivers.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import azure_functions_runtime as worker_runtime

from devtools.runner import logcontext
from devtools.runner import worker_messages as messages
from devtools.runner.errors import AppIndexError

T = TypeVar("T")
SCRIPT_FILE_SETTING = "PYTHON_SCRIPT_FILE_NAME"
HOST_VERSION = "4.1040.0"


@dataclass(frozen=True)
class IndexedFunction:
    """One function as the worker described it in its metadata answer."""

    name: str
    function_id: str
    bindings: list[dict[str, Any]]


class WorkerRefused(AppIndexError):
    """The worker answered a request with a failure status (its own message is kept)."""


class _WorkerThread:
    """The worker's event loop on its own daemon thread, one per process like the worker."""

    _instance: _WorkerThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="python-worker", daemon=True
        )
        self._thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    @classmethod
    def get(cls) -> _WorkerThread:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self.loop)


def _request(**kind: Any) -> messages.WorkerRequest:
    return messages.WorkerRequest(
        messages.StreamingMessage(**kind), {"host": "127.0.0.1", "protos": messages}
    )


def _failure(result: Any) -> str | None:
    if result is None or result.status == messages.StatusResult.Success:
        return None
    exception = result.exception
    return exception.message if exception is not None else "the worker reported a failure"


class WorkerBridge:
    """The host's side of the conversation with the worker for one app directory."""

    def __init__(self, app_dir: Path, script_file: str) -> None:
        self.app_dir = app_dir
        self.script_file = script_file
        self._thread = _WorkerThread.get()
        self._previous_script_setting: str | None = None
        self._added_path: str | None = None

    async def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(self._thread.submit(work))

    async def start(self) -> list[IndexedFunction]:
        """Init (the worker imports and indexes the app), metadata, then load each function."""
        directory = str(self.app_dir)
        if directory not in sys.path:
            # The worker imports the script from the app root, which the host puts on sys.path.
            sys.path.insert(0, directory)
            self._added_path = directory
        self._previous_script_setting = os.environ.get(SCRIPT_FILE_SETTING)
        os.environ[SCRIPT_FILE_SETTING] = self.script_file
        worker_runtime.start_threadpool_executor()
        init = await self._call(
            worker_runtime.worker_init_request(
                _request(
                    worker_init_request=messages.WorkerInitRequest(
                        host_version=HOST_VERSION,
                        capabilities={},
                        worker_directory=directory,
                        function_app_directory=directory,
                    )
                )
            )
        )
        refused = _failure(init.result)
        if refused is not None:
            raise WorkerRefused(f"the Python worker refused the app: {refused}")
        answer = await self._call(
            worker_runtime.functions_metadata_request(
                _request(
                    functions_metadata_request=messages.FunctionsMetadataRequest(
                        function_app_directory=directory
                    )
                )
            )
        )
        refused = _failure(answer.result)
        if refused is not None:
            raise WorkerRefused(f"the Python worker could not describe the app: {refused}")
        indexed: list[IndexedFunction] = []
        for metadata in answer.function_metadata_results or []:
            loaded = await self._call(
                worker_runtime.function_load_request(
                    _request(
                        function_load_request=messages.FunctionLoadRequest(
                            function_id=metadata.function_id, metadata=metadata
                        )
                    )
                )
            )
            refused = _failure(loaded.result)
            if refused is not None:
                raise WorkerRefused(f"the Python worker could not load {metadata.name}: {refused}")
            indexed.append(
                IndexedFunction(
                    name=metadata.name,
                    function_id=metadata.function_id,
                    bindings=[json.loads(raw) for raw in metadata.raw_bindings],
                )
            )
        if not indexed:
            raise WorkerRefused(
                f"the Python worker found no function in {self.app_dir / self.script_file}"
            )
        return indexed

    def stop(self) -> None:
        """Put the script setting and sys.path back (the worker's thread lives on)."""
        if self._added_path is not None and self._added_path in sys.path:
            sys.path.remove(self._added_path)
        if self._previous_script_setting is None:
            os.environ.pop(SCRIPT_FILE_SETTING, None)
        else:
            os.environ[SCRIPT_FILE_SETTING] = self._previous_script_setting

    async def invoke(
        self,
        *,
        function: IndexedFunction,
        invocation_id: str,
        input_data: list[messages.ParameterBinding],
        trigger_metadata: dict[str, messages.TypedData],
        trace_parent: str,
    ) -> messages.InvocationResponse:
        """One InvocationRequest; the answer carries the status, return value and outputs."""
        request = _request(
            invocation_request=messages.InvocationRequest(
                invocation_id=invocation_id,
                function_id=function.function_id,
                input_data=input_data,
                trigger_metadata=trigger_metadata,
                trace_context=messages.RpcTraceContext(
                    trace_parent=trace_parent, trace_state="", attributes={}
                ),
                retry_context=messages.RetryContext(retry_count=0, max_retry_count=0),
            )
        )
        return await self._call(self._scoped(function.name, invocation_id, request))

    @staticmethod
    async def _scoped(
        name: str, invocation_id: str, request: messages.WorkerRequest
    ) -> messages.InvocationResponse:
        # Log records of the invocation (on the worker's loop) carry its name and id.
        with logcontext.invocation_scope(name, invocation_id):
            response: messages.InvocationResponse = await worker_runtime.invocation_request(request)
            return response


def worker_description() -> dict[str, str]:
    """What `/admin/host/status` reports about the worker."""
    from importlib.metadata import version

    return {
        "package": "azure-functions-runtime",
        "version": version("azure-functions-runtime"),
        "python": platform.python_version(),
    }
