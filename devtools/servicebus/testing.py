"""Start and stop the stand-in from tests: in a subprocess (default) or on a thread in-process.

    from devtools.servicebus.testing import running_standin

    with running_standin() as bus:               # infra/servicebus-topology.json, free port
        client = ServiceBusClient.from_connection_string(bus.connection_string)

A topology can be passed as a parsed config, a dict in the emulator's format, or a file path.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .server import StandinServer, StandinStartError, connection_string
from .topology import EmulatorConfig, load_topology, parse_topology

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOPOLOGY = REPO_ROOT / "infra" / "servicebus-topology.json"

TopologySource = EmulatorConfig | Mapping[str, Any] | str | Path | None


@dataclass(frozen=True)
class StandinHandle:
    """Where a running stand-in listens, and a way to count its messages without consuming them."""

    host: str
    port: int
    admin_url: str | None
    _server: StandinServer | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.port)

    def stats(self) -> dict[str, dict[str, int]]:
        """Counts per queue/subscription (active, locked, scheduled, deferred, deadLettered).

        Refreshed by the broker a few times a second, so poll rather than expect it instantly.
        """
        if self._server is not None:
            return self._server.stats()
        if self.admin_url is None:
            raise RuntimeError("start the stand-in with admin=True to read stats")
        with urllib.request.urlopen(f"{self.admin_url}/stats", timeout=5) as response:
            document = json.loads(response.read())
        entities: dict[str, dict[str, int]] = document["entities"]
        return entities


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind to 0); prefer port 0 on the server where possible."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _as_config(topology: TopologySource) -> EmulatorConfig:
    if topology is None:
        return load_topology(DEFAULT_TOPOLOGY)
    if isinstance(topology, EmulatorConfig):
        return topology
    if isinstance(topology, str | Path):
        return load_topology(topology)
    return parse_topology(dict(topology))


@contextmanager
def running_standin(
    topology: TopologySource = None,
    *,
    in_process: bool = False,
    admin: bool = True,
    host: str = "127.0.0.1",
    startup_timeout: float = 30.0,
    log_file: Path | None = None,
    data_dir: Path | None = None,
) -> Iterator[StandinHandle]:
    """Run the stand-in on a free port for the duration of the ``with`` block.

    ``data_dir`` makes it durable (SQLite there); by default it keeps everything in memory.
    """
    config = _as_config(topology)
    if in_process:
        server = StandinServer(
            config, host=host, port=0, admin_port=0 if admin else None, data_dir=data_dir
        )
        server.start(timeout=startup_timeout)
        try:
            yield StandinHandle(host, server.port, server.admin_url, server)
        finally:
            server.stop()
        return
    with tempfile.TemporaryDirectory(prefix="sb-standin-") as tmp:
        config_path = Path(tmp) / "topology.json"
        config_path.write_text(
            config.model_dump_json(by_alias=True, exclude_none=True), encoding="utf-8"
        )
        admin_port = free_port(host) if admin else None
        process = StandinProcess(
            config_path, host=host, admin_port=admin_port, data_dir=data_dir, log_file=log_file
        )
        try:
            port = process.start(startup_timeout)
            admin_url = f"http://{host}:{admin_port}" if admin_port else None
            yield StandinHandle(host, port, admin_url)
        finally:
            process.stop()


class StandinProcess:
    """The stand-in as a child process that a test can kill and start again.

    The first ``start`` picks a free port; later ones reuse it, so clients keep their
    connection string across a restart (with ``data_dir``, the messages survive it too).
    """

    def __init__(
        self,
        config_path: Path,
        *,
        host: str = "127.0.0.1",
        admin_port: int | None = None,
        data_dir: Path | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.config_path = config_path
        self.host = host
        self.port = 0
        self.admin_port = admin_port
        self.data_dir = data_dir
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.port)

    def start(self, startup_timeout: float = 30.0) -> int:
        command = [
            sys.executable, "-m", "devtools.servicebus", "--host", self.host,
            "--port", str(self.port), "--config", str(self.config_path),
        ]  # fmt: skip
        if self.admin_port is not None:
            command += ["--admin-port", str(self.admin_port)]
        if self.data_dir is not None:
            command += ["--data-dir", str(self.data_dir)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        stderr = open(self.log_file, "ab") if self.log_file is not None else None  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr
            )
        finally:
            if stderr is not None:
                stderr.close()  # the child has its own copy
        self.port = _wait_ready(self._process, startup_timeout)
        return self.port

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the process dies."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._close_pipe()

    def stop(self) -> None:
        if self._process is not None:
            _terminate(self._process)
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()


def _wait_ready(process: subprocess.Popen[bytes], timeout: float) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    buffered = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            buffered += chunk
            for line in buffered.decode(errors="replace").splitlines():
                if line.startswith("READY "):
                    return int(line.split()[1].rsplit(":", 1)[1])
    _terminate(process)
    raise StandinStartError(f"the stand-in did not print READY (exit code {process.returncode})")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout is not None and not process.stdout.closed:
        process.stdout.close()
