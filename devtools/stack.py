"""Start and stop the local stack: Azurite, the Service Bus stand-in, the simulators, the runner.

``python -m devtools.stack run`` is what ``make run`` calls: the default ports of the product
docs, demo data, URLs printed, Ctrl-C stops everything it started. The test suite uses
``LocalStack`` with free ports instead, so tests never collide with a running dev stack.
Every process is started in its own session and stopped by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
TOPOLOGY = ROOT / "infra" / "servicebus-topology.json"
AZURITE_TABLE = ROOT / "node_modules" / ".bin" / "azurite-table"
AZURITE_BLOB = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's documented, public development account (not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# Timers run once at `make run` so the demo has data at once instead of after a schedule.
# Webhook subscriptions too, so the connectivity audit passes on a fresh stack.
WARM_UP_FUNCTIONS = (
    "price_publish_full",
    "stock_reconcile",
    "content_sync_full",
    "erp_subscriptions",
)
LOCAL_FUNCTION_KEY = "local-function-key"
LOCAL_ADMIN_KEY = "local-admin-key"


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class StackPorts:
    """Where each part listens; defaults are the product's documented local stack."""

    runner: int = 7071
    tables: int = 10002
    servicebus: int = 5672
    erp: int = 8787
    storefront: int = 8788
    blobs: int = 10000

    @classmethod
    def free(cls) -> StackPorts:
        return cls(free_port(), free_port(), free_port(), free_port(), free_port(), free_port())


def storage_connection_string(port: int, blob_port: int | None = None) -> str:
    """Azurite's account; with ``blob_port`` its Blob service too (price snapshot blobs)."""
    blobs = f"BlobEndpoint=http://127.0.0.1:{blob_port}/{AZURITE_ACCOUNT};" if blob_port else ""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};{blobs}"
    )


def servicebus_connection_string(port: int) -> str:
    return (
        f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
    )


