"""The OpenAPI 3.1 contract, generated from what the host indexes plus each route's declaration.

Routes, methods and auth levels come from ``function_app.app.get_functions()`` (what the host
serves); summaries, parameters, bodies and answers come from ``@documented`` next to each route
decorator, and every schema from the pydantic models the handlers use. Nothing is written by
hand, so the document cannot drift from the code; ``docs/openapi.json`` is its committed copy
(``make openapi`` or ``python -m functions.openapi > docs/openapi.json`` regenerates it).
"""

from __future__ import annotations

import functools
import json
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import azure.functions as func
from azure.functions.decorators.http import HttpTrigger
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from functions.http import MAX_BODY_BYTES, http_endpoint
from shared.services.http_contract import Problem

API_TITLE = "Commerce sync API"
API_VERSION = "1.0.0"
DOC_ATTRIBUTE = "__openapi__"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
TEXT = "text/plain"
_REF_TEMPLATE = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{([^}:?]+)[^}]*\}")

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class Reply:
    """One documented answer: a model (or a literal schema) and its media type."""

    description: str
    model: type[BaseModel] | None = None
    media_type: str = JSON
    schema: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiDoc:
    """What a route declares about itself beyond what the host knows."""

    summary: str
    tag: str
    replies: Mapping[int, Reply]
    description: str = ""
    body: type[BaseModel] | None = None
    body_required: bool = True
    body_bytes: int = MAX_BODY_BYTES
    params: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    # parse_body refuses other media types (415); the ERP webhook reads any body as JSON.
    json_only: bool = True


# What a route without a declaration is published as: present, but promising nothing.
_UNDOCUMENTED = ApiDoc(summary="(undocumented)", tag="undocumented", replies={})


def problem(description: str, **headers: str) -> Reply:
    """An answer that is an RFC 9457 problem document."""
    return Reply(description, Problem, PROBLEM_JSON, headers=headers)


def documented(
    summary: str,
    *,
    tag: str,
    replies: Mapping[int, Reply],
    description: str = "",
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    body_bytes: int = MAX_BODY_BYTES,
    params: type[BaseModel] | None = None,
    headers: type[BaseModel] | None = None,
    json_only: bool = True,
) -> Callable[[Handler], Handler]:
    """Attach the route's contract to its handler (goes right below ``@bp.route``)."""
    doc = ApiDoc(
        summary=summary,
        tag=tag,
        replies=replies,
        description=description,
        body=body,
        body_required=body_required,
        body_bytes=body_bytes,
        params=params,
        headers=headers,
        json_only=json_only,
    )

    def attach(handler: Handler) -> Handler:
        setattr(handler, DOC_ATTRIBUTE, doc)
        return handler

    return attach


@dataclass(frozen=True)
class HttpFunction:
    """One HTTP function as the host indexes it."""

    name: str
    route: str
    methods: tuple[str, ...]
    auth_level: Literal["ANONYMOUS", "FUNCTION", "ADMIN"]
    doc: ApiDoc | None


_index_lock = threading.Lock()


def http_functions(app: func.FunctionApp) -> list[HttpFunction]:
    """Every HTTP-triggered function of ``app`` with its route, methods and auth level."""
    with _index_lock:
        # get_functions() remembers names from an earlier indexing (the host's, in this
        # process) and would report every function as a duplicate; start from a clean slate.
        app.functions_bindings = None  # type: ignore[attr-defined]
        indexed = app.get_functions()
    found = []
    for function in indexed:
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        methods = tuple(sorted(str(getattr(m, "value", m)).upper() for m in trigger.methods or ()))
        level = str(getattr(trigger.auth_level, "value", trigger.auth_level)).upper()
        found.append(
            HttpFunction(
                name=function.get_function_name(),
                route=str(trigger.route or function.get_function_name()),
                methods=methods,
                auth_level=level,  # type: ignore[arg-type]
                doc=getattr(function.get_user_function(), DOC_ATTRIBUTE, None),
            )
        )
    return found


