"""The storefront catalog webhook and the `/_sim/` control routes, as a Starlette app."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devtools.storefront_sim.faults import Failure, Faults
from devtools.storefront_sim.payload import (
    CatalogBatch,
    FaultsRequest,
    OperationStatus,
    ReceivedQuery,
    operation_count,
)
from devtools.storefront_sim.state import SimulatorOptions, SimulatorState
from shared.domain.content.signing import (
    CHANNEL_HEADER,
    TIMESTAMP_HEADER,
    SignatureExpired,
    SignatureInvalid,
    verify,
)


def create_app(state: SimulatorState | None = None) -> Starlette:
    """A simulator app over `state` (a fresh demo state when None)."""
    app = Starlette(
        routes=[
            Route("/channels/{channel}/catalog/batch", _catalog_batch, methods=["POST"]),
            Route("/channels/{channel}/catalog", _catalog, methods=["GET"]),
            Route("/_sim/received", _received, methods=["GET"]),
            Route("/_sim/reset", _reset, methods=["POST"]),
            Route("/_sim/faults", _set_faults, methods=["POST"]),
            Route("/_sim/faults", _get_faults, methods=["GET"]),
            Route("/_sim/stats", _stats, methods=["GET"]),
        ]
    )
    app.state.sim = state or SimulatorState(SimulatorOptions())
    return app


def _sim(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.sim
    return state


def _error(
    status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status, headers=headers)


def _violations(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors()
    ]


# -- the webhook ---------------------------------------------------------------------------


async def _catalog_batch(request: Request) -> Response:
    state = _sim(request)
    channel = request.path_params["channel"]
    response = await _answer_batch(state, channel, request)
    state.stats.record(channel, response.status_code)
    return response


async def _answer_batch(state: SimulatorState, channel: str, request: Request) -> Response:
    secrets = state.secrets(channel)
    if secrets is None:
        return _error(404, "unknown-channel", f"no storefront channel named {channel!r}")
    # Faults come first: a storefront that is down or throttling answers before reading.
    refusal = await _injected_failure(state, channel)
    if refusal is not None:
        return refusal
    body = await _read_body(request, state.options.max_body_bytes)
    if body is None:
        return _error(413, "body-too-large", f"body exceeds {state.options.max_body_bytes} bytes")
    now = state.now()
    try:
        verify(body, request.headers, secrets, now, state.options.tolerance)
    except SignatureExpired as exc:
        return _error(401, "signature-expired", str(exc))
    except SignatureInvalid as exc:
        return _error(401, "signature-invalid", str(exc))
    named = request.headers.get(CHANNEL_HEADER)
    if named != channel:
        detail = f"{CHANNEL_HEADER} must name the channel {channel!r} (got {named!r})"
        return _error(400, "channel-mismatch", detail)
    timestamp = int(request.headers[TIMESTAMP_HEADER])
    if not state.replays.first_time(channel, timestamp, body, int(now.timestamp())):
        return _error(409, "replayed", "this signed request was already received; sign again")
    return _apply(state, channel, body)


async def _injected_failure(state: SimulatorState, channel: str) -> Response | None:
    faults = state.faults.effective(channel)
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    failure = state.faults.failure(faults)
    if failure is Failure.OUTAGE:
        return _error(503, "outage", "the storefront is unavailable (injected)")
    if failure is Failure.THROTTLED:
        return _error(
            429, "throttled", "too many requests (injected)", headers={"Retry-After": "1"}
        )
    if failure is Failure.ERROR:
        return _error(500, "injected-error", "the storefront failed (injected error rate)")
    return None


async def _read_body(request: Request, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _apply(state: SimulatorState, channel: str, body: bytes) -> Response:
    try:
        document = json.loads(body)
    except ValueError as exc:
        return _error(400, "invalid-json", f"body is not JSON: {exc}")
    count = operation_count(document)
    if count > state.options.max_operations:
        detail = f"{count} operations; at most {state.options.max_operations} per batch"
        return _error(413, "too-many-operations", detail)
    try:
        batch = CatalogBatch.model_validate(document)
    except ValidationError as exc:
        return _error(
            422,
            "invalid-batch",
            "the batch does not match the contract",
            violations=_violations(exc),
        )
    results = state.catalogs.apply(channel, batch, state.now())
    summary = Counter(result.status for result in results)
    return JSONResponse(
        {
            "batchId": batch.batch_id,
            "results": [result.to_json() for result in results],
            "summary": {status.value: summary[status] for status in OperationStatus},
        }
    )


# -- control routes ------------------------------------------------------------------------


async def _catalog(request: Request) -> Response:
    state = _sim(request)
    channel = request.path_params["channel"]
    if state.secrets(channel) is None:
        return _error(404, "unknown-channel", f"no storefront channel named {channel!r}")
    entries = state.catalogs.entries(channel)
    items = {
        sku: {
            "contentHash": entry.content_hash,
            "product": entry.product,
            "updatedAt": entry.updated_at.isoformat(),
        }
        for sku, entry in sorted(entries.items())
    }
    return JSONResponse({"channel": channel, "count": len(items), "items": items})


async def _received(request: Request) -> Response:
    try:
        query = ReceivedQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        return _error(422, "invalid-query", "bad query", violations=_violations(exc))
    items = _sim(request).catalogs.received(query.channel)
    return JSONResponse({"items": [item.to_json() for item in items]})


async def _reset(request: Request) -> Response:
    _sim(request).reset()
    return JSONResponse({"reset": True})


async def _set_faults(request: Request) -> Response:
    state = _sim(request)
    body = await request.body()
    try:
        wanted = FaultsRequest.model_validate_json(body or b"{}")
    except ValidationError as exc:
        return _error(422, "invalid-faults", "bad faults body", violations=_violations(exc))
    if wanted.channel is not None and state.secrets(wanted.channel) is None:
        return _error(404, "unknown-channel", f"no storefront channel named {wanted.channel!r}")
    faults = Faults(wanted.latency_ms, wanted.error_rate, wanted.outage, wanted.throttle)
    state.faults.set(wanted.channel, faults, seed=wanted.seed)
    return JSONResponse(state.faults.to_json())


async def _get_faults(request: Request) -> Response:
    return JSONResponse(_sim(request).faults.to_json())


async def _stats(request: Request) -> Response:
    return JSONResponse(_sim(request).stats.to_json())
