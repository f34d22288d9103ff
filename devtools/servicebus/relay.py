"""The stand-in's listening socket: a TCP relay in front of proton that renumbers deliveries.

Clients connect here; each connection is relayed to proton's acceptor on a loopback port of
its own, frame by frame, through `frames.DeliveryRenumbering` (see there for why). One thread
per direction per connection: the stand-in serves a handful of local clients.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterator

from .frames import DeliveryRenumbering, FrameError

_LOG = logging.getLogger("devtools.servicebus")
_PROTOCOL_HEADER = b"AMQP"
_READ = 65536


def _frames(buffer: bytearray) -> Iterator[bytes]:
    """Complete protocol headers and frames at the front of `buffer`, removed as they go."""
    while True:
        if buffer[:4] == _PROTOCOL_HEADER:
            if len(buffer) < 8:
                return
            yield bytes(buffer[:8])
            del buffer[:8]
            continue
        if len(buffer) < 8:
            return
        size = struct.unpack_from(">I", buffer, 0)[0]
        if size < 8 or len(buffer) < size:
            return
        yield bytes(buffer[:size])
        del buffer[:size]


def _pump(
    source: socket.socket,
    target: socket.socket,
    rewrite: Callable[[bytes], list[bytes]],
) -> None:
    buffer = bytearray()
    try:
        while True:
            data = source.recv(_READ)
            if not data:
                break
            buffer.extend(data)
            out = bytearray()
            for frame in _frames(buffer):
                if frame[:4] == _PROTOCOL_HEADER:
                    out.extend(frame)
                    continue
                try:
                    out.extend(b"".join(rewrite(frame)))
                except (FrameError, IndexError, struct.error):
                    out.extend(frame)  # not ours to understand: pass it on as it came
            if out:
                target.sendall(out)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


class Relay:
    """Listens on (host, port) and relays every connection to proton at `upstream`."""

    def __init__(self, host: str, port: int, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server((host, port), reuse_port=False)
        self.port = int(self._listener.getsockname()[1])
        self._closing = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="servicebus-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                broker = socket.create_connection(self._upstream)
            except OSError as exc:
                _LOG.warning("relay: proton is not reachable: %r", exc)
                client.close()
                continue
            for sock in (client, broker):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, broker))
            state = DeliveryRenumbering()
            threading.Thread(
                target=self._run,
                args=(client, broker, state.inbound_frames),
                daemon=True,
            ).start()
            threading.Thread(
                target=self._run, args=(broker, client, state.outbound), daemon=True
            ).start()

    def _run(
        self,
        source: socket.socket,
        target: socket.socket,
        rewrite: Callable[[bytes], list[bytes]],
    ) -> None:
        try:
            _pump(source, target, rewrite)
        finally:
            with self._lock:
                self._sockets.discard(source)
            with contextlib.suppress(OSError):
                source.close()
