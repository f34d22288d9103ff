"""Delivering one channel's operations: batches out, acknowledgements into the hash table.

A batch the channel acknowledged per SKU ("applied"/"unchanged") is written to the hash table;
a SKU it rejected is recorded as a failure and the rest of the batch still counts. A channel
that is down or refuses us is marked down for the rest of the run; the other channels carry on
(each channel has its own ``ChannelDelivery``), and the pass stays unfinished so the next run
sends that channel what it missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.adapters.channels import (
    BatchInvalid,
    BatchTooLarge,
    CatalogBatch,
    CatalogDelete,
    CatalogUpsert,
    ChannelAdapter,
    ChannelContractError,
    ChannelRefused,
    ChannelUnavailable,
    OperationResult,
)
from shared.adapters.stores.content_failures import FailureLog, channel_scope
from shared.adapters.stores.content_hashes import ChannelHashes
from shared.domain.content.planning import Action, Operation, split_batches
from shared.services.content.runs import ChannelStats

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchLimits:
    max_operations: int = 500
    max_bytes: int = 8 * 1024 * 1024


class ChannelDelivery:
    """Sends one channel its operations for one run and remembers what it acknowledged."""

    def __init__(
        self,
        adapter: ChannelAdapter,
        hashes: ChannelHashes,
        failures: FailureLog,
        stats: ChannelStats,
        run_id: str,
        limits: BatchLimits,
        out_of_time: Callable[[], bool],
    ) -> None:
        self.adapter = adapter
        self.hashes = hashes
        self._failures = failures
        self._stats = stats
        self._run_id = run_id
        self._limits = limits
        self._out_of_time = out_of_time
        self._scope = channel_scope(adapter.name)
        self.batches_sent = 0
        self._acked_upserts: dict[str, str] = {}
        self._acked_deletes: set[str] = set()
        self._held: list[Operation] = []
        self.down: str | None = None

    async def deliver(self, operations: Sequence[Operation], *, final: bool = True) -> bool:
        """Send ``operations`` and any held back; False when some were left unsent.

        With ``final=False`` a last, partly filled batch is held back and topped up by the next
        call, so a pass costs the channel as few requests as the batch size allows. Operations
        left unsent (channel down, out of time) are not acknowledged, so a later run sends them.
        """
        pending = [*self._held, *operations]
        self._held = []
        batches = split_batches(pending, self._limits.max_operations, self._limits.max_bytes)
        if not final and batches and len(batches[-1]) < self._limits.max_operations:
            self._held = batches.pop()
        for position, batch in enumerate(batches):
            if self.down is not None:
                self._stats.failed += sum(len(rest) for rest in batches[position:])
                self._stats.failed += len(self._held)
                self._held = []
                return False
            # The first batch always goes, so every run makes progress whatever the budget.
            if position > 0 and self._out_of_time():
                self._held = []
                return False
            await self._send(batch)
        return self.down is None

    async def _send(self, operations: Sequence[Operation]) -> None:
        self.batches_sent += 1
        batch_id = f"content-{self._run_id[:12]}-{self.adapter.name}-{self.batches_sent}"
        batch, ordered = _catalog_batch(batch_id, operations)
        before = self.adapter.counters.requests
        try:
            results = await self.adapter.push(batch)
        except BatchTooLarge as error:
            await self._split(operations, str(error))
            return
        except BatchInvalid as error:
            await self._without_invalid(operations, error)
            return
        except (ChannelUnavailable, ChannelRefused, ChannelContractError) as error:
            self.down = str(error)
            self._stats.error = self.down
            self._stats.failed += len(operations)
            _log.warning("content sync: channel %s down for this run: %s", self.adapter.name, error)
            return
        finally:
            self._stats.requests += self.adapter.counters.requests - before
        self._apply(ordered, results)

    async def _split(self, operations: Sequence[Operation], error: str) -> None:
        if len(operations) == 1:
            self._reject(operations[0], f"too large for the channel: {error}")
            return
        middle = len(operations) // 2
        await self._send(operations[:middle])
        if self.down is None:
            await self._send(operations[middle:])

    async def _without_invalid(self, operations: Sequence[Operation], error: BatchInvalid) -> None:
        upserts = [op for op in operations if op.action is Action.UPSERT]
        deletes = [op for op in operations if op.action is Action.DELETE]
        named = {
            (upserts if kind == "upsert" else deletes)[index].sku: problem
            for (kind, index), problem in error.operation_errors.items()
            if index < len(upserts if kind == "upsert" else deletes)
        }
        if not named:
            # The channel did not say which product broke the contract: none of them went in.
            for operation in operations:
                self._reject(operation, f"batch refused: {error}")
            return
        for operation in operations:
            if operation.sku in named:
                self._reject(operation, named[operation.sku])
        rest = [op for op in operations if op.sku not in named]
        if rest:
            await self._send(rest)

    def _apply(self, operations: Sequence[Operation], results: Sequence[OperationResult]) -> None:
        stats = self._stats
        for operation, result in zip(operations, results, strict=True):
            stats.sent += result.status != "missing"
            if not result.acknowledged:
                self._reject(operation, result.error or result.status)
                continue
            if result.status == "applied":
                stats.applied += 1
            else:
                stats.unchanged += 1
            self._failures.resolve(self._scope, operation.sku)
            if operation.action is Action.UPSERT and operation.content_hash:
                self._acked_upserts[operation.sku] = operation.content_hash
                self._acked_deletes.discard(operation.sku)
            else:
                stats.deleted += 1
                self._acked_deletes.add(operation.sku)
                self._acked_upserts.pop(operation.sku, None)

    def _reject(self, operation: Operation, error: str) -> None:
        self._stats.rejected += 1
        self._stats.failed += 1
        self._failures.record(
            self._scope, operation.sku, f"channel-{operation.action}", error, operation.content_hash
        )

    def resolve_quietly(self, sku: str) -> None:
        """Nothing to send for ``sku`` (already there or not sold): any old failure is moot."""
        self._failures.resolve(self._scope, sku)

    async def flush(self) -> None:
        """Write what the channel acknowledged since the last flush to the hash table."""
        if not (self._acked_upserts or self._acked_deletes):
            return
        upserts, deletes = self._acked_upserts, self._acked_deletes
        self._acked_upserts, self._acked_deletes = {}, set()
        await self.hashes.acknowledge(upserts.items(), deletes, self._run_id)


def _catalog_batch(
    batch_id: str, operations: Sequence[Operation]
) -> tuple[CatalogBatch, list[Operation]]:
    """The wire batch and the operations in its order (results come upserts first)."""
    upserts = [op for op in operations if op.action is Action.UPSERT and op.listing is not None]
    deletes = [op for op in operations if op.action is Action.DELETE]
    batch = CatalogBatch(
        batch_id,
        [
            CatalogUpsert(op.sku, op.content_hash or "", op.listing.body)
            for op in upserts
            if op.listing
        ],
        [CatalogDelete(op.sku, op.content_hash) for op in deletes],
    )
    return batch, upserts + deletes
