"""Start the simulator for a test on a free port and hand back its base URL.

`storefront_simulator()` serves it in a thread of the test process (fast, no start-up
cost); `storefront_simulator_process()` runs `python -m devtools.storefront_sim --port 0`
as a child process, as the local stack does, and reads the port from its READY line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from devtools.storefront_sim.app import create_app
from devtools.storefront_sim.server import SimulatorServer
from devtools.storefront_sim.state import SimulatorOptions, SimulatorState

_ROOT = Path(__file__).resolve().parents[2]


class SimulatorStartFailed(RuntimeError):
    """The simulator did not report READY in time."""


@contextlib.contextmanager
def storefront_simulator(options: SimulatorOptions | None = None) -> Iterator[str]:
    """Serve a fresh simulator in a background thread; yields `http://127.0.0.1:PORT`."""
    runner = _ThreadedSimulator(SimulatorState(options))
    url = runner.start()
    try:
        yield url
    finally:
        runner.stop()


@contextlib.contextmanager
def storefront_simulator_process(
    channel_specs: Iterable[str] = (), extra_args: Iterable[str] = ()
) -> Iterator[str]:
    """Run the simulator as a child process; yields its base URL, stops it by PID."""
    process = SimulatorProcess(channel_specs, extra_args)
    url = process.start()
    try:
        yield url
    finally:
        process.stop()


class _ThreadedSimulator:
    def __init__(self, state: SimulatorState) -> None:
        self._server = SimulatorServer(create_app(state), "127.0.0.1", 0)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="storefront-sim", daemon=True)

    def start(self, timeout: float = 30) -> str:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise SimulatorStartFailed(f"no READY within {timeout}s")
        if self._error is not None:
            self._thread.join()
            raise SimulatorStartFailed(str(self._error)) from self._error
        return self._server.url

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            await self._server.start()
        except Exception as exc:  # handed to the test thread, which raises it
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopping.wait()
        await self._server.stop()


class SimulatorProcess:
    """`python -m devtools.storefront_sim` as a child process on a port the OS picks."""

    def __init__(self, channel_specs: Iterable[str] = (), extra_args: Iterable[str] = ()) -> None:
        self._argv = [sys.executable, "-m", "devtools.storefront_sim", "--host", "127.0.0.1"]
        self._argv += ["--port", "0"]
        for spec in channel_specs:
            self._argv += ["--channel", spec]
        self._argv += list(extra_args)
        self._popen: subprocess.Popen[bytes] | None = None
        # Closed in stop(): the child writes to it for as long as it runs.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    def start(self, timeout: float = 30) -> str:
        """Start and wait for the READY line; returns the URL it names."""
        self._popen = subprocess.Popen(
            self._argv,
            cwd=_ROOT,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        try:
            return self._await_ready(self._popen, timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(5)
        if popen.stdout is not None:
            popen.stdout.close()
        self._stderr.close()
        return popen.returncode

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit on its own (after a signal); returns the exit code."""
        if self._popen is None:
            raise SimulatorStartFailed("the simulator was never started")
        return self._popen.wait(timeout)

    def stderr_text(self) -> str:
        if self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def _await_ready(self, popen: subprocess.Popen[bytes], timeout: float) -> str:
        assert popen.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(popen.stdout, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if selector.select(remaining):
                    line = popen.stdout.readline().decode(errors="replace").strip()
                    if line.startswith("READY "):
                        return line.removeprefix("READY ")
                    if not line and popen.poll() is not None:
                        break
        raise SimulatorStartFailed(
            f"storefront simulator gave no READY line (exit {popen.poll()}):\n{self.stderr_text()}"
        )
