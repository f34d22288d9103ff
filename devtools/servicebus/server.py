"""Runs the broker: a proton Container on its own thread, plus an optional HTTP stats endpoint."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from proton import Event
from proton.reactor import ApplicationEvent, Container, EventInjector, Handler

from .broker import BrokerHandler
from .journal import Journal
from .relay import Relay
from .store import Namespace
from .topology import EmulatorConfig

_LOG = logging.getLogger("devtools.servicebus")

TICK_SECONDS = 0.05
STATS_EVERY_TICKS = 5
_STOP_EVENT = "standin_stop"


class StandinStartError(RuntimeError):
    """The broker could not listen (port taken, bad host) or did not come up in time."""


def connection_string(host: str, port: int) -> str:
    """The connection string the real client uses for the emulator (plain TCP, given port)."""
    return (
        f"Endpoint=sb://{host}:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
    )


class _ReactorHandler(Handler):
    """Container-level events: the periodic tick and the cross-thread stop request."""

    def __init__(self, server: StandinServer) -> None:
        super().__init__()
        self._server = server

    def on_timer_task(self, event: Event) -> None:
        self._server._on_tick()

    def on_standin_stop(self, event: Event) -> None:
        self._server._on_stop()


class StandinServer:
    """The local Service Bus stand-in. ``start()`` returns once it listens; ``stop()`` ends it."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 5672,
        admin_port: int | None = None,
        clock: Callable[[], float] | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        """``data_dir``: keep messages there (SQLite) across restarts; None keeps them in memory."""
        self.host = host
        self.port = port
        self._admin_requested_port = admin_port
        journal = Journal(data_dir) if data_dir is not None else None
        self.namespace = Namespace(config, clock or time.time, journal=journal)
        self.broker = BrokerHandler(self.namespace)
        self._reactor_handler = _ReactorHandler(self)
        self._injector = EventInjector()
        self._acceptor: Any = None
        self._relay: Relay | None = None
        self._container: Container | None = None
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._stopped = threading.Event()
        self._stopping = False
        self._start_error: BaseException | None = None
        self._ticks = 0
        self._stats: dict[str, dict[str, int]] = {}
        self._admin: ThreadingHTTPServer | None = None
        self.admin_port: int | None = None

    # -- public API -----------------------------------------------------------------------

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.port)

    @property
    def admin_url(self) -> str | None:
        return f"http://{self.host}:{self.admin_port}" if self.admin_port else None

    def stats(self) -> dict[str, dict[str, int]]:
        """Message counts per entity, refreshed a few times a second by the broker thread."""
        return dict(self._stats)

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="servicebus-standin", daemon=True)
        self._thread.start()
        if not self._listening.wait(timeout):
            raise StandinStartError("the Service Bus stand-in did not start listening in time")
        if self._start_error is not None:
            raise StandinStartError(
                f"cannot listen on {self.host}:{self.port}: {self._start_error}"
            ) from self._start_error
        if self._admin_requested_port is not None:
            self._start_admin(self._admin_requested_port)

    def stop(self, timeout: float = 10.0) -> None:
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        if self._admin is not None:
            self._admin.shutdown()
            self._admin.server_close()
            self._admin = None
        if self._thread is None or not self._thread.is_alive():
            return
        self._injector.trigger(ApplicationEvent(_STOP_EVENT))
        self._thread.join(timeout)
        if self._thread.is_alive():
            _LOG.warning("the broker thread did not stop within %.1f s", timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the broker thread ends; True if it has."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> StandinServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- reactor thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            # Container-level events (timer, stop) go to the reactor handler; everything on
            # accepted connections goes to the broker, the acceptor's handler.
            container = Container(self._reactor_handler)
            self._container = container
            container.container_id = "servicebus-standin"
            container.selectable(self._injector)
            # Proton listens on a loopback port of its own; clients reach it through the relay,
            # which renumbers the delivery ids proton would refuse (see frames.py).
            # Container.acceptor (not listen) so that port 0 means "any free port".
            self._acceptor = container.acceptor("127.0.0.1", "0", self.broker)
            upstream = _bound_port(self._acceptor, 0)
            self._relay = Relay(self.host, self.port, ("127.0.0.1", upstream))
            self.port = self._relay.port
            self._relay.start()
        except BaseException as exc:
            self._start_error = exc
            self._listening.set()
            self._stopped.set()
            return
        container.schedule(TICK_SECONDS, self._reactor_handler)
        self._listening.set()
        _LOG.info("Service Bus stand-in listening on %s:%s", self.host, self.port)
        try:
            container.run()
        except Exception:
            _LOG.exception("the broker reactor stopped with an error")
        finally:
            self._stopped.set()

    def _on_tick(self) -> None:
        assert self._container is not None
        self.broker.tick()
        self._ticks += 1
        if self._ticks % STATS_EVERY_TICKS == 0:
            try:
                self._stats = self.namespace.counts()
            except Exception:
                _LOG.exception("cannot count messages")
        if not self._stopping:
            self._container.schedule(TICK_SECONDS, self._reactor_handler)

    def _on_stop(self) -> None:
        assert self._container is not None
        _LOG.info("Service Bus stand-in stopping")
        self._stopping = True
        if self._acceptor is not None:
            self._acceptor.close()
        self.broker.close_all()
        try:
            self.namespace.close()
        except Exception:
            _LOG.exception("cannot close the message store")
        self._injector.close()
        self._container.stop()

    # -- admin HTTP -----------------------------------------------------------------------

    def _start_admin(self, port: int) -> None:
        server = self

        class _StatsHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("/stats", ""):
                    body = json.dumps(
                        {"namespace": server.namespace.name, "entities": server.stats()}
                    ).encode()
                    self.send_response(200)
                elif self.path == "/health":
                    body = b'{"status": "ok"}'
                    self.send_response(200)
                else:
                    body = b'{"error": "not found"}'
                    self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                _LOG.debug("admin: " + format, *args)

        self._admin = ThreadingHTTPServer((self.host, port), _StatsHandler)
        self.admin_port = int(self._admin.server_address[1])
        threading.Thread(
            target=self._admin.serve_forever, name="servicebus-standin-admin", daemon=True
        ).start()


def _bound_port(acceptor: Any, requested: int) -> int:
    # proton exposes the listening socket only through the acceptor's selectable; it is needed
    # to report the real port when 0 ("any free port") was requested.
    try:
        return int(acceptor._selectable.getsockname()[1])
    except (AttributeError, OSError, IndexError):
        return requested
