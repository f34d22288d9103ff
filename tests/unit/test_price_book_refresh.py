"""A price book's refresh never holds up the callers it is not run for.

A reload after a full publish takes seconds (a minute from the tables); before, every quote
that arrived meanwhile waited on the book's lock for it. Now only the caller that runs the
refresh waits, and the others are served the data as it stands. The refresh is held here at
the storage seam (the change-feed read waits on an event), so the timing is deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from shared.adapters.tables import Row
from shared.services.pricing import publisher as price_publisher
from shared.services.pricing.book import PriceBook
from tests.support.memory_tables import InMemoryTableStore


class _HeldFeed(InMemoryTableStore):
    """Table storage whose change-feed reads wait for ``release`` once ``hold`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def query(
        self,
        table: str,
        filter_text: str,
        parameters: Mapping[str, Any] | None = None,
        select: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Row]:
        if self.hold and table == price_publisher.FEED_TABLE:
            self.reading.set()
            await self.release.wait()
        async for row in super().query(table, filter_text, parameters, select, page_size):
            yield row


async def test_a_caller_is_served_while_another_runs_the_refresh() -> None:
    tables = _HeldFeed()
    book = PriceBook(tables, refresh_interval=timedelta(0))
    await book.ensure_current()  # the first load: nothing published yet
    tables.hold = True
    refreshing = asyncio.create_task(book.ensure_current())
    await asyncio.wait_for(tables.reading.wait(), timeout=5)

    # The refresh is stuck in its feed read; another caller does not wait for it.
    await asyncio.wait_for(book.ensure_current(), timeout=1)
    assert not refreshing.done()

    tables.release.set()
    await asyncio.wait_for(refreshing, timeout=5)


async def test_the_first_load_is_waited_for_by_every_caller() -> None:
    tables = _HeldFeed()
    tables.hold = True
    book = PriceBook(tables)
    first = asyncio.create_task(book.ensure_current())
    await asyncio.wait_for(tables.reading.wait(), timeout=5)
    second = asyncio.create_task(book.ensure_current())
    await asyncio.sleep(0.05)
    assert not second.done()  # nothing loaded yet: nothing to serve
    tables.release.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=5)
