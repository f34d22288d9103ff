"""Timer triggers: fire on schedule, never two runs of one timer at once.

The host holds a singleton lock per timer; here an asyncio.Lock per timer plays that part,
shared by scheduled runs, `run_on_startup` and on-demand runs from the admin API. A scheduled
run that starts more than PAST_DUE_TOLERANCE after its occurrence (it waited for the lock,
or the process was busy) gets `past_due=True`. Occurrences that pass while a run is still
going are skipped, as on the host: the next one is computed when the run ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from devtools.runner import wire
from devtools.runner import worker_messages as messages
from devtools.runner.indexing import FunctionSpec, TimerTriggerSpec
from devtools.runner.invoker import Invoker

_log = logging.getLogger("devtools.runner.timers")
# A run that starts later than this after its occurrence is reported as past due.
PAST_DUE_TOLERANCE = timedelta(seconds=1)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


class TimerListener:
    """Schedules one timer function."""

    def __init__(self, spec: FunctionSpec, invoker: Invoker, clock: Clock = _utcnow) -> None:
        assert isinstance(spec.trigger, TimerTriggerSpec)
        self.spec = spec
        self._trigger: TimerTriggerSpec = spec.trigger
        self._invoker = invoker
        self._clock = clock
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._running = False
        self.last_run: datetime | None = None
        self.next_run: datetime | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"timer:{self.spec.name}")

    async def stop(self, grace: float) -> None:
        """Stop scheduling; a run in progress gets `grace` seconds before it is cancelled."""
        self._stopping = True
        if self._task is None:
            return
        if self._running:
            await asyncio.wait({self._task}, timeout=grace)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def run_once(self, *, reason: str) -> None:
        """An on-demand run under the timer's lock (waits while another run is going).

        Like the host's admin invocation it carries no schedule status and is never past due.
        """
        async with self._lock:
            await self._invoke(wire.timer_trigger_data(False, None), reason=reason)

    def _scheduled_request(self, past_due: bool) -> messages.TypedData:
        now = self._clock()
        request = wire.timer_trigger_data(
            past_due,
            {
                "Last": _iso(self.last_run),
                "Next": _iso(self._trigger.schedule.next_after(now)),
                "LastUpdated": _iso(now),
            },
        )
        self.last_run = now
        return request

    async def _invoke(self, request: messages.TypedData, *, reason: str) -> None:
        self._running = True
        try:
            await self._invoker.invoke(self.spec, request, reason=reason)
        finally:
            self._running = False

    async def _sleep_until(self, moment: datetime) -> None:
        # Re-check the wall clock: the loop's monotonic timer may wake a little early.
        while True:
            remaining = (moment - self._clock()).total_seconds()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining)

    async def _loop(self) -> None:
        schedule = self._trigger.schedule
        if self._trigger.run_on_startup:
            async with self._lock:
                await self._invoke(
                    self._scheduled_request(past_due=False),
                    reason="Timer fired on startup (RunOnStartup)",
                )
        while not self._stopping:
            # Counted from now, as the host does: occurrences missed during a long run are
            # skipped, not replayed.
            occurrence = schedule.next_after(self._clock())
            self.next_run = occurrence
            await self._sleep_until(occurrence)
            async with self._lock:
                started = self._clock()
                past_due = started - occurrence > PAST_DUE_TOLERANCE
                if past_due:
                    _log.warning(
                        "Timer %s is past due: due %s, starting %s",
                        self.spec.name,
                        occurrence.isoformat(),
                        started.isoformat(),
                    )
                await self._invoke(
                    self._scheduled_request(past_due),
                    reason=f"Timer fired at {started.isoformat()} (schedule {schedule.expression})",
                )
