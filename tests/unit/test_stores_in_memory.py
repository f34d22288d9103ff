"""Store logic on the in-memory table store: the same rules as Azurite, in milliseconds.

The contract suite (tests/integration/test_table_store_contract.py) proves the in-memory store
agrees with Azurite on ETags, claims and transactions; these tests lean on that to check the
stores' own logic without a server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.stores import idempotency_keys as keys
from shared.adapters.stores import lease
from tests.support.memory_bus import RecordingBus
from tests.support.memory_tables import InMemoryTableStore

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _clock() -> datetime:
    return NOW


async def _claim(tables: InMemoryTableStore, body_hash: str) -> keys.KeyClaim | keys.StoredResponse:
    return await keys.claim_key(
        tables,
        "k-1",
        body_hash,
        "ORD-1",
        _clock,
        retention=timedelta(hours=24),
        stale_after=timedelta(seconds=90),
        wait=timedelta(0),
    )


async def test_a_key_answers_its_first_response_and_refuses_another_body() -> None:
    tables = InMemoryTableStore()
    claim = await _claim(tables, "hash-a")
    assert isinstance(claim, keys.KeyClaim) and not claim.resumed
    with pytest.raises(keys.KeyInProgress):
        await _claim(tables, "hash-a")
    await keys.complete_key(tables, claim, keys.StoredResponse(202, "application/json", "{}"))
    assert await _claim(tables, "hash-a") == keys.StoredResponse(202, "application/json", "{}")
    with pytest.raises(keys.KeyReused):
        await _claim(tables, "hash-b")


async def test_a_lease_is_held_once_and_free_again_after_release() -> None:
    tables = InMemoryTableStore()
    held = await lease.acquire(tables, "job", timedelta(minutes=5))
    with pytest.raises(lease.LeaseHeld):
        await lease.acquire(tables, "job", timedelta(minutes=5))
    await held.renew(timedelta(minutes=5))
    await held.release()
    again = await lease.acquire(tables, "job", timedelta(minutes=5))
    assert again.owner != held.owner
    with pytest.raises(lease.LeaseHeld):  # the first holder lost it to the second
        await held.renew(timedelta(minutes=5))


async def test_the_recording_bus_keeps_what_was_sent_per_entity() -> None:
    bus = RecordingBus()
    await bus.send_json("orders", {"orderId": "ORD-1"}, message_id="m-1", session_id="ORD-1")
    await bus.send_json("order-status", {"orderId": "ORD-1"}, message_id="m-2")
    assert [m.message_id for m in bus.to("orders")] == ["m-1"]
    assert bus.to("orders")[0].session_id == "ORD-1"
