"""The runner: settings, app indexing, HTTP server, timers and Service Bus listeners together.

Usable in-process (`async with Runner(RunnerOptions(...)) as runner:`) or through
`python -m devtools.runner`. Stopping lets in-flight invocations finish for a grace period,
abandons Service Bus messages whose invocation did not, and closes every receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import uvicorn

from devtools.runner import logcontext, wire
from devtools.runner.errors import AppLoadError, RunnerError, SettingsError
from devtools.runner.host_config import HostConfig, load_host_config
from devtools.runner.http_host import HostHttpApp
from devtools.runner.indexing import (
    FunctionSpec,
    HttpTriggerSpec,
    ServiceBusTriggerSpec,
    TimerTriggerSpec,
    index_app,
)
from devtools.runner.invoker import InvocationRecord, Invoker
from devtools.runner.keys import ADMIN_KEY_SETTING, FUNCTION_KEY_SETTING, Keys
from devtools.runner.outputs import ServiceBusOutputs
from devtools.runner.sb_clients import ConnectionSettingMissing, resolve_connection
from devtools.runner.sb_listener import ServiceBusListener
from devtools.runner.settings import apply_settings, default_settings_path, read_settings_file
from devtools.runner.settlement import SettlementService
from devtools.runner.timers import TimerListener, TimerStatusStore
from devtools.runner.worker import WorkerBridge, worker_description

_log = logging.getLogger("devtools.runner")
RUNNER_VERSION = "4.x-local-runner"


@dataclass(frozen=True)
class RunnerOptions:
    """How to run an app. `port=0` picks a free port (see `Runner.url` once started)."""

    app: str = "function_app:app"
    host: str = "127.0.0.1"
    port: int = 7071
    app_dir: Path | None = None
    settings_path: Path | None = None
    use_settings_file: bool = True
    host_json_path: Path | None = None
    shutdown_grace: float = 10.0
    fresh_import: bool = True
    servicebus_poll_seconds: float = 1.0
    http_response_limit: float = 230.0
    # Where monitored timers keep their schedule status across restarts (None: in memory).
    timer_status_dir: Path | None = None


def parse_target(target: str) -> tuple[str, str]:
    """Split `function_app:app` into module and attribute names."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise AppLoadError(f"--app must look like 'module:attribute', got {target!r}")
    return module_name, attr


class _ServerWithoutSignals(uvicorn.Server):
    # The CLI (or the test) owns signal handling; uvicorn would re-raise signals after exit.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield


