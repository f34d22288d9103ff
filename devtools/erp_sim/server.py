"""Running the app under uvicorn: in the foreground (the CLI) or in a background thread (tests)."""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.applications import Starlette

from devtools.erp_sim.responses import ResponseLost


class _HideLostResponses(logging.Filter):
    """uvicorn logs an exception when a response breaks off; for a deliberate loss that is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, ResponseLost):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideLostResponses) for f in logger.filters):
        logger.addFilter(_HideLostResponses())


def build_server(
    app: Starlette, host: str, port: int, log_level: str = "warning"
) -> uvicorn.Server:
    install_log_filter()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before serving, so port 0 becomes a real free port we can report."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on such sockets,
    # and without it every response waits ~40 ms on the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
