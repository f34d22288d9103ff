"""The catalog webhook's wire format, validated on receipt (see README.md for the contract)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

MAX_OPERATIONS = 500

# No silent trimming: a SKU with stray spaces is another key and the sender should know.
Sku = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")]
ContentHash = Annotated[str, StringConstraints(min_length=1, max_length=256)]
BatchId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ChannelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


class _Wire(BaseModel):
    # Unknown fields are ignored so the product may add fields without breaking the receiver.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class Upsert(_Wire):
    """Create or replace one product; `contentHash` makes a repeat a no-op."""

    sku: Sku
    content_hash: ContentHash
    product: dict[str, Any]


class Delete(_Wire):
    """Remove one product; `contentHash` is the last hash the sender pushed, if it knows it."""

    sku: Sku
    content_hash: ContentHash | None = None


class CatalogBatch(_Wire):
    """`POST /channels/{channel}/catalog/batch` body."""

    batch_id: BatchId
    upserts: list[Upsert] = Field(default_factory=list)
    deletes: list[Delete] = Field(default_factory=list)


class Operation(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


class OperationStatus(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


class FaultsRequest(_Wire):
    """`POST /_sim/faults` body: replaces the faults of one scope (a channel, or all)."""

    # A misspelt fault must fail loudly, or a test would silently run without it.
    model_config = ConfigDict(extra="forbid")

    channel: ChannelName | None = None
    latency_ms: int = Field(default=0, ge=0, le=120_000)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    outage: bool = False
    throttle: bool = False
    seed: int | None = None


class ReceivedQuery(_Wire):
    """`GET /_sim/received` query."""

    channel: ChannelName | None = None


def operation_count(document: object) -> int:
    """Operations in a decoded batch before full validation, so oversize batches get 413."""
    if not isinstance(document, dict):
        return 0
    return sum(
        len(value) for key in ("upserts", "deletes") if isinstance(value := document.get(key), list)
    )
