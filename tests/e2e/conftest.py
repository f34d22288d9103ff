"""Clients for end-to-end modules that run their own private stack.

A module defines a module-scoped ``stack`` fixture (a started ``LocalStack``), usually with
``private_stack``::

    @pytest.fixture(scope="module")
    def stack(private_stack: PrivateStack) -> Iterator[LocalStack]:
        with private_stack("apr", policy=POLICY, env={"ORDER_BOOKING_CLAIM_SECONDS": "10"}) as s:
            yield s

The other fixtures give it the HTTP client with the function key, the admin key header, a
Service Bus client and the ERP simulator's URL for that stack.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
from azure.servicebus import ServiceBusClient

from devtools.stack import LocalStack, StackPorts
from tests.support.approval_rules import Probe

# prefix, then keywords policy (the SYNC_POLICY override), env (more runner settings), and
# erp_items / erp_customers (the simulator's size).
PrivateStack = Callable[..., AbstractContextManager[LocalStack]]


@pytest.fixture(scope="session")
def private_stack(azurite_connection: str) -> PrivateStack:
    """Starts a module's own function app, Service Bus stand-in and ERP simulator on free
    ports, sharing only the session's Azurite under a table prefix of its own (``prefix`` and
    a random suffix). Demo customers often have some overdue balance: the overdue tolerance is
    set high unless ``env`` says otherwise."""

    @contextmanager
    def start(
        prefix: str,
        *,
        policy: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        erp_items: int = 40,
        erp_customers: int = 12,
    ) -> Iterator[LocalStack]:
        settings = {
            "AzureWebJobsStorage": azurite_connection,
            "TABLE_PREFIX": prefix + uuid.uuid4().hex[:8],
            "CREDIT_OVERDUE_TOLERANCE": "1000000",
        }
        if policy is not None:
            settings["SYNC_POLICY"] = json.dumps(policy)
        settings.update(env or {})
        started = LocalStack(
            ports=StackPorts.free(), erp_items=erp_items, erp_customers=erp_customers
        )
        try:
            started.start_servicebus()
            started.start_erp()
            started.start_runner(settings)
            yield started
        finally:
            started.stop()

    return start


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


@pytest.fixture(scope="module")
def probe(api: httpx.Client, admin: dict[str, str], bus: ServiceBusClient, erp_url: str) -> Probe:
    """Drives the approval-rule cases (tests/support/approval_rules.py) against the module's
    stack, with the prices published first."""
    found = Probe(api, admin, bus, erp_url)
    found.publish_prices()
    return found
