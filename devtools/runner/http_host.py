"""The HTTP side of the host: `/<routePrefix>/<route>` for HTTP triggers, `/admin/...` routes.

Status codes follow the host: unknown route 404, known route with another method 405,
missing or wrong key 401, an exception in the function 500 with a generic body (the
traceback goes to the log only). The worker encodes what the function returned; a function
returning None fails there, so it answers 500. No answer within 230 s gives the caller 504.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request

from devtools.runner import wire
from devtools.runner.errors import RunnerError
from devtools.runner.indexing import FunctionSpec, HttpTriggerSpec
from devtools.runner.invoker import InvocationResult, Invoker
from devtools.runner.keys import Keys, presented_key

_log = logging.getLogger("devtools.runner.http")
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"
LANDING = (
    b"<html><body><p>Your Functions app is up and running (devtools.runner).</p></body></html>"
)


class AdminInvokeBody(BaseModel):
    """Body of `POST /admin/functions/{name}`; the host's shape is `{"input": "..."}`."""

    model_config = ConfigDict(extra="ignore")

    input: str = ""


class AdminBackend(Protocol):
    """What the admin routes need from the runner."""

    def describe_functions(self) -> list[dict[str, Any]]: ...

    def host_status(self) -> dict[str, Any]: ...

    def invoke_on_demand(self, spec: FunctionSpec, payload: str) -> None: ...


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


# Whatever functionTimeout says, Azure's front end gives up on an HTTP answer after 230 s.
HTTP_RESPONSE_LIMIT = 230.0
# Kestrel, which fronts the Functions host, refuses request lines over 8 KiB with 414, and
# with 431 more than 100 header fields or more than 32 KiB of them (KestrelServerLimits:
# MaxRequestLineSize, MaxRequestHeaderCount, MaxRequestHeadersTotalSize defaults).
MAX_REQUEST_TARGET = 8192
MAX_HEADER_COUNT = 100
MAX_HEADERS_TOTAL = 32 * 1024


def _json_reply(status: int, document: Any) -> _Reply:
    return _Reply(status, json.dumps(document).encode("utf-8"), (("content-type", JSON),))


def _problem(status: int, title: str, detail: str) -> _Reply:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return _Reply(
        status, json.dumps(body).encode("utf-8"), (("content-type", "application/problem+json"),)
    )


def reply_from_answer(answer: wire.HttpAnswer | None) -> _Reply | None:
    """The worker's HTTP answer as the host sends it, or None when it gave none."""
    if answer is None:
        return None
    return _Reply(answer.status, answer.body, answer.headers)


