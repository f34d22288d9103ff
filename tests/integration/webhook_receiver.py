"""A tiny notification receiver on a free loopback port, for tests that subscribe for real.

It answers Business Central's validation handshake (``?validationToken=`` echoed as text) and
records every notification body it gets, so a test can see what the simulator sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    handshakes: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 202  # what notifications are answered with


@contextmanager
def running_receiver() -> Iterator[tuple[str, Received]]:
    """Yield (notification URL, what it received)."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if "validationToken" in query:
                received.handshakes += 1
                body = query["validationToken"][0].encode()
                self.send_response(200)
                self.send_header("content-type", "text/plain")
            else:
                received.bodies.append(json.loads(raw))
                body = b""
                self.send_response(received.status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/erp/notifications", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