class Runner:
    """One function app served locally."""

    def __init__(self, options: RunnerOptions | None = None) -> None:
        self.options = options or RunnerOptions()
        self.app_dir = (self.options.app_dir or Path.cwd()).resolve()
        self.module: ModuleType | None = None
        self.app: func.FunctionApp | None = None
        self.functions: list[FunctionSpec] = []
        self.host_config = HostConfig()
        self.settings_path: Path | None = None
        self._added_settings: list[str] = []
        self._invoker: Invoker | None = None
        self._worker: WorkerBridge | None = None
        self._outputs: ServiceBusOutputs | None = None
        self._server: uvicorn.Server | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._timers: dict[str, TimerListener] = {}
        self._listeners: dict[str, ServiceBusListener] = {}
        self._listener_errors: dict[str, str] = {}
        self._on_demand: set[asyncio.Task[None]] = set()
        self._started_at = time.monotonic()
        self._factory_installed = False
        self.port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Runner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self.port is None:
            raise RunnerError("the runner has not started")
        return f"http://{self.options.host}:{self.port}"

    async def start(self) -> None:
        """Load settings, import and index the app, then start serving every trigger."""
        try:
            self._load_settings()
            self.host_config = load_host_config(
                self.options.host_json_path or self.app_dir / "host.json"
            )
            logcontext.install_record_factory()
            self._factory_installed = True
            await self._load_app()
            self._log_index()
            self._outputs = ServiceBusOutputs()
            assert self._worker is not None
            self._invoker = Invoker(outputs=self._outputs, worker=self._worker)
            await self._start_http()
            self._start_timers()
            self._start_listeners()
        except BaseException:
            await self.stop()
            raise
        _log.info("Host started: %d function(s) at %s", len(self.functions), self.url)

    async def stop(self) -> None:
        """Stop triggers, let in-flight work finish for the grace period, close everything."""
        grace = self.options.shutdown_grace
        stops: list[Any] = [t.stop(grace) for t in self._timers.values()]
        stops += [listener.stop(grace) for listener in self._listeners.values()]
        if self._server is not None:
            self._server.should_exit = True
        if stops:
            await asyncio.gather(*stops, return_exceptions=True)
        if self._on_demand:
            _, pending = await asyncio.wait(set(self._on_demand), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server_task is not None:
            await asyncio.gather(self._server_task, return_exceptions=True)
        self._timers.clear()
        self._listeners.clear()
        self._server = None
        self._server_task = None
        if self._outputs is not None:
            await self._outputs.close()
            self._outputs = None
        if self._invoker is not None:
            self._invoker.close()
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._factory_installed:
            logcontext.uninstall_record_factory()
            self._factory_installed = False
        for name in self._added_settings:
            os.environ.pop(name, None)
        self._added_settings = []

    # -- start-up steps --------------------------------------------------------------------

    def _load_settings(self) -> None:
        if not self.options.use_settings_file:
            return
        path = self.options.settings_path
        if path is not None:
            path = path if path.is_absolute() else self.app_dir / path
            if not path.is_file():
                raise SettingsError(f"settings file {path} does not exist")
        else:
            path = default_settings_path(self.app_dir)
        if path is None:
            _log.info("No settings file in %s; using the environment only", self.app_dir)
            return
        self.settings_path = path
        self._added_settings = apply_settings(read_settings_file(path))
        _log.info("Loaded settings from %s (%d new)", path, len(self._added_settings))

    async def _load_app(self) -> None:
        """Have the worker import, index and load the app, then apply the host's rules."""
        module_name, attr = parse_target(self.options.app)
        if "." in module_name:
            raise AppLoadError(
                f"the worker loads a script file from the app directory; {module_name!r} is "
                "a dotted module name (use --app-dir and the file's name)"
            )
        if not (self.app_dir / f"{module_name}.py").is_file():
            raise AppLoadError(f"{self.app_dir / (module_name + '.py')} does not exist")
        if self.options.fresh_import:
            sys.modules.pop(module_name, None)
        # The settlement service and the worker's command line exist before the worker starts.
        SettlementService.get()
        self._worker = WorkerBridge(self.app_dir, f"{module_name}.py")
        indexed = await self._worker.start()
        self.module = sys.modules.get(module_name)
        app = getattr(self.module, attr, None) if self.module is not None else None
        if not isinstance(app, func.FunctionApp):
            raise AppLoadError(f"{self.options.app} is not an azure.functions.FunctionApp")
        self.app = app
        self.functions = index_app(indexed)

    def _log_index(self) -> None:
        keys = Keys.from_environ()
        if keys.function_key is None or keys.admin_key is None:
            _log.warning(
                "%s / %s not set: requests to function- and admin-level routes get 401",
                FUNCTION_KEY_SETTING,
                ADMIN_KEY_SETTING,
            )
        for spec in self.functions:
            state = " (disabled)" if spec.disabled else ""
            _log.info("Function %s: %s%s", spec.name, self._describe_trigger(spec), state)

    def _describe_trigger(self, spec: FunctionSpec) -> str:
        trigger = spec.trigger
        if isinstance(trigger, HttpTriggerSpec):
            methods = ",".join(sorted(trigger.methods))
            prefix = f"/{self.host_config.route_prefix}" if self.host_config.route_prefix else ""
            return (
                f"[{methods}] {prefix}/{trigger.route.template.strip('/')} ({trigger.auth_level})"
            )
        if isinstance(trigger, TimerTriggerSpec):
            return f"timer '{trigger.schedule.expression}'"
        assert isinstance(trigger, ServiceBusTriggerSpec)
        return f"serviceBus {trigger.entity}" + (" (batch)" if trigger.many else "")

    async def _start_http(self) -> None:
        assert self._invoker is not None
        http_app = HostHttpApp(
            functions=self.functions,
            route_prefix=self.host_config.route_prefix,
            keys=Keys.from_environ(),
            invoker=self._invoker,
            admin=self,
        )
        http_app.response_limit = self.options.http_response_limit
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.options.host, self.options.port))
        except OSError as exc:
            sock.close()
            raise RunnerError(
                f"cannot listen on {self.options.host}:{self.options.port}: {exc}"
            ) from exc
        sock.listen(128)
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            http_app,
            lifespan="off",
            log_config=None,
            access_log=False,
            # Long URLs and headers must reach the app, which answers 414 and 431 as the host
            # does, not a dropped line.
            h11_max_incomplete_event_size=128 * 1024,
            timeout_graceful_shutdown=max(1, int(self.options.shutdown_grace)),
        )
        self._server = _ServerWithoutSignals(config)
        self._server_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._server_task.done():
                await self._server_task
                raise RunnerError("the HTTP server stopped while starting")
            await asyncio.sleep(0.01)

    def _start_timers(self) -> None:
        assert self._invoker is not None
        for spec in self.functions:
            if isinstance(spec.trigger, TimerTriggerSpec):
                store_dir = self.options.timer_status_dir
                listener = TimerListener(
                    spec,
                    self._invoker,
                    status_store=TimerStatusStore(store_dir) if store_dir else None,
                )
                self._timers[spec.name] = listener
                if not spec.disabled:
                    listener.start()

    def _start_listeners(self) -> None:
        assert self._invoker is not None
        for spec in self.functions:
            if not isinstance(spec.trigger, ServiceBusTriggerSpec) or spec.disabled:
                continue
            try:
                resolve_connection(spec.trigger.connection, os.environ)
            except ConnectionSettingMissing as exc:
                # As on the host: this function is in error, the others still run.
                self._listener_errors[spec.name] = str(exc)
                _log.error("Function %s will not listen: %s", spec.name, exc)
                continue
            listener = ServiceBusListener(
                spec,
                self.host_config.service_bus,
                self._invoker,
                poll_seconds=self.options.servicebus_poll_seconds,
            )
            self._listeners[spec.name] = listener
            listener.start()

    # -- admin backend ---------------------------------------------------------------------

    def describe_functions(self) -> list[dict[str, Any]]:
        described = []
        for spec in self.functions:
            entry: dict[str, Any] = {
                "name": spec.name,
                "triggerType": spec.trigger_type,
                "bindings": spec.bindings,
                "config": {"bindings": spec.bindings},
                "isDisabled": spec.disabled,
                "language": "python",
                "href": f"{self.url}/admin/functions/{spec.name}",
            }
            trigger = spec.trigger
            if isinstance(trigger, HttpTriggerSpec):
                prefix = (
                    f"/{self.host_config.route_prefix}" if self.host_config.route_prefix else ""
                )
                entry["invoke_url_template"] = (
                    f"{self.url}{prefix}/{trigger.route.template.strip('/')}"
                )
                entry["methods"] = sorted(trigger.methods)
                entry["authLevel"] = trigger.auth_level
            elif isinstance(trigger, TimerTriggerSpec):
                timer = self._timers.get(spec.name)
                entry["schedule"] = trigger.schedule.expression
                entry["lastRun"] = timer.last_run.isoformat() if timer and timer.last_run else None
                entry["nextRun"] = timer.next_run.isoformat() if timer and timer.next_run else None
            elif isinstance(trigger, ServiceBusTriggerSpec):
                listener = self._listeners.get(spec.name)
                entry["entity"] = trigger.entity
                entry["cardinality"] = "many" if trigger.many else "one"
                entry["listener"] = {
                    "state": "error"
                    if spec.name in self._listener_errors
                    else (listener.state if listener else "stopped"),
                    "error": self._listener_errors.get(spec.name)
                    or (listener.last_error if listener else None),
                    "maxConcurrentCalls": listener.max_concurrent if listener else None,
                    "autoCompleteMessages": listener.auto_complete if listener else None,
                }
            described.append(entry)
        return described

    def host_status(self) -> dict[str, Any]:
        return {
            "id": f"local-runner-{os.getpid()}",
            "state": "Running",
            "version": RUNNER_VERSION,
            "versionDetails": "devtools.runner (stands in for Azure Functions Core Tools)",
            "processUptime": int((time.monotonic() - self._started_at) * 1000),
            "functions": len(self.functions),
            "worker": worker_description(),
            "errors": sorted(self._listener_errors.values()),
        }

    def invoke_on_demand(self, spec: FunctionSpec, payload: str) -> None:
        """Run a non-HTTP function now, in the background (the host answers 202 at once)."""
        assert self._invoker is not None
        reason = "This function was programmatically called via the host APIs."
        work: Any
        if isinstance(spec.trigger, TimerTriggerSpec):
            timer = self._timers[spec.name]
            work = timer.run_once(reason=reason)
        elif isinstance(spec.trigger, ServiceBusTriggerSpec):
            if spec.sdk_type_trigger:
                raise RunnerError(
                    f"{spec.name} takes ServiceBusReceivedMessage, which needs a locked message: "
                    "send one to its entity instead"
                )
            data, metadata = wire.synthetic_trigger_data(payload, many=spec.trigger.many)
            work = self._invoker.invoke(spec, data, metadata, reason=reason)
        else:
            raise RunnerError(f"{spec.name} cannot be run on demand")
        task = asyncio.create_task(self._quietly(work))
        self._on_demand.add(task)
        task.add_done_callback(self._on_demand.discard)

    @staticmethod
    async def _quietly(work: Any) -> None:
        # The invoker already logged any failure; nobody awaits an on-demand run's result.
        with contextlib.suppress(Exception):
            await work

    # -- observation (tests, tooling) --------------------------------------------------------

    @property
    def invocations(self) -> list[InvocationRecord]:
        """Finished invocations, oldest first."""
        return list(self._invoker.history) if self._invoker else []

    async def wait_for_invocations(
        self,
        function_name: str,
        count: int = 1,
        *,
        timeout: float = 10.0,
        where: Callable[[InvocationRecord], bool] | None = None,
    ) -> list[InvocationRecord]:
        """Wait until `count` invocations of a function finished; raise TimeoutError if not."""
        assert self._invoker is not None
        deadline = time.monotonic() + timeout
        while True:
            found = self._matching(self.invocations, function_name, where)
            if len(found) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{function_name}: {len(found)} of {count} invocation(s) after {timeout}s"
                )
            await self._invoker.wait_for_change(remaining)

    @staticmethod
    def _matching(
        records: Iterable[InvocationRecord],
        function_name: str,
        where: Callable[[InvocationRecord], bool] | None,
    ) -> list[InvocationRecord]:
        return [
            r for r in records if r.function_name == function_name and (where is None or where(r))
        ]
