"""The storefront channel interface: push a batch of catalog upserts and deletes, get per-SKU
results back. The content sync only talks to this interface; the catalog webhook
(``channels_webhook``) is the one real implementation, a marketplace API would be another.

Failures are split by what the sync must do next: a whole channel is unreachable or refuses
us (stop sending to it this run, try again next run), a batch is too large (split it), or
individual operations are wrong (record them per SKU, go on with the rest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

OperationKind = Literal["upsert", "delete"]
# "applied" and "unchanged" both mean the channel now has what was sent; anything else does not.
OperationStatus = Literal["applied", "unchanged", "rejected", "missing"]
ACKNOWLEDGED: frozenset[str] = frozenset({"applied", "unchanged"})


@dataclass(frozen=True, slots=True)
class CatalogUpsert:
    sku: str
    content_hash: str
    product: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CatalogDelete:
    sku: str
    # The last hash the channel acknowledged, or None when it is not known.
    content_hash: str | None


@dataclass(frozen=True)
class CatalogBatch:
    batch_id: str
    upserts: Sequence[CatalogUpsert] = ()
    deletes: Sequence[CatalogDelete] = ()

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deletes)


@dataclass(frozen=True, slots=True)
class OperationResult:
    sku: str
    operation: OperationKind
    status: OperationStatus
    error: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status in ACKNOWLEDGED


class ChannelError(Exception):
    """Base of every channel failure; ``status_code`` is the HTTP status when there was one."""

    def __init__(self, channel: str, message: str, *, status_code: int | None = None) -> None:
        super().__init__(f"{channel}: {message}")
        self.channel = channel
        self.status_code = status_code


class ChannelUnavailable(ChannelError):
    """Down, failing or throttling beyond the retries this run allows: try again next run."""


class ChannelRefused(ChannelError):
    """Refuses every request (signature, unknown channel, malformed request): configuration."""


class ChannelContractError(ChannelError):
    """Answered in a shape this adapter does not understand."""


class BatchTooLarge(ChannelError):
    """The channel wants smaller batches: split and resend."""


class BatchInvalid(ChannelError):
    """The batch broke the channel's contract; nothing was applied.

    ``operation_errors`` maps (operation, position in that list) to the problem when the
    channel named the offending operations, so the others can be resent without them.
    """

    def __init__(
        self,
        channel: str,
        message: str,
        operation_errors: Mapping[tuple[OperationKind, int], str],
        *,
        status_code: int | None = 422,
    ) -> None:
        super().__init__(channel, message, status_code=status_code)
        self.operation_errors = dict(operation_errors)


@dataclass
class ChannelCounters:
    """Requests sent and how they ended, for run records and benchmarks."""

    requests: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def count(self, status: int | str) -> None:
        self.requests += 1
        key = str(status)
        self.by_status[key] = self.by_status.get(key, 0) + 1


class ChannelAdapter(Protocol):
    """A storefront channel that takes catalog batches."""

    name: str
    counters: ChannelCounters

    async def push(self, batch: CatalogBatch) -> list[OperationResult]:
        """Deliver ``batch``; one result per operation, upserts first, in the order sent.

        Idempotent per SKU and content hash, so a batch may be pushed again after a crash.
        Raises a ``ChannelError`` subclass when the batch as a whole was not applied.
        """
        ...
