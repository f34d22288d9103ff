"""Service Bus output bindings: the host sends what the worker returned for them.

The worker returns output values only for a successful invocation, so nothing is sent when
the function fails, as with the host. A value that cannot be sent fails the invocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping

from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusSender

from devtools.runner.errors import OutputDeliveryError
from devtools.runner.indexing import ServiceBusOutputSpec
from devtools.runner.sb_clients import ClientHandle, open_client, resolve_connection

_log = logging.getLogger("devtools.runner.outputs")


class ServiceBusOutputs:
    """Senders shared by all invocations, one client per connection setting."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._clients: dict[str, ClientHandle] = {}
        self._senders: dict[tuple[str, str], ServiceBusSender] = {}
        self._lock = asyncio.Lock()

    async def _sender(self, spec: ServiceBusOutputSpec) -> ServiceBusSender:
        key = (spec.connection, spec.entity.lower())
        async with self._lock:
            sender = self._senders.get(key)
            if sender is not None:
                return sender
            handle = self._clients.get(spec.connection)
            if handle is None:
                handle = open_client(resolve_connection(spec.connection, self._environ))
                self._clients[spec.connection] = handle
            if spec.queue_name is not None:
                sender = handle.client.get_queue_sender(spec.queue_name)
            else:
                assert spec.topic_name is not None
                sender = handle.client.get_topic_sender(spec.topic_name)
            self._senders[key] = sender
            return sender

    async def _forget(self, spec: ServiceBusOutputSpec) -> None:
        # After a failure the connection may be dead (stand-in restarted): start afresh next time.
        async with self._lock:
            for key in [k for k in self._senders if k[0] == spec.connection]:
                sender = self._senders.pop(key)
                with contextlib.suppress(Exception):
                    await sender.close()
            handle = self._clients.pop(spec.connection, None)
        if handle is not None:
            await handle.close()

    async def send(self, spec: ServiceBusOutputSpec, bodies: list[bytes]) -> int:
        """Send the bodies the worker returned for the binding; returns how many went out."""
        if not bodies:
            return 0
        try:
            sender = await self._sender(spec)
            await sender.send_messages([ServiceBusMessage(body) for body in bodies])
        except Exception as exc:
            await self._forget(spec)
            raise OutputDeliveryError(
                f"output {spec.name!r} to {spec.entity!r} could not be sent: {exc!r}"
            ) from exc
        _log.info("Sent %d message(s) to %s (output %s)", len(bodies), spec.entity, spec.name)
        return len(bodies)

    async def close(self) -> None:
        async with self._lock:
            senders = list(self._senders.values())
            handles = list(self._clients.values())
            self._senders.clear()
            self._clients.clear()
        for sender in senders:
            with contextlib.suppress(Exception):
                await sender.close()
        for handle in handles:
            await handle.close()
