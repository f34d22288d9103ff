"""The keep-alive HTTP/1.1 client of the lean Table client, against a loopback server.

The server is a plain asyncio socket server on a free port that answers with scripted raw
bytes, so each test controls exactly what the wire carries (lengths, chunking, closes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from shared.adapters import http_keepalive
from shared.adapters.http_keepalive import HttpFailure, KeepAliveClient, NotSent

Script = Callable[[int, bytes], bytes | None]
Starter = Callable[["Server"], Awaitable[KeepAliveClient]]


@dataclass
class Server:
    """Answers request number n (over all connections) with ``script(n, request)``;
    None closes the connection without answering."""

    script: Script
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    close_after_answer: bool = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = self.script(len(self.requests), request)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Starter]:
    servers: list[asyncio.Server] = []
    clients: list[KeepAliveClient] = []

    async def start(server: Server) -> KeepAliveClient:
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append(listening)
        port = listening.sockets[0].getsockname()[1]
        client = KeepAliveClient(f"http://127.0.0.1:{port}", timeout=5)
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
    for listening in servers:
        listening.close()
        await listening.wait_closed()


def ok(body: bytes = b"{}", extra: str = "") -> bytes:
    return (
        f'HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nETag: W/"1"\r\n{extra}\r\n'
    ).encode() + body


async def test_answers_are_read_whole_and_the_connection_is_reused(serve: Starter) -> None:
    server = Server(lambda n, _: ok(f'{{"n":{n}}}'.encode()))
    client = await serve(server)
    first = await client.request("PUT", "/t(1)", {"If-Match": "*"}, b'{"a":1}')
    second = await client.request("GET", "/t()?$top=1", {})
    assert (first.status, first.body, first.headers["etag"]) == (200, b'{"n":1}', 'W/"1"')
    assert second.body == b'{"n":2}'
    assert server.connections == 1
    sent = server.requests[0].decode()
    assert sent.startswith("PUT /t(1) HTTP/1.1\r\nHost: 127.0.0.1:")
    assert "\r\nIf-Match: *\r\n" in sent and "\r\nContent-Length: 7\r\n" in sent
    assert sent.endswith('\r\n\r\n{"a":1}')


async def test_a_chunked_answer_is_joined(serve: Starter) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"
    )
    client = await serve(Server(lambda n, _: chunked if n == 1 else ok(b"again")))
    assert (await client.request("GET", "/", {})).body == b"hello, world"
    assert (await client.request("GET", "/", {})).body == b"again"  # stream stayed in step


async def test_a_204_has_no_body_and_keeps_the_connection(serve: Starter) -> None:
    server = Server(lambda n, _: b'HTTP/1.1 204 No Content\r\nETag: W/"2"\r\n\r\n')
    client = await serve(server)
    for _ in range(3):
        answer = await client.request("DELETE", "/t(1)", {"If-Match": "*"})
        assert (answer.status, answer.body) == (204, b"")
    assert server.connections == 1


async def test_an_idle_connection_the_server_closed_is_replaced_transparently(
    serve: Starter,
) -> None:
    server = Server(lambda n, _: ok(), close_after_answer=True)
    client = await serve(server)
    await client.request("GET", "/", {})
    await asyncio.sleep(0.05)  # the server has closed the connection the client keeps
    answer = await client.request("GET", "/", {})
    assert answer.status == 200
    assert server.connections == 2


async def test_connection_close_is_honoured(serve: Starter) -> None:
    server = Server(lambda n, _: ok(extra="Connection: close\r\n"))
    client = await serve(server)
    await client.request("GET", "/", {})
    await client.request("GET", "/", {})
    assert server.connections == 2


async def test_an_answer_cut_off_in_its_body_is_a_failure_not_a_short_body(serve: Starter) -> None:
    cut = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial'
    server = Server(lambda n, _: cut, close_after_answer=True)
    client = await serve(server)
    with pytest.raises(HttpFailure, match="body"):
        await client.request("GET", "/", {})


async def test_a_fresh_connection_closed_without_an_answer_is_a_failure(serve: Starter) -> None:
    server = Server(lambda n, _: None)
    client = await serve(server)
    with pytest.raises(HttpFailure):
        await client.request("POST", "/$batch", {}, b"x")
    assert len(server.requests) == 1  # sent once: a new connection is not retried


async def test_garbage_instead_of_a_status_line_is_a_failure(serve: Starter) -> None:
    client = await serve(Server(lambda n, _: b"SMTP ready\r\n\r\n"))
    with pytest.raises(HttpFailure, match="status line"):
        await client.request("GET", "/", {})


def test_only_http_origins_are_accepted() -> None:
    with pytest.raises(ValueError):
        KeepAliveClient("ftp://127.0.0.1:21")


async def test_a_post_on_an_idle_connection_the_server_closed_is_not_sent_again(
    serve: Starter,
) -> None:
    """The server may have applied a POST whose connection closed before the answer (RFC 9112,
    section 9.3.1: no automatic retry of a non-idempotent request); the caller decides."""
    server = Server(lambda n, _: ok(), close_after_answer=True)
    client = await serve(server)
    await client.request("GET", "/", {})
    await asyncio.sleep(0.05)  # the server has closed the connection the client keeps
    with pytest.raises(HttpFailure) as failed:
        await client.request("POST", "/t", {}, b'{"a":1}')
    assert not isinstance(failed.value, NotSent)
    assert server.connections == 1  # no second connection carried the POST


async def test_a_connection_idle_too_long_is_closed_rather_than_reused(
    serve: Starter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_keepalive, "_IDLE_SECONDS", 0.02)
    server = Server(lambda n, _: ok())
    client = await serve(server)
    await client.request("POST", "/t", {}, b"{}")
    await client.request("POST", "/t", {}, b"{}")  # at once: the same connection
    await asyncio.sleep(0.05)
    await client.request("POST", "/t", {}, b"{}")
    assert server.connections == 2


async def test_a_refused_connection_is_not_sent() -> None:
    listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    listening.close()
    await listening.wait_closed()
    client = KeepAliveClient(f"http://127.0.0.1:{port}", timeout=5)
    with pytest.raises(NotSent):
        await client.request("POST", "/t", {}, b"{}")
