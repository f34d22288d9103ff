"""Serving the simulator with uvicorn on a socket it binds itself, so port 0 works."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.applications import Starlette


class ServerDidNotStart(RuntimeError):
    """uvicorn stopped before it started serving."""


class _ServerWithoutSignals(uvicorn.Server):
    # Whoever runs the server owns signals; uvicorn would re-raise them after a clean exit.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield


class SimulatorServer:
    """One simulator app listening on `host:port` (`port=0` lets the OS pick)."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 8788) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServerDidNotStart("the simulator has not started")
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and
        # without it every keep-alive response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self._server = _ServerWithoutSignals(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self.stop()
                raise ServerDidNotStart("uvicorn exited during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._task = None
        self._socket = None
