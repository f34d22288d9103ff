"""Service Bus clients built from the setting a binding names, as the host resolves them.

`connection="ServiceBusConnection"` is looked up as `ServiceBusConnection` (a connection
string), then `AzureWebJobsServiceBusConnection`; failing both, an identity-based connection
`ServiceBusConnection__fullyQualifiedNamespace` uses DefaultAzureCredential (optionally with
`ServiceBusConnection__clientId` for a user-assigned managed identity).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.servicebus.aio import ServiceBusClient

from devtools.runner.errors import RunnerError

# Reconnection is the listener's job (with its own backoff); the client retries only briefly.
CLIENT_RETRY: dict[str, Any] = {
    "retry_total": 2,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 4,
}


class ConnectionSettingMissing(RunnerError):
    """No setting provides the connection a Service Bus binding names."""


@dataclass(frozen=True)
class ServiceBusConnection:
    setting: str
    connection_string: str | None = None
    fully_qualified_namespace: str | None = None
    client_id: str | None = None

    @property
    def describe(self) -> str:
        if self.connection_string is not None:
            endpoint = self.connection_string.split(";", 1)[0]
            return f"{self.setting} ({endpoint})"
        return f"{self.setting} ({self.fully_qualified_namespace}, DefaultAzureCredential)"


def resolve_connection(setting: str, environ: Mapping[str, str]) -> ServiceBusConnection:
    for name in (setting, f"AzureWebJobs{setting}"):
        value = environ.get(name, "").strip()
        if value:
            return ServiceBusConnection(setting=setting, connection_string=value)
    for prefix in (setting, f"AzureWebJobs{setting}"):
        namespace = environ.get(f"{prefix}__fullyQualifiedNamespace", "").strip()
        if namespace:
            return ServiceBusConnection(
                setting=setting,
                fully_qualified_namespace=namespace,
                client_id=environ.get(f"{prefix}__clientId") or None,
            )
    raise ConnectionSettingMissing(
        f"no setting {setting!r} (connection string) or {setting}__fullyQualifiedNamespace"
    )


class ClientHandle:
    """A client plus the credential it owns, closed together."""

    def __init__(self, client: ServiceBusClient, credential: Any = None) -> None:
        self.client = client
        self._credential = credential

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.close()
        if self._credential is not None:
            with contextlib.suppress(Exception):
                await self._credential.close()


def open_client(connection: ServiceBusConnection) -> ClientHandle:
    """A new async client (one AMQP connection) for the resolved connection."""
    if connection.connection_string is not None:
        return ClientHandle(
            ServiceBusClient.from_connection_string(connection.connection_string, **CLIENT_RETRY)
        )
    from azure.identity.aio import DefaultAzureCredential

    credential = DefaultAzureCredential(managed_identity_client_id=connection.client_id)
    assert connection.fully_qualified_namespace is not None
    client = ServiceBusClient(connection.fully_qualified_namespace, credential, **CLIENT_RETRY)
    return ClientHandle(client, credential)
