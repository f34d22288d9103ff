"""Service Bus triggers: peek-lock receive, invoke, settle, the way the host does.

- Success: complete every message the function did not settle itself (when
  autoCompleteMessages, the default). Exception: abandon every message the invocation held
  and did not settle, whatever autoCompleteMessages says, so the broker redelivers at once
  and dead-letters after its max delivery count (MaxDeliveryCountExceeded). Nothing else:
  no exception type dead-letters.
- SDK-type functions (`ServiceBusReceivedMessage`, `SupportsDeferredBinding`) get
  model-binding data, and may settle each message themselves through
  `ServiceBusMessageActions`, which calls the host's settlement service (settlement.py);
  the listener registers every lock it hands to the invocation there.
- At most `maxConcurrentCalls` invocations run per function: the receiver only asks for as
  many messages as there are free slots. Batch functions (`cardinality="many"`) get up to
  `maxMessageBatchSize` messages per call, one batch at a time.
- Locks of single-message invocations are renewed by an AutoLockRenewer up to
  `maxAutoLockRenewalDuration`. Batch invocations get no automatic renewal (Service Bus
  extension 5.x): a batch settles within LockDuration or renews explicitly.
- A lost connection (the stand-in restarted, the entity vanished) is logged and retried with
  backoff; the listener never brings the runner down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import typing
from collections.abc import Mapping
from typing import Any

from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiveMode
from azure.servicebus.aio import AutoLockRenewer, ServiceBusReceiver

from devtools.runner import wire
from devtools.runner.host_config import ServiceBusOptions
from devtools.runner.indexing import FunctionSpec, ServiceBusTriggerSpec
from devtools.runner.invoker import InvocationResult, Invoker
from devtools.runner.sb_clients import ClientHandle, open_client, resolve_connection
from devtools.runner.settlement import HeldLock, SettlementService

_log = logging.getLogger("devtools.runner.servicebus")
POLL_SECONDS = 1.0
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0


def _trace_parent(message: ServiceBusReceivedMessage) -> str | None:
    for key, value in (message.application_properties or {}).items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name.lower() in {"traceparent", "diagnostic-id"}:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class ServiceBusListener:
    """Receives for one Service Bus-triggered function."""

    def __init__(
        self,
        spec: FunctionSpec,
        options: ServiceBusOptions,
        invoker: Invoker,
        environ: Mapping[str, str] | None = None,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        assert isinstance(spec.trigger, ServiceBusTriggerSpec)
        self.spec = spec
        self._trigger: ServiceBusTriggerSpec = spec.trigger
        self._options = options
        self._invoker = invoker
        self._environ = os.environ if environ is None else environ
        self._poll_seconds = poll_seconds
        self.auto_complete = (
            options.auto_complete_messages
            if self._trigger.auto_complete is None
            else self._trigger.auto_complete
        )
        self.max_concurrent = 1 if self._trigger.many else options.max_concurrent_calls
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._grace = 30.0
        self.state = "stopped"
        self.last_error: str | None = None

    @property
    def entity(self) -> str:
        return self._trigger.entity

    def start(self) -> None:
        if not self.auto_complete and not self.spec.sdk_type_trigger:
            _log.warning(
                "%s: autoCompleteMessages is false but the function takes no "
                "ServiceBusReceivedMessage; it cannot settle, so messages stay locked until "
                "their lock expires",
                self.spec.name,
            )
        self.state = "starting"
        self._task = asyncio.create_task(self._run(), name=f"servicebus:{self.spec.name}")

    async def stop(self, grace: float) -> None:
        """Stop receiving, let in-flight invocations finish for `grace` s, abandon the rest."""
        self._grace = grace
        self._stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self._poll_seconds + grace + 10)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        self.state = "stopped"

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stopping.is_set():
            handle: ClientHandle | None = None
            try:
                connection = resolve_connection(self._trigger.connection, self._environ)
                handle = open_client(connection)
                receiver = self._open_receiver(handle)
                renewer = AutoLockRenewer(
                    max_lock_renewal_duration=self._options.max_auto_lock_renewal_duration.total_seconds()
                )
                try:
                    async with receiver:
                        _log.info(
                            "%s: listening on %s via %s (maxConcurrentCalls=%d, batch=%s)",
                            self.spec.name,
                            self.entity,
                            connection.describe,
                            self.max_concurrent,
                            self._trigger.many,
                        )
                        await self._pump(receiver, renewer)
                        await self._drain(self._grace)
                finally:
                    await self._drain(None)
                    with contextlib.suppress(Exception):
                        await renewer.close()
                delay = BACKOFF_FIRST
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any receive failure means reconnect
                if self.state == "listening":
                    delay = BACKOFF_FIRST  # it worked until now: retry soon
                self.state = "reconnecting"
                self.last_error = repr(exc)
                _log.warning(
                    "%s: receiver for %s failed (%r); reconnecting in %.1fs",
                    self.spec.name,
                    self.entity,
                    exc,
                    delay,
                )
                await self._drain(None)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, BACKOFF_MAX)
            finally:
                if handle is not None:
                    await handle.close()
        self.state = "stopped"

    def _open_receiver(self, handle: ClientHandle) -> ServiceBusReceiver:
        common: dict[str, Any] = {
            "receive_mode": ServiceBusReceiveMode.PEEK_LOCK,
            "prefetch_count": self._options.prefetch_count,
        }
        if self._trigger.queue_name is not None:
            return handle.client.get_queue_receiver(self._trigger.queue_name, **common)
        assert self._trigger.topic_name is not None and self._trigger.subscription_name is not None
        return handle.client.get_subscription_receiver(
            self._trigger.topic_name, self._trigger.subscription_name, **common
        )

    async def _pump(self, receiver: ServiceBusReceiver, renewer: AutoLockRenewer) -> None:
        while not self._stopping.is_set():
            free = self.max_concurrent - len(self._inflight)
            if free <= 0:
                self._slot_freed.clear()
                await self._wait_for_slot()
                continue
            wanted = self._options.max_message_batch_size if self._trigger.many else free
            messages = await receiver.receive_messages(
                max_message_count=wanted, max_wait_time=self._poll_seconds
            )
            self.state = "listening"
            self.last_error = None
            if not messages:
                continue
            if (
                not self._trigger.many
                and self._options.max_auto_lock_renewal_duration.total_seconds() > 0
            ):
                for message in messages:
                    renewer.register(receiver, message)
            if self._trigger.many:
                self._spawn(self._handle(receiver, list(messages)))
            else:
                for message in messages:
                    self._spawn(self._handle(receiver, [message]))

    async def _wait_for_slot(self) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        slot = asyncio.ensure_future(self._slot_freed.wait())
        try:
            await asyncio.wait({stop, slot}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stop, slot):
                waiter.cancel()

    def _spawn(self, work: typing.Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._inflight.add(task)

        def _done(finished: asyncio.Task[None]) -> None:
            self._inflight.discard(finished)
            self._slot_freed.set()

        task.add_done_callback(_done)

    async def _drain(self, grace: float | None) -> None:
        """Wait for in-flight invocations; after `grace` seconds cancel (and so abandon) them."""
        if not self._inflight:
            return
        pending = set(self._inflight)
        _, still_running = await asyncio.wait(pending, timeout=grace)
        for task in still_running:
            task.cancel()
        if still_running:
            _log.warning(
                "%s: abandoning %d invocation(s) still running at shutdown",
                self.spec.name,
                len(still_running),
            )
            await asyncio.gather(*still_running, return_exceptions=True)

    def _hold(
        self, receiver: ServiceBusReceiver, messages: list[ServiceBusReceivedMessage]
    ) -> SettlementService | None:
        """Register the invocation's locks with the settlement service (SDK types only)."""
        if not self.spec.sdk_type_trigger:
            return None
        service = SettlementService.get()
        loop = asyncio.get_running_loop()
        for message in messages:
            service.hold(
                str(message.lock_token),
                HeldLock(
                    loop=loop,
                    settle=functools.partial(self._settle_for_function, receiver, message),
                    renew=functools.partial(self._renew, receiver, message),
                ),
            )
        return service

    async def _settle_for_function(
        self,
        receiver: ServiceBusReceiver,
        message: ServiceBusReceivedMessage,
        action: str,
        reason: str | None,
        description: str | None,
    ) -> None:
        await self._settle_one(
            receiver,
            message,
            action,
            reason=reason or "",
            description=description or "",
            raise_errors=True,
        )

    @staticmethod
    async def _renew(receiver: ServiceBusReceiver, message: ServiceBusReceivedMessage) -> None:
        await receiver.renew_message_lock(message)

    @staticmethod
    def _unsettled(
        messages: list[ServiceBusReceivedMessage], service: SettlementService | None
    ) -> list[ServiceBusReceivedMessage]:
        if service is None:
            return messages
        return [m for m in messages if service.release(str(m.lock_token))]

    async def _handle(
        self, receiver: ServiceBusReceiver, messages: list[ServiceBusReceivedMessage]
    ) -> None:
        first = messages[0]
        reason = (
            f"New ServiceBus message detected on '{self.entity}' "
            f"(MessageId={first.message_id}, DeliveryCount={wire.host_delivery_count(first)}"
            + (f", BatchSize={len(messages)})" if self._trigger.many else ")")
        )
        service = self._hold(receiver, messages)
        try:
            data, metadata = wire.service_bus_trigger_data(
                messages, many=self._trigger.many, sdk_type=self.spec.sdk_type_trigger
            )
            result = await self._invoker.invoke(
                self.spec, data, metadata, reason=reason, trace_parent=_trace_parent(first)
            )
        except asyncio.CancelledError:
            # Shutdown overtook the invocation: give the messages back for redelivery.
            await self._settle_all(receiver, self._unsettled(messages, service), "abandon")
            raise
        except Exception as exc:  # converting the message failed: retry later
            _log.exception("%s: could not prepare the invocation", self.spec.name)
            result = InvocationResult("", False, None, repr(exc))
        await self._settle(receiver, self._unsettled(messages, service), result)

    async def _settle(
        self,
        receiver: ServiceBusReceiver,
        messages: list[ServiceBusReceivedMessage],
        result: InvocationResult,
    ) -> None:
        """What the host does with the messages the function did not settle itself."""
        if not messages:
            return
        if not result.succeeded:
            await self._settle_all(receiver, messages, "abandon")
            return
        if self.auto_complete:
            await self._settle_all(receiver, messages, "complete")
            return
        _log.warning(
            "%s: %d message(s) left unsettled by the function (autoCompleteMessages is "
            "false); they come back when their lock expires",
            self.spec.name,
            len(messages),
        )

    async def _settle_all(
        self, receiver: ServiceBusReceiver, messages: list[ServiceBusReceivedMessage], action: str
    ) -> None:
        # Each settlement waits for the broker's confirmation: settle a batch concurrently.
        await asyncio.gather(*(self._settle_one(receiver, m, action) for m in messages))

    async def _settle_one(
        self,
        receiver: ServiceBusReceiver,
        message: ServiceBusReceivedMessage,
        action: str,
        *,
        reason: str = "",
        description: str = "",
        raise_errors: bool = False,
    ) -> None:
        try:
            if action == "complete":
                await receiver.complete_message(message)
            elif action == "abandon":
                await receiver.abandon_message(message)
            elif action == "defer":
                await receiver.defer_message(message)
            else:
                await receiver.dead_letter_message(
                    message, reason=reason or None, error_description=description or None
                )
        except Exception as exc:  # lock lost or link gone: the broker redelivers
            _log.warning(
                "%s: could not %s message %s (%r); it will be redelivered when its lock expires",
                self.spec.name,
                action,
                message.message_id,
                exc,
            )
            if raise_errors:
                raise
            return
        _log.info(
            "%s: %s message %s%s",
            self.spec.name,
            {
                "complete": "completed",
                "abandon": "abandoned",
                "defer": "deferred",
                "dead-letter": "dead-lettered",
            }[action],
            message.message_id,
            f" (reason={reason!r})" if action == "dead-letter" else "",
        )
