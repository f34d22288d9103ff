from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.stores import lease, sync_state
from shared.adapters.tables import TableStore


async def test_a_held_lease_keeps_a_second_run_out(table_store: TableStore) -> None:
    held = await lease.acquire(table_store, "price-publish", timedelta(minutes=5))
    with pytest.raises(lease.LeaseHeld):
        await lease.acquire(table_store, "price-publish", timedelta(minutes=5))
    await held.release()
    again = await lease.acquire(table_store, "price-publish", timedelta(minutes=5))
    assert again.owner != held.owner


async def test_an_expired_lease_is_taken_over_and_the_old_holder_loses_it(
    table_store: TableStore,
) -> None:
    crashed = await lease.acquire(table_store, "content", timedelta(milliseconds=1))
    await asyncio.sleep(0.01)
    successor = await lease.acquire(table_store, "content", timedelta(minutes=5))
    with pytest.raises(lease.LeaseHeld):
        await crashed.renew(timedelta(minutes=5))
    await successor.renew(timedelta(minutes=10))


async def test_concurrent_claims_have_exactly_one_winner(table_store: TableStore) -> None:
    results = await asyncio.gather(
        *(lease.acquire(table_store, "race", timedelta(minutes=1)) for _ in range(8)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, lease.Lease)]
    assert len(winners) == 1
    assert all(isinstance(r, lease.LeaseHeld) for r in results if r not in winners)


async def test_watermark_round_trip_and_runs_newest_first(table_store: TableStore) -> None:
    empty = await sync_state.read_watermark(table_store, "prices")
    assert empty.value is None and empty.last_success_at is None
    mark = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    await sync_state.save_watermark(table_store, "prices", mark, succeeded_at=mark)
    later = mark + timedelta(hours=1)
    await sync_state.save_watermark(table_store, "prices", None, succeeded_at=later)
    stored = await sync_state.read_watermark(table_store, "prices")
    assert stored.value == mark and stored.last_success_at == later

    for outcome in ("first", "second"):
        record = sync_state.RunRecord("prices")
        record.count("read", 3)
        await record.finish(table_store, outcome)
        await asyncio.sleep(0.002)
    runs = await sync_state.recent_runs(table_store, "prices")
    assert [r["outcome"] for r in runs] == ["second", "first"]
    assert runs[0]["n_read"] == 3
