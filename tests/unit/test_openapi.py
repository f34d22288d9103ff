"""The OpenAPI contract: generated from the app, committed, complete, valid and bounded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import jsonschema_rs
import pytest
from pydantic import SecretStr
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

import function_app
from functions import openapi
from shared.config.settings import get_settings
from tests.infra.app_index import all_bindings

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
SECURITY = {"ANONYMOUS": [], "FUNCTION": "functionKey", "ADMIN": "adminKey"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build_document(function_app.app)


def _http_bindings() -> list[tuple[str, dict[str, Any]]]:
    return [(name, b) for name, b in all_bindings() if b["type"] == "httpTrigger"]


def _operation_of(document: dict[str, Any], route: str, method: str) -> dict[str, Any]:
    path = "/" + openapi._PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", route)
    assert path in document["paths"], f"{route} is not in the document"
    assert method in document["paths"][path], f"{method.upper()} {route} is not documented"
    operation: dict[str, Any] = document["paths"][path][method]
    return operation


def test_committed_document_is_the_generated_one(document: dict[str, Any]) -> None:
    assert COMMITTED.read_text(encoding="utf-8") == openapi.render(document), (
        "docs/openapi.json is out of date: run `make openapi` "
        "(or `.venv/bin/python -m functions.openapi > docs/openapi.json`) and commit it"
    )


def test_every_http_function_declares_its_contract() -> None:
    functions = openapi.http_functions(function_app.app)
    assert len(functions) >= 15
    undocumented = [f"{f.name} ({f.route})" for f in functions if f.doc is None]
    assert undocumented == [], "add @documented(...) under the @bp.route of: " + ", ".join(
        undocumented
    )


def test_every_http_function_is_documented_with_its_methods_and_auth_level(
    document: dict[str, Any],
) -> None:
    bindings = _http_bindings()
    assert bindings
    documented_operations = sum(len(ops) for ops in document["paths"].values())
    expected_operations = 0
    for name, binding in bindings:
        methods = {m.lower() for m in binding["methods"]}
        expected_operations += len(methods)
        path = "/" + openapi._PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", binding["route"])
        assert set(document["paths"][path]) >= methods, name
        for method in methods:
            operation = _operation_of(document, binding["route"], method)
            wanted = SECURITY[binding["authLevel"]]
            if wanted == []:
                assert operation["security"] == [], name
                assert "401" not in operation["responses"] or name == "erp_notifications"
            else:
                assert operation["security"] == [{wanted: []}, {f"{wanted}Query": []}], name
                assert "401" in operation["responses"], name
    # Nothing documented that the host does not serve.
    assert documented_operations == expected_operations


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    OPENAPI_31_VALIDATOR.validate(document)
    assert document["openapi"].startswith("3.1.")
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_reference_resolves_into_components(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    assert refs
    names = set(document["components"]["schemas"])
    assert {ref.removeprefix("#/components/schemas/") for ref in refs} <= names
    assert "$defs" not in json.dumps(document)


def _request_schemas(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema a caller's input is checked against: bodies (followed) and parameters."""
    components = document["components"]["schemas"]
    seen: set[str] = set()

    def follow(where: str, schema: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(schema, dict):
            ref = schema.get("$ref")
            if ref:
                name = ref.removeprefix("#/components/schemas/")
                if name not in seen:
                    seen.add(name)
                    yield from follow(name, components[name])
                return
            yield where, schema
            for key, value in schema.items():
                if key in {"properties"}:
                    for prop, sub in value.items():
                        yield from follow(f"{where}.{prop}", sub)
                elif key in {"items", "anyOf", "oneOf", "allOf", "additionalProperties"}:
                    for sub in value if isinstance(value, list) else [value]:
                        yield from follow(where, sub)

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} {parameter['name']}"
                yield from follow(where, parameter["schema"])
            body = operation.get("requestBody", {}).get("content", {})
            for media in body.values():
                yield from follow(f"{method.upper()} {path} body", media["schema"])