class StackError(RuntimeError):
    """A part of the local stack did not start."""


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class LocalStack:
    """The local stack's processes, started in dependency order and stopped in reverse."""

    ports: StackPorts = field(default_factory=StackPorts)
    erp_items: int = 200
    erp_customers: int = 50
    erp_seed: int = 42
    log_dir: Path = RUN_DIR
    # Monitored timers keep their schedule status here across restarts (useMonitor); None
    # keeps it in memory (test stacks: a stale file must not start a past-due run).
    timer_status_dir: Path | None = None
    _processes: list[_Process] = field(default_factory=list)

    def settings(self) -> dict[str, str]:
        """App settings pointing the function app at this stack."""
        return {
            "APP_ENV": "local",
            "AzureWebJobsStorage": storage_connection_string(
                self.ports.tables, self.ports.blobs if self.is_running("azurite-blob") else None
            ),
            "ServiceBusConnection": servicebus_connection_string(self.ports.servicebus),
            "ERP_BASE_URL": f"http://127.0.0.1:{self.ports.erp}",
            "STOREFRONT_BASE_URL": f"http://127.0.0.1:{self.ports.storefront}",
            # Business Central (the simulator) calls the runner's webhook route back.
            "ERP_WEBHOOK_URL": f"http://127.0.0.1:{self.ports.runner}/api/erp/notifications",
            "LOCAL_FUNCTION_KEY": os.environ.get("LOCAL_FUNCTION_KEY", LOCAL_FUNCTION_KEY),
            "LOCAL_ADMIN_KEY": os.environ.get("LOCAL_ADMIN_KEY", LOCAL_ADMIN_KEY),
        }

    def start_tables(self) -> None:
        if not AZURITE_TABLE.exists():
            raise StackError("Azurite is not installed: run `npm ci` (make setup does it)")
        self._spawn(
            "azurite",
            [
                str(AZURITE_TABLE),
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--silent",
                "--skipApiVersionCheck",
                "--loose",
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(self.ports.tables),
            ],
            self.ports.tables,
        )

    def start_blobs(self) -> None:
        """Azurite's Blob service (the price snapshot blobs), in memory like the tables."""
        if not AZURITE_BLOB.exists():
            raise StackError("Azurite is not installed: run `npm ci` (make setup does it)")
        self._spawn(
            "azurite-blob",
            [
                str(AZURITE_BLOB),
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--silent",
                "--skipApiVersionCheck",
                "--loose",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.ports.blobs),
            ],
            self.ports.blobs,
        )

    def start_servicebus(self) -> None:
        self._spawn(
            "servicebus",
            self._python("devtools.servicebus", self.ports.servicebus, "--config", str(TOPOLOGY)),
            self.ports.servicebus,
        )

    def start_erp(self, timeout: float = 60) -> None:
        self._spawn(
            "erp-sim",
            self._python(
                "devtools.erp_sim",
                self.ports.erp,
                "--seed",
                str(self.erp_seed),
                "--items",
                str(self.erp_items),
                "--customers",
                str(self.erp_customers),
            ),
            self.ports.erp,
            timeout=timeout,
        )

    def start_storefront(self) -> None:
        self._spawn(
            "storefront-sim",
            self._python("devtools.storefront_sim", self.ports.storefront),
            self.ports.storefront,
        )

    def start_runner(self, extra_env: dict[str, str] | None = None) -> None:
        env = {**self.settings(), **(extra_env or {})}
        self._spawn(
            "runner",
            self._python(
                "devtools.runner",
                self.ports.runner,
                "--app",
                "function_app:app",
                *(
                    ("--timer-status-dir", str(self.timer_status_dir))
                    if self.timer_status_dir
                    else ()
                ),
            ),
            self.ports.runner,
            env=env,
            timeout=60,
        )

    def start_all(self) -> None:
        """Everything the product needs, in dependency order."""
        self.start_tables()
        self.start_blobs()
        self.start_servicebus()
        self.start_erp()
        self.start_storefront()
        self.start_runner()

    def warm_up(self, functions: tuple[str, ...] = WARM_UP_FUNCTIONS) -> list[str]:
        """Run the timers that fill the demo data (prices, ...) once, through the admin route.

        Returns the names started; the runner answers 202 and runs them in the background.
        """
        admin = {"x-functions-key": self.settings()["LOCAL_ADMIN_KEY"]}
        base = f"http://127.0.0.1:{self.ports.runner}/admin/functions"
        listed = httpx.get(base, headers=admin, timeout=10).json()
        names = {f.get("name") for f in listed} if isinstance(listed, list) else set(listed)
        started = []
        for name in functions:
            if name in names:
                httpx.post(f"{base}/{name}", json={"input": ""}, headers=admin, timeout=10)
                started.append(name)
        return started

    def stop(self) -> None:
        """Stop every started process by PID, newest first; escalate to SIGKILL if needed."""
        for process in reversed(self._processes):
            _terminate(process.popen)
        self._processes.clear()

    def pid(self, name: str) -> int:
        """The process id of a started part (benchmarks read its CPU time)."""
        for process in self._processes:
            if process.name == name:
                return process.popen.pid
        raise StackError(f"{name} was not started")

    def is_running(self, name: str) -> bool:
        return any(p.name == name and p.popen.poll() is None for p in self._processes)

    def log_tail(self, name: str, lines: int = 40) -> str:
        for process in self._processes:
            if process.name == name:
                return _tail(process.log_path, lines)
        return ""

    def _python(self, module: str, port: int, *args: str) -> list[str]:
        return [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), *args]

    def _spawn(
        self,
        name: str,
        argv: list[str],
        port: int,
        env: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}-{port}.log"
        log = log_path.open("wb")
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        log.close()
        self._processes.append(_Process(name, popen, log_path))
        _wait_for_port(name, popen, port, log_path, timeout)

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_for_port(
    name: str, popen: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise StackError(f"{name} exited with {popen.returncode}:\n{_tail(log_path)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    _terminate(popen)
    raise StackError(f"{name} did not listen on 127.0.0.1:{port} in {timeout}s:\n{_tail(log_path)}")


def _terminate(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        popen.send_signal(signal.SIGTERM)
    try:
        popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            popen.kill()
        popen.wait(timeout=5)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def running(stack: LocalStack) -> Iterator[LocalStack]:
    """Start the whole stack and stop it afterwards, whatever happens in between."""
    try:
        stack.start_all()
        yield stack
    finally:
        stack.stop()


def _run(args: argparse.Namespace) -> int:
    stack = LocalStack(
        erp_items=args.items,
        erp_customers=args.customers,
        erp_seed=args.seed,
        timer_status_dir=RUN_DIR / "timers",
    )
    stopping = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        stack.start_all()
    except StackError as error:
        print(f"local stack failed to start: {error}", file=sys.stderr)
        stack.stop()
        return 1
    warmed = stack.warm_up()
    keys = stack.settings()
    ports = stack.ports
    print(
        "\nLocal stack is up (Ctrl-C stops everything):\n"
        f"  Function app     http://127.0.0.1:{ports.runner}/api/health\n"
        f"  Admin routes     http://127.0.0.1:{ports.runner}/admin/functions"
        f"   (x-functions-key: {keys['LOCAL_ADMIN_KEY']})\n"
        f"  Function key     {keys['LOCAL_FUNCTION_KEY']}\n"
        f"  Operations page  http://127.0.0.1:{ports.runner}/api/ops/dashboard"
        f"?code={keys['LOCAL_ADMIN_KEY']}\n"
        f"  Azurite tables   http://127.0.0.1:{ports.tables}/{AZURITE_ACCOUNT}\n"
        f"  Service Bus      127.0.0.1:{ports.servicebus} (UseDevelopmentEmulator=true)\n"
        f"  ERP simulator    http://127.0.0.1:{ports.erp}/_sim/stats\n"
        f"  Storefront sim   http://127.0.0.1:{ports.storefront}/_sim/received\n"
        f"  Logs             {stack.log_dir}\n"
        f"  Demo data        started: {', '.join(warmed) or 'nothing'}\n",
        flush=True,
    )
    try:
        while not stopping:
            for process in stack._processes:
                if process.popen.poll() is not None:
                    print(f"{process.name} stopped unexpectedly:\n{_tail(process.log_path)}")
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping the local stack ...", flush=True)
        stack.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the local stack with demo data")
    run.add_argument("--items", type=int, default=200)
    run.add_argument("--customers", type=int, default=50)
    run.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