def _original_url(request: Request) -> str:
    """The URL as the client sent it (still percent-encoded), as the host passes it on."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    url = f"{request.url.scheme}://{request.url.netloc}{raw_path.decode('latin-1')}"
    query = scope.get("query_string") or b""
    return f"{url}?{query.decode('latin-1')}" if query else url


def _headers_over_limits(raw: list[tuple[bytes, bytes]]) -> str | None:
    """Why Kestrel would refuse these header fields, or None when it takes them."""
    if len(raw) > MAX_HEADER_COUNT:
        return f"{len(raw)} header fields; the host takes at most {MAX_HEADER_COUNT}"
    # Each field as it travels on the wire: "name: value" and CRLF.
    total = sum(len(name) + len(value) + 4 for name, value in raw)
    if total > MAX_HEADERS_TOTAL:
        return f"{total} bytes of header fields; the host takes at most {MAX_HEADERS_TOTAL}"
    return None


def _joined_headers(request: Request) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in request.headers.items():
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


class HostHttpApp:
    """An ASGI app standing in for the host's HTTP pipeline."""

    def __init__(
        self,
        *,
        functions: list[FunctionSpec],
        route_prefix: str,
        keys: Keys,
        invoker: Invoker,
        admin: AdminBackend,
    ) -> None:
        self._functions = {f.name.lower(): f for f in functions}
        self._http = sorted(
            (f for f in functions if isinstance(f.trigger, HttpTriggerSpec)),
            key=lambda f: f.trigger.route.precedence,  # type: ignore[union-attr]
        )
        self._prefix = route_prefix.strip("/").lower()
        self._keys = keys
        self._invoker = invoker
        self._admin = admin
        self.response_limit = HTTP_RESPONSE_LIMIT

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            reply = await self._dispatch(request)
        except Exception:
            _log.exception("The runner failed to handle %s %s", request.method, request.url.path)
            reply = _problem(500, "Internal Server Error", "The runner failed; see its log.")
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
        if reply.status not in (204, 304):
            headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _dispatch(self, request: Request) -> _Reply:
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        target_length = len(raw_path) + 1 + len(request.scope.get("query_string") or b"")
        if target_length > MAX_REQUEST_TARGET:
            return _problem(
                414, "URI Too Long", f"the URL is longer than {MAX_REQUEST_TARGET} bytes"
            )
        if (too_large := _headers_over_limits(request.scope["headers"])) is not None:
            return _problem(431, "Request Header Fields Too Large", too_large)
        path = raw_path.decode("latin-1").split("?", 1)[0]
        segments = [s for s in path.split("/") if s]
        if segments and segments[0].lower() == "admin":
            return await self._admin_route(request, [unquote(s) for s in segments[1:]])
        if not segments and request.method.upper() in {"GET", "HEAD"}:
            # Like the host's landing page, so "is it up?" probes of `/` get a 200.
            reply = await self._function_route(request, "") if not self._prefix else _Reply(404)
            return reply if reply.status != 404 else _Reply(200, LANDING, (("content-type", HTML),))
        if self._prefix:
            prefix_parts = self._prefix.split("/")
            if [s.lower() for s in segments[: len(prefix_parts)]] != prefix_parts:
                return _Reply(404)
            segments = segments[len(prefix_parts) :]
        return await self._function_route(request, "/".join(segments))

    async def _function_route(self, request: Request, below_prefix: str) -> _Reply:
        matches: list[tuple[FunctionSpec, dict[str, str]]] = []
        for spec in self._http:
            if spec.disabled:
                continue
            values = spec.trigger.route.match(below_prefix)  # type: ignore[union-attr]
            if values is not None:
                matches.append((spec, values))
        if not matches:
            return _Reply(404)
        method = request.method.upper()
        allowed = [(s, v) for s, v in matches if method in s.trigger.methods]  # type: ignore[union-attr]
        if not allowed:
            methods = sorted({m for s, _ in matches for m in s.trigger.methods})  # type: ignore[union-attr]
            return _Reply(405, headers=(("allow", ", ".join(methods)),))
        spec, route_values = allowed[0]
        trigger = spec.trigger
        assert isinstance(trigger, HttpTriggerSpec)
        headers = _joined_headers(request)
        query = dict(request.query_params)
        if not self._keys.allows(trigger.auth_level, presented_key(headers, query)):
            return _Reply(401)
        trigger_data = wire.http_trigger_data(
            method=method,
            url=_original_url(request),
            headers=headers,
            query=query,
            route_values=route_values,
            body=await request.body(),
        )
        invocation = asyncio.ensure_future(
            self._invoker.invoke(
                spec,
                trigger_data,
                reason=f"This function was programmatically called via the host APIs ({method})",
                trace_parent=headers.get("traceparent"),
            )
        )
        try:
            # shield: like the host, the function goes on running after the caller got 504.
            result: InvocationResult = await asyncio.wait_for(
                asyncio.shield(invocation), self.response_limit
            )
        except TimeoutError:
            _log.error(
                "Function %s did not answer within %.0f s; the caller gets 504",
                spec.name,
                self.response_limit,
            )
            return _problem(
                504,
                "Gateway Timeout",
                f"The function did not answer within {self.response_limit:.0f} seconds.",
            )
        if not result.succeeded:
            return _problem(
                500,
                "Internal Server Error",
                f"The function failed; see the runner log for invocation {result.invocation_id}.",
            )
        reply = reply_from_answer(result.http_answer)
        if reply is None:
            _log.error("Function %s returned no usable HTTP response", spec.name)
            return _problem(
                500, "Internal Server Error", "The function returned no usable response."
            )
        return reply

    async def _admin_route(self, request: Request, rest: list[str]) -> _Reply:
        headers = _joined_headers(request)
        if not self._keys.allows("admin", presented_key(headers, dict(request.query_params))):
            return _Reply(401)
        method = request.method.upper()
        if rest == ["host", "status"]:
            if method != "GET":
                return _Reply(405, headers=(("allow", "GET"),))
            return _json_reply(200, self._admin.host_status())
        if rest == ["functions"]:
            if method != "GET":
                return _Reply(405, headers=(("allow", "GET"),))
            return _json_reply(200, self._admin.describe_functions())
        if len(rest) == 2 and rest[0] == "functions":
            spec = self._functions.get(rest[1].lower())
            if spec is None:
                return _Reply(404)
            if method == "GET":
                described = [d for d in self._admin.describe_functions() if d["name"] == spec.name]
                return _json_reply(200, described[0])
            if method == "POST":
                return await self._invoke_on_demand(request, spec)
            return _Reply(405, headers=(("allow", "GET, POST"),))
        return _Reply(404)

    async def _invoke_on_demand(self, request: Request, spec: FunctionSpec) -> _Reply:
        if isinstance(spec.trigger, HttpTriggerSpec):
            return _problem(400, "Bad Request", f"{spec.name} is an HTTP function; call its route.")
        raw = await request.body()
        try:
            body = AdminInvokeBody.model_validate_json(raw) if raw.strip() else AdminInvokeBody()
        except ValidationError as exc:
            return _problem(
                400, "Bad Request", f'body must be {{"input": "..."}}: {exc.errors()[0]["msg"]}'
            )
        try:
            self._admin.invoke_on_demand(spec, body.input)
        except RunnerError as refused:
            return _problem(400, "Bad Request", str(refused))
        return _Reply(202)
