"""What every HTTP trigger shares: body parsing, problem+json errors, the correlation id.

Trigger modules stay thin: they call ``parse_body``/``parse_query`` with a pydantic model, call
the service, and return ``json_response``. Bad input becomes a 4xx problem document naming the
field; nothing about a request can turn into a 500 here.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from functools import wraps
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from functions.tracing import http_span
from shared.domain.json_input import DEFAULT_LIMITS, JsonRejected, read_json
from shared.observability.correlation import correlation_scope
from shared.observability.spans import record_http_status
from shared.services.errors import Conflict, NotFound, Rejected, ServiceError, Unavailable
from shared.services.http_contract import WireModel, problem_body

MAX_BODY_BYTES = 256 * 1024
CORRELATION_HEADER = "x-correlation-id"
_log = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


class HttpProblem(Exception):
    """An RFC 9457 problem to return instead of a result."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        violations: list[dict[str, Any]] | None = None,
        problem_type: str = "about:blank",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.violations = violations
        self.problem_type = problem_type
        self.headers = dict(headers or {})


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    """A JSON answer; Decimals are written as decimal strings, never floats."""
    if isinstance(body, WireModel):
        text = body.wire_json()
    elif isinstance(body, BaseModel):
        text = body.model_dump_json(by_alias=True)
    else:
        text = json.dumps(body, default=_json_default, separators=(",", ":"))
    return func.HttpResponse(
        text, status_code=status, mimetype="application/json", headers=dict(headers or {})
    )


def model_response(
    model: type[WireModel],
    body: Mapping[str, Any],
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> func.HttpResponse:
    """A JSON answer built through its response model, so the documented schema is what is sent."""
    return json_response(model.model_validate(body), status, headers)


def problem_response(problem: HttpProblem) -> func.HttpResponse:
    body: dict[str, Any] = {
        "type": problem.problem_type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.violations is not None:
        body["violations"] = problem.violations
    return func.HttpResponse(
        problem_body(body),
        status_code=problem.status,
        mimetype="application/problem+json",
        headers=problem.headers,
    )


def problem_of(error: ServiceError) -> HttpProblem:
    """The one mapping of the services' error kinds to problem+json (status and headers)."""
    if isinstance(error, NotFound):
        return HttpProblem(404, error.title, error.detail)
    if isinstance(error, Conflict):
        seconds = error.retry_after_seconds
        headers = None if seconds is None else _retry_after(seconds)
        return HttpProblem(409, error.title, error.detail, headers=headers)
    if isinstance(error, Unavailable):
        headers = _retry_after(error.retry_after_seconds)
        return HttpProblem(503, error.title, error.detail, headers=headers)
    if isinstance(error, Rejected):
        return HttpProblem(422, error.title, error.detail, violations=error.violations)
    raise TypeError(f"no HTTP form for {type(error).__name__}")  # a fifth kind needs one


def _retry_after(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def violations_from(error: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors as contract violations: the field path and what is wrong with it."""
    return [
        {"rule": "invalid-field", "field": _location(item["loc"]), "detail": item["msg"]}
        for item in error.errors(include_url=False)
    ]


def parse_body(req: func.HttpRequest, model: type[Model]) -> Model:
    """Validate a JSON request body against ``model``; raise ``HttpProblem`` (4xx) otherwise."""
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HttpProblem(415, "Unsupported media type", "send the body as application/json")
    return validate(read_body(req, MAX_BODY_BYTES), model)


_JSON_TITLES = {
    "too-large": "Body too large",
    "too-deep": "JSON nested too deeply",
    "number-too-long": "Number too long",
    "duplicate-key": "Duplicate key in JSON",
    "invalid-utf8": "Body is not UTF-8",
    "invalid-unicode": "Invalid Unicode in JSON",
    "invalid-json": "Malformed JSON",
}


def read_body(req: func.HttpRequest, max_bytes: int) -> Any:
    """The JSON body, read within the limits of ``shared.domain.json_input``; a body that breaks
    one is a 4xx naming it (413 for size, 400 otherwise), never a 500."""
    try:
        return read_json(req.get_body() or b"", replace(DEFAULT_LIMITS, max_bytes=max_bytes))
    except JsonRejected as refused:
        status = 413 if refused.reason == "too-large" else 400
        raise HttpProblem(
            status, _JSON_TITLES.get(refused.reason, "Malformed JSON"), refused.detail
        ) from None


def parse_query(req: func.HttpRequest, model: type[Model]) -> Model:
    """Validate query parameters (and route parameters) against ``model``."""
    data: dict[str, Any] = {**dict(req.params), **dict(req.route_params)}
    return validate(data, model)


def validate(data: Any, model: type[Model]) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise HttpProblem(
            422,
            "Invalid request",
            "the request breaks the contract",
            violations=violations_from(error),
        ) from None


def correlation_id_of(req: func.HttpRequest) -> str:
    """The caller's correlation id when it sent a sane one, else a new one."""
    given = (req.headers.get(CORRELATION_HEADER) or "").strip()
    if given and len(given) <= 128 and given.isprintable():
        return given
    return str(uuid.uuid4())


def http_endpoint(handler: Handler) -> Handler:
    """Wrap a trigger: correlation id in and out, problems mapped, unexpected errors logged.

    An unexpected exception is answered 500 with no internals; every expected failure is raised
    as ``HttpProblem`` by the handler or the helpers above, or as a service error kind
    (``shared.services.errors``), mapped by ``problem_of``.
    """

    @wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        correlation_id = correlation_id_of(req)
        with correlation_scope(correlation_id), http_span(req, correlation_id) as span:
            try:
                response = await handler(req)
            except HttpProblem as problem:
                response = problem_response(problem)
            except ServiceError as error:
                response = problem_response(problem_of(error))
            except Exception as error:
                _log.exception("unhandled error in %s", handler.__name__)
                span.record_exception(error)
                response = problem_response(
                    HttpProblem(500, "Internal error", f"correlation id {correlation_id}")
                )
            record_http_status(span, response.status_code)
        response.headers[CORRELATION_HEADER] = correlation_id
        return response

    return wrapper