def _clean(schema: Any) -> Any:
    """Drop pydantic's generated titles: they add noise, not meaning, to a published contract."""
    if isinstance(schema, dict):
        return {
            key: _clean(value)
            for key, value in schema.items()
            if not (key == "title" and isinstance(value, str))
        }
    if isinstance(schema, list):
        return [_clean(item) for item in schema]
    return schema


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter is absent, never null: keep only the non-null branch of ``X | None``."""
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            schema = {**kept[0], **rest}
    if schema.get("default", 0) is None:
        schema = {k: v for k, v in schema.items() if k != "default"}
    return schema


class _Schemas:
    """Collects every model's schema once, with ``$defs`` moved into components/schemas."""

    def __init__(self) -> None:
        self._wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []

    def want(self, model: type[BaseModel], mode: JsonSchemaMode) -> None:
        if (model, mode) not in self._wanted:
            self._wanted.append((model, mode))

    def build(self) -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], Any], dict[str, Any]]:
        refs, top = models_json_schema(self._wanted, ref_template=_REF_TEMPLATE)
        components = {name: _clean(schema) for name, schema in top.get("$defs", {}).items()}
        return {key: _clean(value) for key, value in refs.items()}, dict(sorted(components.items()))


def _parameters(
    function: HttpFunction, doc: ApiDoc, components: dict[str, Any]
) -> list[dict[str, Any]]:
    path_names = _PATH_PARAM.findall(function.route)
    found: list[dict[str, Any]] = []
    for model, location in ((doc.params, "query"), (doc.headers, "header")):
        if model is None:
            continue
        schema = model.model_json_schema(mode="validation", ref_template=_REF_TEMPLATE)
        components.update(_clean(schema.get("$defs", {})))
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            where = "path" if location == "query" and name in path_names else location
            prop = _without_null(_clean(prop))
            description = prop.pop("description", None)
            parameter: dict[str, Any] = {
                "name": name,
                "in": where,
                "required": where == "path" or name in required,
            }
            if description:
                parameter["description"] = description
            if prop.get("type") == "array" and where == "query":
                parameter.update(style="form", explode=False)
            parameter["schema"] = prop
            found.append(parameter)
    declared = {p["name"] for p in found if p["in"] == "path"}
    for name in path_names:
        if name not in declared:
            found.append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            )
    return found


_CORRELATION = {
    "x-correlation-id": {
        "description": "The request's x-correlation-id when it sent a sane one, else a new one.",
        "schema": {"type": "string", "maxLength": 128},
    }
}


def _content(reply: Reply, refs: Mapping[tuple[type[BaseModel], JsonSchemaMode], Any]) -> Any:
    if reply.model is not None:
        schema = refs[(reply.model, "serialization")]
    elif reply.schema is not None:
        schema = dict(reply.schema)
    else:
        return None
    return {reply.media_type: {"schema": schema}}


def _replies(function: HttpFunction, doc: ApiDoc) -> dict[int, Reply]:
    """The route's own answers plus those every route shares (http.py, the host)."""
    replies = dict(doc.replies)
    if doc.body is not None:
        replies.setdefault(400, problem("The body is not JSON."))
        replies.setdefault(413, problem(f"The body is larger than {doc.body_bytes} bytes."))
        if doc.json_only:
            replies.setdefault(415, problem("The body is not sent as application/json."))
    if doc.body is not None or doc.params is not None or doc.headers is not None:
        replies.setdefault(422, problem("The request breaks the contract (see violations)."))
    replies.setdefault(500, problem("Unexpected failure; the detail names the correlation id."))
    return dict(sorted(replies.items()))


