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

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
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


# -- Hostile header fields -------------------------------------------------------------------

# The fields the app reads, and one it does not: each may arrive empty, huge, or odd.
HEADER_NAMES = [
    "Idempotency-Key",
    "x-correlation-id",
    "traceparent",
    "tracestate",
    "content-type",
    "accept",
    "x-unknown-field",
]
ODD_TEXT = st.text(
    alphabet=st.sampled_from(
        ["a", "7", " ", "\t", "\u00ff", "\u200f", "\u202e", "\u0301", "\ufeff", "\U0001f600", "%"]
    ),
    max_size=40,
)
HEADER_VALUES = st.one_of(
    # Any UTF-8 text, right-to-left marks and combining characters included.
    ODD_TEXT.map(lambda text: text.encode("utf-8")),
    # Bytes that are not UTF-8 at all: a lone surrogate, a bare continuation byte, Latin-1.
    st.sampled_from([b"\xed\xa0\x80", b"\x80abc", b"caf\xe9", b"\xff\xfe"]),
    # Huge values, some within the host's 32 KiB for all fields, some beyond it.
    st.integers(min_value=200, max_value=40_000).map(lambda size: b"k" * size),
    st.sampled_from([b"", b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01"]),
    # HTTP strips whitespace around a value (RFC 9110 5.5), so none is sent there.
).map(lambda value: value.strip(b" \t"))
HOSTILE_HEADERS = st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_VALUES, max_size=4)
HEADER_EXAMPLES = 8
SLOW_OPERATIONS = {("POST", "/ops/audit"), ("GET", "/ops/dashboard"), ("GET", "/ops/deadletters")}


def _each_operation() -> list[Any]:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    return [
        pytest.param(method.upper(), path, id=f"{method.upper()} {path}")
        for path, operations in document["paths"].items()
        for method in operations
    ]


@pytest.mark.parametrize(("method", "path"), _each_operation())
def test_hostile_header_fields_never_answer_5xx(
    base_url: str, keys: dict[str, str], method: str, path: str
) -> None:
    """Odd, huge and non-UTF-8 header values: the host's 431 or the app's 4xx, never a 5xx,
    and a refused order leaves nothing behind (its key is not taken)."""
    url = base_url + path.replace("{", "").replace("}", "")
    key = keys["adminKey"] if path.startswith("/ops/") else keys["functionKey"]
    body = (
        b'{"customerId":"C00001","lines":[{"sku":"IT-000001","quantity":1}]}'
        if method == "POST"
        else None
    )

    @given(extra=HOSTILE_HEADERS)
    @settings(
        max_examples=2 if (method, path) in SLOW_OPERATIONS else HEADER_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def never_5xx(extra: dict[str, bytes]) -> None:
        headers: list[tuple[bytes, bytes]] = [(b"x-functions-key", key.encode())]
        headers += [(name.encode(), value) for name, value in extra.items()]
        if "content-type" not in extra:
            headers.append((b"content-type", b"application/json"))
        answer = httpx.request(method, url, headers=headers, content=body, timeout=60)
        assert answer.status_code < 500, (answer.status_code, answer.text[:300])
        total = sum(len(n) + len(v) + 4 for n, v in headers)
        if total > 32 * 1024:
            assert answer.status_code == 431
        echoed = answer.headers.get("x-correlation-id", "")
        assert echoed.isprintable() and len(echoed) <= 128
        refused_before_deciding = answer.status_code in (400, 413, 415, 431)
        if (method, path) == ("POST", "/orders") and refused_before_deciding:
            given_key = extra.get("Idempotency-Key")
            if given_key is not None and len(given_key) <= 255:
                # The key stays free: the same key with the same body is decided afresh.
                again = httpx.request(method, url, headers=headers, content=body, timeout=60)
                assert again.status_code == answer.status_code
                assert again.headers.get("Idempotent-Replayed") is None

    never_5xx()
