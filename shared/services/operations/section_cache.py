"""Slow sections of the operations page, kept for a few seconds and refreshed behind the page.

The business sections that sum ledgers over days (accuracy, impact; the trigger names which)
change over minutes, yet took most of each page view; sections an operator acts on
(approvals, orders waiting) are not cached. A section younger than ``fresh_seconds`` is
served as it is; an older one is still served (with its age) while one refresh runs in the
background; one older than ``max_age_seconds`` (or never read) is read while the caller
waits. One read per section at a time, however many pages are open. The page shows each
section's ``checkedAt`` and ``ageMs``, as the health probes do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cached:
    value: Any
    checked_at: datetime
    loaded_at: float  # monotonic seconds


class SectionCache:
    """Per-process cache of named sections (see the module docstring)."""

    def __init__(
        self,
        fresh_seconds: float = 5.0,
        max_age_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fresh_seconds = fresh_seconds
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._entries: dict[str, Cached] = {}
        self._loading: dict[str, asyncio.Task[Cached]] = {}
        self.loads = 0

    def age_ms(self, entry: Cached) -> int:
        return max(0, round((self._clock() - entry.loaded_at) * 1000))

    async def get(self, name: str, load: Callable[[], Awaitable[Any]]) -> Cached:
        """The section ``name``: cached, refreshed behind the caller, or read now."""
        entry = self._entries.get(name)
        age = None if entry is None else self._clock() - entry.loaded_at
        if entry is not None and age is not None and age <= self.max_age_seconds:
            if age > self.fresh_seconds:
                self._start(name, load)  # served stale meanwhile; errors only logged
            return entry
        return await asyncio.shield(self._start(name, load))

    def _start(self, name: str, load: Callable[[], Awaitable[Any]]) -> asyncio.Task[Cached]:
        running = self._loading.get(name)
        if running is not None and not running.done():
            return running
        task = asyncio.get_running_loop().create_task(self._load(name, load))
        self._loading[name] = task
        task.add_done_callback(_log_failure)
        return task

    async def _load(self, name: str, load: Callable[[], Awaitable[Any]]) -> Cached:
        self.loads += 1
        value = await load()
        entry = Cached(value, datetime.now(UTC), self._clock())
        self._entries[name] = entry
        return entry


def _log_failure(task: asyncio.Task[Cached]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.warning("operations section refresh failed: %r", task.exception())
