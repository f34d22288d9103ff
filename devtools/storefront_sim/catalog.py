"""What each channel's catalog holds and every change the simulator accepted, in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devtools.storefront_sim.payload import (
    CatalogBatch,
    Delete,
    Operation,
    OperationStatus,
    Upsert,
)


@dataclass(frozen=True)
class CatalogEntry:
    content_hash: str
    product: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class ReceivedItem:
    """One applied upsert or delete, as `GET /_sim/received` reports it."""

    channel: str
    sku: str
    operation: Operation
    content_hash: str | None
    received_at: datetime
    batch_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "sku": self.sku,
            "operation": self.operation.value,
            "contentHash": self.content_hash,
            "receivedAt": self.received_at.isoformat(),
            "batchId": self.batch_id,
        }


@dataclass(frozen=True)
class OperationResult:
    sku: str
    operation: Operation
    status: OperationStatus
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "sku": self.sku,
            "operation": self.operation.value,
            "status": self.status.value,
        }
        if self.error is not None:
            result["error"] = self.error
        return result


class Catalogs:
    """Per-channel catalogs plus the ordered log of applied operations.

    Applying is synchronous (no awaits), so under one event loop a batch is atomic with
    respect to other requests.
    """

    def __init__(self) -> None:
        self._catalogs: dict[str, dict[str, CatalogEntry]] = {}
        self._received: list[ReceivedItem] = []

    def apply(self, channel: str, batch: CatalogBatch, now: datetime) -> list[OperationResult]:
        """Apply upserts then deletes in order; one result per operation, in that order."""
        catalog = self._catalogs.setdefault(channel, {})
        seen: set[str] = set()
        results: list[OperationResult] = []
        for upsert in batch.upserts:
            results.append(self._upsert(channel, catalog, upsert, batch.batch_id, now, seen))
        for delete in batch.deletes:
            results.append(self._delete(channel, catalog, delete, batch.batch_id, now, seen))
        return results

    def entries(self, channel: str) -> dict[str, CatalogEntry]:
        return dict(self._catalogs.get(channel, {}))

    def received(self, channel: str | None = None) -> list[ReceivedItem]:
        return [item for item in self._received if channel is None or item.channel == channel]

    def clear(self) -> None:
        self._catalogs.clear()
        self._received.clear()

    def _upsert(
        self,
        channel: str,
        catalog: dict[str, CatalogEntry],
        upsert: Upsert,
        batch_id: str,
        now: datetime,
        seen: set[str],
    ) -> OperationResult:
        error = _duplicate(upsert.sku, seen) or _product_problem(upsert)
        if error is not None:
            return OperationResult(upsert.sku, Operation.UPSERT, OperationStatus.REJECTED, error)
        current = catalog.get(upsert.sku)
        if current is not None and current.content_hash == upsert.content_hash:
            return OperationResult(upsert.sku, Operation.UPSERT, OperationStatus.UNCHANGED)
        catalog[upsert.sku] = CatalogEntry(upsert.content_hash, upsert.product, now)
        self._received.append(
            ReceivedItem(channel, upsert.sku, Operation.UPSERT, upsert.content_hash, now, batch_id)
        )
        return OperationResult(upsert.sku, Operation.UPSERT, OperationStatus.APPLIED)

    def _delete(
        self,
        channel: str,
        catalog: dict[str, CatalogEntry],
        delete: Delete,
        batch_id: str,
        now: datetime,
        seen: set[str],
    ) -> OperationResult:
        error = _duplicate(delete.sku, seen)
        if error is not None:
            return OperationResult(delete.sku, Operation.DELETE, OperationStatus.REJECTED, error)
        # Deleting what is not there is a repeat of an earlier delete, not an error.
        if catalog.pop(delete.sku, None) is None:
            return OperationResult(delete.sku, Operation.DELETE, OperationStatus.UNCHANGED)
        self._received.append(
            ReceivedItem(channel, delete.sku, Operation.DELETE, delete.content_hash, now, batch_id)
        )
        return OperationResult(delete.sku, Operation.DELETE, OperationStatus.APPLIED)


def _duplicate(sku: str, seen: set[str]) -> str | None:
    # Two operations on one SKU in one batch have no defined order for a storefront.
    if sku in seen:
        return "sku appears more than once in the batch"
    seen.add(sku)
    return None


def _product_problem(upsert: Upsert) -> str | None:
    name = upsert.product.get("name")
    if not isinstance(name, str) or not name.strip():
        return "product.name is required and must be a non-empty string"
    product_sku = upsert.product.get("sku")
    if product_sku is not None and product_sku != upsert.sku:
        return f"product.sku {product_sku!r} does not match the operation's sku"
    return None
