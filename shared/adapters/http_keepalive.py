"""A minimal HTTP/1.1 client over pooled keep-alive connections, for the lean Table client.

Why not aiohttp: a Table request costs the stock handler a few tenths of a millisecond of
CPU in aiohttp's request machinery (URL and header models, tracing signals, payload
writers, the response parser's bookkeeping), as much as the rest of the handler's work per
event. Table storage needs little of it: one origin, requests with a known length, answers
with ``Content-Length`` or chunked bodies. This client writes the request in one buffer and
reads the answer with asyncio streams, reusing connections (TLS for https endpoints).

Safety: a connection idle for longer than ``_IDLE_SECONDS`` is closed rather than reused
(servers drop idle connections: Azurite after 5 s, Azure's front ends after minutes), so a
request rarely meets a connection the server has just closed. If it does, before a single
byte of the answer came back, an idempotent request is sent once more on a new connection
(RFC 9112, section 9.3.1); a POST is not: the server may have applied it, so the caller gets
`HttpFailure`. A failure to connect is `NotSent`: nothing reached the server, whatever the
method. Any other failure is raised to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

# Connections kept open per client when idle, and for how long at most.
_MAX_IDLE = 64
_IDLE_SECONDS = 4.0
# Methods whose repetition changes nothing more (a conditional one answers 412 the second time).
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "MERGE", "OPTIONS"})
_LINE_LIMIT = 64 * 1024


class HttpFailure(ConnectionError):
    """The exchange broke off (connection lost, malformed answer, time-out); the server may
    have received the request."""


class NotSent(HttpFailure):
    """No connection could be made: the request reached nobody and may be sent again."""


@dataclass(frozen=True)
class Answer:
    """Status, headers (names in lower case) and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_Idle = tuple[_Connection, float]  # the connection and when it was last released


class KeepAliveClient:
    """Requests to one origin (``http://host:port`` or ``https://host``) over reused sockets."""

    def __init__(self, origin: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        default_port = (parts.port is None) or parts.port == (443 if self._tls else 80)
        self._host_header = self._host if default_port else f"{self._host}:{self._port}"
        self._timeout = timeout
        self._idle: list[_Idle] = []
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self._tls else None

    async def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Answer:
        """Send one request (``target`` = encoded path and query) and read the whole answer."""
        head = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if body or method in ("POST", "PUT", "MERGE", "PATCH"):
            head.append(f"Content-Length: {len(body)}")
        message = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        async with asyncio.timeout(self._timeout):
            while connection := self._reusable():
                try:
                    return await self._exchange(connection, message, method)
                except _ClosedBeforeAnswer as error:
                    if method not in _IDEMPOTENT:
                        raise HttpFailure("the connection closed before an answer came") from error
                    # The server had closed this idle connection: try another.
            connection = await self._open()
            try:
                return await self._exchange(connection, message, method)
            except _ClosedBeforeAnswer as error:
                raise HttpFailure("the connection closed before an answer came") from error

    def _reusable(self) -> _Connection | None:
        """The most recently released idle connection still young enough; older ones closed."""
        now = time.monotonic()
        while self._idle:
            connection, released = self._idle.pop()
            if now - released < _IDLE_SECONDS:
                return connection
            connection[1].close()
        return None

    async def _open(self) -> _Connection:
        try:
            return await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._tls else None,
                limit=_LINE_LIMIT,
            )
        except OSError as error:
            raise NotSent(f"cannot connect to {self._host}:{self._port}: {error}") from error

    async def _exchange(self, connection: _Connection, message: bytes, method: str) -> Answer:
        reader, writer = connection
        keep = False
        try:
            try:
                writer.write(message)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as error:
                if not error.partial:
                    raise _ClosedBeforeAnswer from error
                raise HttpFailure("the answer broke off in its head") from error
            except (ConnectionError, BrokenPipeError) as error:
                raise _ClosedBeforeAnswer from error
            except asyncio.LimitOverrunError as error:
                raise HttpFailure("the answer's head is too long") from error
            status, headers = _parse_head(head)
            try:
                body = await _read_body(reader, status, headers, method)
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                raise HttpFailure("the answer broke off in its body") from error
            keep = headers.get("connection", "").lower() != "close" and (
                "content-length" in headers
                or "chunked" in headers.get("transfer-encoding", "")
                or status in (204, 304)
                or method == "HEAD"
            )
            return Answer(status, headers, body)
        finally:
            if keep and len(self._idle) < _MAX_IDLE:
                self._idle.append((connection, time.monotonic()))
            else:
                writer.close()

    async def close(self) -> None:
        writers = [writer for (_, writer), _ in self._idle]
        self._idle = []
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


class _ClosedBeforeAnswer(Exception):
    """Nothing of the answer arrived: the request may be sent again on another connection."""


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpFailure(f"not an HTTP/1.1 status line: {lines[0][:100]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise HttpFailure(f"malformed header line: {line[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _read_body(
    reader: asyncio.StreamReader, status: int, headers: Mapping[str, str], method: str
) -> bytes:
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailer fields, if any
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    return await reader.read()  # delimited by the end of the connection
