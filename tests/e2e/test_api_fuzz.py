"""Schemathesis over every operation of the served OpenAPI document.

Loads ``/api/openapi.json`` from a running function app and sends generated requests (valid
and deliberately invalid) to every operation with the key its security names. Whatever it
finds is a bug in the code, never in the check: no 5xx, every status and content type
documented, every body matching its schema, invalid input refused.

The app runs on a private stack (its own runner, Service Bus stand-in and ERP simulator; only
the session's Azurite is shared, under its own table prefix): generated orders, probes and
webhook calls may reserve stock or queue messages, and must not reach other e2e tests.
Deterministic (derandomized Hypothesis) and bounded per operation to keep the run short.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.stack import LocalStack, StackPorts

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_OPERATION = 60
MAX_REQUEST_LINE = 8 * 1024
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# The one documented leniency: Business Central's validation handshake is answered from the
# query alone, whatever body comes with it (Business Central sends none; refusing one would
# risk a dropped subscription for nothing).
ACCEPTS_SCHEMA_VIOLATIONS = {("POST", "/erp/notifications", negative_data_rejection)}

# An audit reads the whole (small, private) ERP and prices sample orders through sales quotes:
# a few examples cover its parameters without spending the ERP budget.
# The operations views peek every dead-letter queue (about a second per request locally).
EXAMPLES = {
    ("POST", "/ops/audit"): 6,
    ("GET", "/ops/dashboard"): 10,
    ("GET", "/ops/deadletters"): 10,
    ("GET", "/ops/impact"): 20,
}


@pytest.fixture(scope="module")
def stack(azurite_connection: str) -> Iterator[LocalStack]:
    private = LocalStack(ports=StackPorts.free(), erp_items=20, erp_customers=5)
    paused = {"prices": {"paused": True}, "content": {"paused": True}}
    try:
        private.start_servicebus()
        private.start_erp()
        private.start_runner(
            {
                "AzureWebJobsStorage": azurite_connection,
                "TABLE_PREFIX": "fz" + uuid.uuid4().hex[:8],
                "SYNC_POLICY": json.dumps(paused),
            }
        )
        yield private
    finally:
        private.stop()


@pytest.fixture(scope="module")
def base_url(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.ports.runner}/api"


@pytest.fixture(scope="module")
def keys(stack: LocalStack) -> dict[str, str]:
    values = stack.settings()
    return {
        "functionKey": values["LOCAL_FUNCTION_KEY"],
        "adminKey": values["LOCAL_ADMIN_KEY"],
    }


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> Any:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES_PER_OPERATION,
        deterministic=True,
        # Keys are sent below, per operation; generated ones would only measure the host's 401.
        with_security_parameters=False,
        allow_x00=False,
    )
    return schema


def _operations() -> list[Any]:
    """(method, path, mode) of every operation, read from the committed document so
    collection needs no server (test_openapi.py proves it equals the served one)."""
    document = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                # Without parameters or a body there is nothing to make invalid.
                if mode is GenerationMode.NEGATIVE and not takes_input:
                    continue
                marks = (
                    [pytest.mark.skip(reason="no @documented contract (see test_openapi.py)")]
                    if "undocumented" in operation.get("tags", [])
                    else []
                )
                found.append(
                    pytest.param(
                        method.upper(),
                        path,
                        mode,
                        id=f"{method.upper()} {path} {mode}",
                        marks=marks,
                    )
                )
    return found


def _request_line(case: Any, base_url: str, headers: dict[str, str]) -> str:
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
    prepared = requests.Request(
        kwargs["method"], kwargs["url"], params=kwargs.get("params")
    ).prepare()
    return f"{prepared.method} {prepared.path_url} HTTP/1.1"


def _key_header(operation: Any, keys: dict[str, str]) -> dict[str, str]:
    """The key the operation's security names (none for anonymous routes)."""
    for requirement in operation.definition.raw.get("security", []):
        for scheme in requirement:
            if scheme in keys:
                return {"x-functions-key": keys[scheme]}
    return {}


@pytest.mark.parametrize(("method", "path", "mode"), _operations())
def test_operation_honours_its_contract(
    api_schema: Any,
    base_url: str,
    keys: dict[str, str],
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    operation = api_schema[path][method]
    headers = _key_header(operation, keys)
    checks = [check for check in CHECKS if (method, path, check) not in ACCEPTS_SCHEMA_VIOLATIONS]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES.get((method, path), EXAMPLES_PER_OPERATION),
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def honours_contract(case: Any) -> None:
        # The Functions host (Kestrel) refuses a request line over 8 KiB with 414 before any
        # function runs (the runner does the same): the host's answer, not the app's contract.
        assume(len(_request_line(case, base_url, headers)) <= MAX_REQUEST_LINE)
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks)

    honours_contract()
