"""Business Central's per-principal limits shared by every instance of the app.

BC processes 5 requests at once per user or service principal and allows 6,000 per 5-minute
window, whichever Function instance sends them; requests beyond 5 wait in BC's queue, where a
create can commit long after its caller gave up. So the slots and the budget are leased from
one shared record (a row in Table storage), changed only with ETag-conditional writes:

- slot leases: each instance holds some of the ``max_concurrent`` slots until ``until``
  (a crashed instance's slots come back when its lease runs out) and renews while busy. When
  another instance is waiting, a busy one shrinks to a fair share at its next renewal; it
  never records fewer slots than it has requests in flight.
- budget blocks: an instance takes ``block`` requests of the window at a time; a block
  counts from when it is granted, so the window's total never exceeds the limit.

Cost: a read and a write per renewal (every ``lease_seconds / 2`` while busy) and per block
(every ``block`` requests), not per request. If the store cannot be reached, the instance
keeps what its unexpired lease gives it, then falls back to one slot, and logs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.adapters.erp.clock import Clock
from shared.adapters.erp.throttling import SlotWaitTooLong

_log = logging.getLogger(__name__)
_POLL_SECONDS = 0.25
_WRITE_RACES = 8


class LimitsConflict(Exception):
    """The shared record changed (or appeared) since it was read: read again."""


class LimitsStore(Protocol):
    """The one shared record: read it with its ETag, write it only if unchanged."""

    async def read(self) -> tuple[dict[str, Any], str | None]: ...

    async def write(self, record: dict[str, Any], etag: str | None) -> None:
        """Write; ``LimitsConflict`` if the record changed since ``etag`` (None: must be new)."""
        ...


@dataclass(frozen=True)
class SharedLimitSettings:
    max_concurrent: int = 5
    requests_per_window: int = 6000
    window_seconds: float = 300.0
    lease_seconds: float = 10.0
    block: int = 100


class SharedLimits:
    """This instance's share of one principal's slots and budget."""

    def __init__(
        self, store: LimitsStore, instance: str, settings: SharedLimitSettings, clock: Clock
    ) -> None:
        self._store = store
        self._me = instance
        self._settings = settings
        self._clock = clock
        self._held = 0  # slots this instance may use now
        self._in_use = 0
        self._waiting = 0
        self._lease_until = float("-inf")  # monotonic
        self._budget_left = 0
        self._budget_retry_at = float("-inf")  # monotonic: no block before this
        self._others_waiting = False
        self._renewed_at = float("-inf")
        self._lock = asyncio.Lock()
        self._freed = asyncio.Event()
        self.renewals = 0
        self.store_failures = 0

    @property
    def held(self) -> int:
        return self._held

    @property
    def in_use(self) -> int:
        return self._in_use

    def _usable(self, now: float) -> bool:
        return (
            self._in_use < self._held
            and self._lease_until - now > self._settings.lease_seconds / 2
            and self._budget_left > 0
        )

    async def acquire(self, deadline: float) -> None:
        """Wait for a slot and a request of budget; ``SlotWaitTooLong`` past ``deadline``."""
        self._waiting += 1
        try:
            while True:
                now = self._clock.monotonic()
                if self._usable(now):
                    self._in_use += 1
                    self._budget_left -= 1
                    return
                await self._renew()
                if self._usable(self._clock.monotonic()):
                    continue
                now = self._clock.monotonic()
                if now >= deadline:
                    raise SlotWaitTooLong(_POLL_SECONDS)
                wait = min(_POLL_SECONDS, deadline - now)
                if self._budget_left <= 0 and self._budget_retry_at > now:
                    wait = min(self._budget_retry_at - now, deadline - now)
                    if self._budget_retry_at > deadline:
                        raise SlotWaitTooLong(self._budget_retry_at - now)
                self._freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._freed.wait(), max(wait, 0.001))
        finally:
            self._waiting -= 1

    def release(self) -> None:
        """One request ended."""
        self._in_use -= 1
        self._freed.set()

    def _store_can_help(self, now: float) -> bool:
        """Whether asking the shared record could give more than waiting for our own
        requests to end (it costs a read and a write)."""
        if self._lease_until - now <= self._settings.lease_seconds / 2:
            return True
        if self._budget_left <= 0:
            return now >= self._budget_retry_at
        if self._held >= self._settings.max_concurrent:
            return False
        return now - self._renewed_at >= 4 * _POLL_SECONDS

    async def _renew(self) -> None:
        async with self._lock:
            now = self._clock.monotonic()
            if self._usable(now) or not self._store_can_help(now):
                return  # another waiter renewed meanwhile, or only a release can help
            for _ in range(_WRITE_RACES):
                try:
                    record, etag = await self._store.read()
                    updated = self._update(record)
                    await self._store.write(updated, etag)
                except LimitsConflict:
                    continue
                except Exception as error:  # the store is down: degrade, never stop
                    self.store_failures += 1
                    _log.warning("shared ERP limits unavailable: %s", error)
                    self._degrade()
                    return
                self._apply(updated)
                return
            _log.info("shared ERP limits: lost %s write races in a row", _WRITE_RACES)

    def _update(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with this instance's lease (and maybe a new budget block) in it."""
        settings = self._settings
        wall = self._clock.now()
        leases: dict[str, dict[str, Any]] = {
            name: lease
            for name, lease in _leases(record).items()
            if _parse(lease.get("until")) > wall
        }
        others = {name: lease for name, lease in leases.items() if name != self._me}
        others_held = sum(int(lease.get("slots", 0)) for lease in others.values())
        self._others_waiting = any(
            int(lease.get("want", 0)) > int(lease.get("slots", 0)) for lease in others.values()
        )
        demand = min(settings.max_concurrent, self._in_use + self._waiting)
        free = max(0, settings.max_concurrent - others_held)
        share = min(demand, free)
        if self._others_waiting:
            active = 1 + sum(1 for lease in others.values() if int(lease.get("want", 0)) > 0)
            share = min(share, max(1, settings.max_concurrent // active))
        # Requests in flight keep their slots until they end, whatever the share.
        recorded = max(share, self._in_use)
        leases[self._me] = {
            "slots": recorded,
            "want": demand,
            "until": (wall + timedelta(seconds=settings.lease_seconds)).isoformat(),
        }
        if demand == 0 and self._in_use == 0:
            leases.pop(self._me)
        horizon = wall - timedelta(seconds=settings.window_seconds)
        grants = [g for g in _grants(record) if _parse(g[0]) > horizon]
        granted = 0
        if self._budget_left <= 0 and demand > 0:
            used = sum(int(g[1]) for g in grants)
            if used + settings.block <= settings.requests_per_window:
                grants.append([wall.isoformat(), settings.block])
                granted = settings.block
            elif grants:
                oldest = min(_parse(g[0]) for g in grants)
                free_at = oldest + timedelta(seconds=settings.window_seconds) - wall
                self._budget_retry_at = self._clock.monotonic() + free_at.total_seconds()
        return {
            "leases": leases,
            "grants": grants,
            "_share": share,
            "_granted": granted,
        }

    def _apply(self, written: dict[str, Any]) -> None:
        self.renewals += 1
        self._renewed_at = self._clock.monotonic()
        self._held = int(written["_share"])
        self._budget_left += int(written["_granted"])
        self._lease_until = self._clock.monotonic() + self._settings.lease_seconds

    def _degrade(self) -> None:
        if self._clock.monotonic() >= self._lease_until:
            # Without the shared record, one slot at a time is the safe guess.
            self._held = 1
            self._lease_until = self._clock.monotonic() + self._settings.lease_seconds
            self._budget_left = max(self._budget_left, 1)


def _leases(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    leases = record.get("leases")
    return dict(leases) if isinstance(leases, dict) else {}


def _grants(record: dict[str, Any]) -> list[list[Any]]:
    grants = record.get("grants")
    return [list(g) for g in grants] if isinstance(grants, list) else []


def _parse(value: object) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return datetime.min.replace(tzinfo=UTC)


def encode_record(record: dict[str, Any]) -> str:
    """The stored form: the leases and grants, without this instance's private notes."""
    return json.dumps({k: v for k, v in record.items() if not k.startswith("_")})