def _operation(
    function: HttpFunction,
    doc: ApiDoc,
    method: str,
    refs: Mapping[tuple[type[BaseModel], JsonSchemaMode], Any],
    components: dict[str, Any],
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": function.name if len(function.methods) == 1 else f"{function.name}_{method}",
        "summary": doc.summary,
        "tags": [doc.tag],
    }
    if doc.description:
        operation["description"] = doc.description
    parameters = _parameters(function, doc, components)
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        operation["requestBody"] = {
            "required": doc.body_required,
            "description": f"JSON, at most {doc.body_bytes} bytes.",
            "content": {JSON: {"schema": refs[(doc.body, "validation")]}},
        }
    responses: dict[str, Any] = {}
    for status, reply in _replies(function, doc).items():
        answer: dict[str, Any] = {"description": reply.description}
        headers = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in reply.headers.items()
        }
        answer["headers"] = {**_CORRELATION, **headers}
        content = _content(reply, refs)
        if content is not None:
            answer["content"] = content
        responses[str(status)] = answer
    if function.auth_level != "ANONYMOUS":
        # The host refuses a missing or wrong key before the function runs: no body at all.
        responses["401"] = {"description": "No key, or not a key of the required level."}
        operation["security"] = [{f"{_scheme(function)}": []}, {f"{_scheme(function)}Query": []}]
    else:
        operation["security"] = []
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _scheme(function: HttpFunction) -> str:
    return "adminKey" if function.auth_level == "ADMIN" else "functionKey"


_SECURITY_SCHEMES = {
    "functionKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": "A function key (storefront routes); the admin key works as well.",
    },
    "functionKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "code",
        "description": "A function key as the `code` query parameter.",
    },
    "adminKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": "The host's admin (master) key: operations routes under /api/ops.",
    },
    "adminKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "code",
        "description": "The admin key as the `code` query parameter.",
    },
}


def build_document(app: func.FunctionApp) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every HTTP function of ``app``.

    A route without ``@documented`` still appears (with only the answers every route shares),
    so the served document never fails; tests/unit/test_openapi.py refuses such a route.
    """
    functions = sorted(http_functions(app), key=lambda f: (f.route, f.name))
    schemas = _Schemas()
    schemas.want(Problem, "serialization")
    for function in functions:
        doc = function.doc or _UNDOCUMENTED
        if doc.body is not None:
            schemas.want(doc.body, "validation")
        for reply in doc.replies.values():
            if reply.model is not None:
                schemas.want(reply.model, "serialization")
    refs, components = schemas.build()
    paths: dict[str, dict[str, Any]] = {}
    for function in functions:
        path = "/" + _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", function.route)
        for method in function.methods:
            paths.setdefault(path, {})[method.lower()] = _operation(
                function, function.doc or _UNDOCUMENTED, method, refs, components
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": API_TITLE,
            "version": API_VERSION,
            "description": (
                "Prices, credit, availability and orders for storefronts (function key), "
                "operations routes (admin key), health and the Business Central webhook "
                "(anonymous). Money is a decimal string, never a float; errors are "
                "application/problem+json (RFC 9457). Send x-correlation-id to have it echoed."
            ),
        },
        "servers": [{"url": "/api"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": _SECURITY_SCHEMES,
        },
    }


def render(document: Mapping[str, Any]) -> str:
    """The document as committed in docs/openapi.json (stable formatting, trailing newline)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


_served: func.FunctionApp | None = None


def serve(app: func.FunctionApp) -> None:
    """Document ``app``: called by ``function_app`` once every blueprint is registered, so this
    module never imports the app (which imports this module)."""
    global _served
    _served = app
    app_document_text.cache_clear()


@functools.cache
def app_document_text() -> str:
    """The rendered document of the served app (built once per process)."""
    if _served is None:
        raise RuntimeError("no app to document: function_app calls openapi.serve(app)")
    return render(build_document(_served))


bp = func.Blueprint()


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@documented(
    "This API's OpenAPI 3.1 document",
    tag="contract",
    description="Generated from the functions the host serves; holds no keys or settings.",
    replies={
        200: Reply(
            "The OpenAPI document.",
            schema={"type": "object", "required": ["openapi", "paths"]},
        )
    },
)
@http_endpoint
async def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(app_document_text(), status_code=200, mimetype=JSON)


def main(app: func.FunctionApp) -> int:
    """``python -m functions.openapi``: print the document (what docs/openapi.json holds)."""
    sys.stdout.write(render(build_document(app)))
    return 0


if __name__ == "__main__":
    # Run as a program, this module is its own top: it loads the app the way the host does.
    # Imported modules never reach this block, so the builder does not import the app.
    import function_app

    raise SystemExit(main(function_app.app))