def test_every_request_string_array_and_number_is_bounded(document: dict[str, Any]) -> None:
    unbounded = []
    checked = 0
    for where, schema in _request_schemas(document):
        kind = schema.get("type")
        if kind == "string":
            checked += 1
            if not ({"maxLength", "pattern", "enum", "format", "const"} & set(schema)):
                unbounded.append(where)
        elif kind == "array":
            checked += 1
            if "maxItems" not in schema:
                unbounded.append(where)
        elif kind in {"integer", "number"}:
            checked += 1
            if "maximum" not in schema:
                unbounded.append(where)
    assert checked > 40
    assert unbounded == []


@pytest.mark.parametrize(
    ("component", "field", "keyword", "value"),
    [
        ("QuoteRequest", "lines", "maxItems", 500),
        ("OrderRequest", "lines", "maxItems", 200),
        ("OrderRequest", "externalOrderId", "maxLength", 100),
        ("CreditCheckRequest", "customerId", "maxLength", 20),
        ("ErpNotificationBatch", "value", "maxItems", 1000),
        ("ProbeRequest", "failDeliveries", "maximum", 100),
    ],
)
def test_request_limits_are_published(
    document: dict[str, Any], component: str, field: str, keyword: str, value: int
) -> None:
    schema = document["components"]["schemas"][component]["properties"][field]
    assert schema[keyword] == value


def test_parameter_limits_are_published(document: dict[str, Any]) -> None:
    def parameter(path: str, method: str, name: str) -> dict[str, Any]:
        found = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
        assert len(found) == 1
        return found[0]

    skus = parameter("/availability", "get", "skus")
    assert (skus["style"], skus["explode"]) == ("form", False)
    assert skus["schema"]["items"]["maxLength"] == 100
    assert parameter("/ops/content/runs", "get", "limit")["schema"]["maximum"] == 200
    assert parameter("/ops/content/failures", "get", "limit")["schema"]["maximum"] == 5000
    key = parameter("/orders", "post", "Idempotency-Key")
    assert (key["in"], key["required"], key["schema"]["maxLength"]) == ("header", True, 255)
    order_id = parameter("/orders/{orderId}", "get", "orderId")
    assert order_id["in"] == "path" and order_id["schema"]["pattern"].startswith("^ORD-")


def test_erp_webhook_documents_the_handshake(document: dict[str, Any]) -> None:
    operation = document["paths"]["/erp/notifications"]["post"]
    token = next(p for p in operation["parameters"] if p["name"] == "validationToken")
    assert token["in"] == "query" and token["schema"]["maxLength"] == 4096
    assert "text/plain" in operation["responses"]["200"]["content"]
    assert "application/json" in operation["responses"]["202"]["content"]
    assert operation["requestBody"]["required"] is False


def test_problems_and_money_are_typed(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    violation = document["components"]["schemas"]["Violation"]
    assert {"rule", "field", "detail", "sku", "line"} <= set(violation["properties"])
    quote_line = document["components"]["schemas"]["QuoteLineAnswer"]["properties"]
    assert quote_line["unitPrice"]["type"] == "string"
    assert quote_line["unitPrice"]["pattern"] == r"^-?[0-9]+(\.[0-9]+)?$"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")) and "content" in answer:
                    if path == "/health" and status == "503":
                        continue
                    assert list(answer["content"]) == ["application/problem+json"], (
                        f"{method} {path} {status}"
                    )


def test_document_holds_no_secret() -> None:
    text = openapi.render(openapi.build_document(function_app.app))
    secrets = [
        value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in get_settings().model_dump().items()
        if isinstance(value, SecretStr) or "key" in name.lower()
    ]
    checked = [s for s in secrets if isinstance(s, str) and len(s) >= 8]
    assert checked, "no secret setting found: the test would prove nothing"
    for secret in checked:
        assert secret not in text


async def test_served_document_is_the_generated_one() -> None:
    request = func.HttpRequest("GET", "http://localhost/api/openapi.json", body=b"")
    response = await openapi.openapi_document(request)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body()) == openapi.build_document(function_app.app)
    assert response.headers["x-correlation-id"]
