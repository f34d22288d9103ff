"""Clients for end-to-end modules that run their own private stack.

A module defines a module-scoped ``stack`` fixture (a started ``LocalStack``); these fixtures
give it the HTTP client with the function key, the admin key header, a Service Bus client and
the ERP simulator's URL for that stack.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from azure.servicebus import ServiceBusClient

from devtools.stack import LocalStack


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    keys = stack.settings()
    with httpx.Client(
        base_url=f"http://127.0.0.1:{stack.ports.runner}",
        headers={"x-functions-key": keys["LOCAL_FUNCTION_KEY"]},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def admin(stack: LocalStack) -> dict[str, str]:
    return {"x-functions-key": stack.settings()["LOCAL_ADMIN_KEY"]}


@pytest.fixture(scope="module")
def bus(stack: LocalStack) -> Iterator[ServiceBusClient]:
    connection = stack.settings()["ServiceBusConnection"]
    with ServiceBusClient.from_connection_string(connection, retry_total=0) as client:
        yield client


@pytest.fixture(scope="module")
def erp_url(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.ports.erp}"
