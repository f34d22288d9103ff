"""The host's Service Bus settlement service, served on loopback for the SDK-type bindings.

`ServiceBusMessageActions` (azurefunctions-extensions-bindings-servicebus) settles a message
by calling the host's `Settlement` gRPC service with the message's lock token; the host then
settles through the receiver that holds the lock. This module is that service: a gRPC server
on 127.0.0.1 (a free port), one per process like the host's, built on the service definition
that ships inside the extension package. Each Service Bus listener registers the messages it
hands to an invocation and drops them once settled; a lock token the service does not hold
(already settled, or never delivered here) is answered with NOT_FOUND, so the function fails
instead of waiting.

The extension finds the service from the worker's command line (`--host`, `--port`,
`--functions-grpc-max-message-length`), as the host passes it when it starts the worker. The
worker shares this process, so `worker_arguments()` is appended to `sys.argv` once.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
from azurefunctions.extensions.bindings.protos import settlement_pb2_grpc
from google.protobuf.empty_pb2 import Empty

_log = logging.getLogger("devtools.runner.settlement")
MAX_MESSAGE_LENGTH = 2_147_483_647
SETTLE_TIMEOUT = 60.0

# action, reason, description -> settles through the receiver holding the lock.
Settle = Callable[[str, str | None, str | None], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class HeldLock:
    """A message an invocation holds: where its receiver lives and how to settle it."""

    loop: asyncio.AbstractEventLoop
    settle: Settle
    renew: Callable[[], Coroutine[Any, Any, None]]


class SettlementError(Exception):
    """Settling failed (lock lost, link gone); the function sees it as its call's failure."""


class _Servicer(settlement_pb2_grpc.SettlementServicer):  # type: ignore[misc]
    def __init__(self, service: SettlementService) -> None:
        self._service = service

    def _run(self, token: str, context: Any, action: str, **kw: Any) -> Empty:
        held = self._service.take(token) if action != "renew" else self._service.peek(token)
        if held is None:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"lock token {token} is not held by this host (already settled or unknown)",
            )
        assert held is not None
        work = (
            held.renew()
            if action == "renew"
            else held.settle(action, kw.get("reason"), kw.get("description"))
        )
        try:
            asyncio.run_coroutine_threadsafe(work, held.loop).result(SETTLE_TIMEOUT)
        except Exception as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{action} failed: {exc!r}")
        return Empty()

    def Complete(self, request: Any, context: Any) -> Empty:
        return self._run(request.locktoken, context, "complete")

    def Abandon(self, request: Any, context: Any) -> Empty:
        return self._run(request.locktoken, context, "abandon")

    def Defer(self, request: Any, context: Any) -> Empty:
        return self._run(request.locktoken, context, "defer")

    def Deadletter(self, request: Any, context: Any) -> Empty:
        reason = request.deadletterReason.value if request.HasField("deadletterReason") else None
        description = (
            request.deadletterErrorDescription.value
            if request.HasField("deadletterErrorDescription")
            else None
        )
        return self._run(
            request.locktoken, context, "dead-letter", reason=reason, description=description
        )

    def RenewMessageLock(self, request: Any, context: Any) -> Empty:
        return self._run(request.locktoken, context, "renew")


class SettlementService:
    """One gRPC server per process; listeners register the locks their invocations hold."""

    _instance: SettlementService | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._held: dict[str, HeldLock] = {}
        self._held_lock = threading.Lock()
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=16, thread_name_prefix="settlement"),
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_LENGTH),
                ("grpc.max_receive_message_length", MAX_MESSAGE_LENGTH),
            ],
        )
        settlement_pb2_grpc.add_SettlementServicer_to_server(_Servicer(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        _log.info("Settlement service listening on 127.0.0.1:%d", self.port)

    @classmethod
    def get(cls) -> SettlementService:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
                _append_worker_arguments(cls._instance.worker_arguments())
            return cls._instance

    def worker_arguments(self) -> list[str]:
        """What the host puts on the worker's command line for the settlement client."""
        return [
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--functions-grpc-max-message-length",
            str(MAX_MESSAGE_LENGTH),
        ]

    def hold(self, token: str, held: HeldLock) -> None:
        with self._held_lock:
            self._held[token.lower()] = held

    def release(self, token: str) -> bool:
        """Forget a lock; True when it was still held (nobody settled it)."""
        with self._held_lock:
            return self._held.pop(token.lower(), None) is not None

    def take(self, token: str) -> HeldLock | None:
        with self._held_lock:
            return self._held.pop(token.lower(), None)

    def peek(self, token: str) -> HeldLock | None:
        with self._held_lock:
            return self._held.get(token.lower())


def _append_worker_arguments(arguments: list[str]) -> None:
    # argparse takes the last occurrence of an option: these win over the runner's own
    # --host/--port, as they would on the worker's own command line.
    sys.argv.extend(arguments)
