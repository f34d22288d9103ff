"""Idempotency keys of order intake: the first answer for a key is the answer for the key.

The key and a hash of the body are claimed in Table storage (create: 409 means someone has
it) before the intake has any effect. Then:
- the same key and body again returns the stored first answer (same status, same body);
- the same key with another body is refused (409);
- a duplicate arriving while the first request still works waits for its answer (and gets
  a 409 "in progress" with Retry-After if that takes too long);
- a claim whose request died (older than the intake timeout, never completed) is taken over
  by the next request with the same key, keeping the order id it reserved;
- answers that say "try again" (503, 500) are not stored: the claim is dropped instead;
- keys expire after the configured retention and are purged by a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.adapters.ports import TableStorage
from shared.adapters.stores.order_rows import pack_json, unpack_json
from shared.adapters.tables import EntityChanged, EntityExists, EntityMissing, Row

IDEMPOTENCY_TABLE = "OrderIdempotency"
_ROW = "request"
_PROCESSING = "processing"
_DONE = "done"


class KeyReused(Exception):
    """The key was first used with a different body."""


class KeyInProgress(Exception):
    """The first request with this key is still working; ask again shortly."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("a request with this Idempotency-Key is still in progress")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class StoredResponse:
    status: int
    content_type: str
    body: str


@dataclass(frozen=True)
class KeyClaim:
    """This request owns the key; `order_id` is the id reserved for its order."""

    key: str
    order_id: str
    etag: str
    resumed: bool
    entity: dict[str, Any]


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value else str(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def request_hash(body: Any) -> str:
    """A hash of the parsed body that ignores key order, spacing and "12.50" vs 12.5 style."""
    text = json.dumps(_canonical(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stored(row: Row) -> StoredResponse:
    return StoredResponse(
        status=int(row.entity["responseStatus"]),
        content_type=str(row.entity["responseContentType"]),
        body=str(unpack_json(row.entity, "response")),
    )


async def claim_key(
    tables: TableStorage,
    key: str,
    body_hash: str,
    new_order_id: str,
    now: Callable[[], datetime],
    *,
    retention: timedelta,
    stale_after: timedelta,
    wait: timedelta,
) -> KeyClaim | StoredResponse:
    """Own the key (a `KeyClaim`) or get the stored first answer (`StoredResponse`).

    Raises `KeyReused` or `KeyInProgress`.
    """
    deadline = time.monotonic() + wait.total_seconds()
    pause = 0.05
    while True:
        current = now()
        entity = {
            "PartitionKey": key,
            "RowKey": _ROW,
            "requestHash": body_hash,
            "state": _PROCESSING,
            "orderId": new_order_id,
            "claimedAt": current,
            "expiresAt": current + retention,
        }
        try:
            etag = await tables.create(IDEMPOTENCY_TABLE, entity)
            return KeyClaim(key, new_order_id, etag, resumed=False, entity=entity)
        except EntityExists:
            pass
        row = await tables.get(IDEMPOTENCY_TABLE, key, _ROW)
        if row is None:
            continue  # dropped between our create and read: claim again
        if row.entity["expiresAt"] <= current:
            with contextlib.suppress(EntityChanged, EntityMissing):
                await tables.delete(IDEMPOTENCY_TABLE, key, _ROW, etag=row.etag)
            continue
        if row.entity["requestHash"] != body_hash:
            raise KeyReused(key)
        if row.entity["state"] == _DONE:
            return _stored(row)
        if row.entity["claimedAt"] <= current - stale_after:
            # The request that claimed it died: take over, keeping its order id.
            taken = {**row.entity, "claimedAt": current}
            try:
                etag = await tables.update(IDEMPOTENCY_TABLE, taken, row.etag)
            except (EntityChanged, EntityMissing):
                continue
            return KeyClaim(key, str(row.entity["orderId"]), etag, resumed=True, entity=taken)
        if time.monotonic() >= deadline:
            raise KeyInProgress(retry_after_seconds=2)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


async def complete_key(tables: TableStorage, claim: KeyClaim, response: StoredResponse) -> None:
    """Store the answer for the key (only the claim's owner gets here)."""
    entity = {
        **claim.entity,
        "state": _DONE,
        "responseStatus": response.status,
        "responseContentType": response.content_type,
    }
    pack_json(entity, "response", response.body)
    # A takeover since our claim means our request was presumed dead; its answer wins.
    with contextlib.suppress(EntityChanged, EntityMissing):
        await tables.update(IDEMPOTENCY_TABLE, entity, claim.etag)


async def drop_key(tables: TableStorage, claim: KeyClaim) -> None:
    """Forget the claim so a retry runs again (the answer was "try again")."""
    with contextlib.suppress(EntityChanged, EntityMissing):
        await tables.delete(IDEMPOTENCY_TABLE, claim.key, _ROW, etag=claim.etag)


async def purge_expired(tables: TableStorage, now: datetime) -> int:
    """Delete keys past their retention; returns how many went."""
    purged = 0
    async for row in tables.query(IDEMPOTENCY_TABLE, "expiresAt lt @now", {"now": now}):
        with contextlib.suppress(EntityChanged, EntityMissing):
            await tables.delete(IDEMPOTENCY_TABLE, row.partition_key, row.row_key, etag=row.etag)
            purged += 1
    return purged
