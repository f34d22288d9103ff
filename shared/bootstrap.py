"""The composition root: the one place that builds clients from settings, once per process.

Functions reuse a worker process across invocations, so table, Service Bus and ERP clients are
created on first use and kept; connection reuse is what keeps the hot path fast. Tests build
their own ``Services`` with ``build_services`` instead of using the process-wide one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.adapters.bus import MessageBus
from shared.adapters.tables import TableStore
from shared.settings import Settings, get_settings


@dataclass
class Services:
    """Everything a service function needs from the outside world."""

    settings: Settings
    tables: TableStore
    bus: MessageBus

    async def close(self) -> None:
        await self.tables.close()
        await self.bus.close()


def _azure_credential() -> Any:
    # Imported lazily: only cloud deployments use managed identity.
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()


def build_services(settings: Settings) -> Services:
    """Create the clients the settings describe (connection strings locally, identity in Azure)."""
    if settings.storage_account_name:
        tables = TableStore.from_account(
            settings.storage_account_name, _azure_credential(), settings.table_prefix
        )
    else:
        assert settings.storage_connection is not None  # guaranteed by Settings validation
        tables = TableStore.from_connection_string(
            settings.storage_connection, settings.table_prefix
        )
    if settings.service_bus_namespace:
        bus = MessageBus.from_namespace(settings.service_bus_namespace, _azure_credential())
    else:
        assert settings.service_bus_connection is not None
        bus = MessageBus.from_connection_string(settings.service_bus_connection)
    return Services(settings=settings, tables=tables, bus=bus)


_services: Services | None = None


def get_services() -> Services:
    """The process-wide services, built on first use."""
    global _services
    if _services is None:
        _services = build_services(get_settings())
    return _services
