"""Timer triggers: fire on schedule, never two runs of one timer at once, past-due runs.

Schedule monitoring (`useMonitor`, on by default for schedules of a minute or more): the host
keeps each timer's status (Last, Next, LastUpdated) in storage; when it starts and the stored
Next has passed (the host was down at that moment), it runs the function at once with
`IsPastDue` true, once, whatever the number of occurrences missed. The runner keeps that status
in a JSON file per timer when given a status directory (`--timer-status-dir`), and in memory
otherwise (then a restart forgets it, like a host without monitoring).

The host holds a singleton lock per timer; here an asyncio.Lock per timer plays that part,
shared by scheduled runs, `run_on_startup` and on-demand runs from the admin API. A scheduled
run that starts more than PAST_DUE_TOLERANCE after its occurrence (it waited for the lock,
or the process was busy) gets `past_due=True`. Occurrences that pass while a run is still
going are skipped, as on the host: the next one is computed when the run ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class TimerStatusStore:
    """One JSON file per timer, `{"Last", "Next", "LastUpdated"}`, as the host's monitor keeps."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def load(self, name: str) -> dict[str, datetime | None] | None:
        try:
            raw = json.loads(self._path(name).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict):
            return None
        return {key: _parse(raw.get(key)) for key in ("Last", "Next", "LastUpdated")}

    def save(self, name: str, status: dict[str, datetime | None]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(name)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({key: _iso(value) for key, value in status.items()}))
        temporary.replace(path)


class TimerListener:
    """Schedules one timer function."""

    def __init__(
        self,
        spec: FunctionSpec,
        invoker: Invoker,
        clock: Clock = _utcnow,
        status_store: TimerStatusStore | None = None,
    ) -> None:
        assert isinstance(spec.trigger, TimerTriggerSpec)
        self.spec = spec
        self._trigger: TimerTriggerSpec = spec.trigger
        self._invoker = invoker
        self._clock = clock
        self._store = status_store if self.monitored else None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._running = False
        self.last_run: datetime | None = None
        self.next_run: datetime | None = None

    @property
    def monitored(self) -> bool:
        """`useMonitor` as given, else on when occurrences are a minute or more apart."""
        if self._trigger.use_monitor is not None:
            return self._trigger.use_monitor
        now = self._clock()
        first = self._trigger.schedule.next_after(now)
        return self._trigger.schedule.next_after(first) - first >= timedelta(minutes=1)

    def _save_status(self, last: datetime | None, now: datetime) -> None:
        if self._store is None:
            return
        self._store.save(
            self.spec.name,
            {
                "Last": last,
                "Next": self._trigger.schedule.next_after(now),
                "LastUpdated": now,
            },
        )

    async def _run_if_past_due(self) -> None:
        """At start-up: an occurrence the stored status expected has passed: run it now."""
        if self._store is None:
            return
        status = self._store.load(self.spec.name)
        now = self._clock()
        missed = status.get("Next") if status else None
        if missed is None or now - missed <= PAST_DUE_TOLERANCE:
            self._save_status(status.get("Last") if status else None, now)
            return
        _log.warning(
            "Timer %s is past due: its occurrence at %s passed while the host was not running",
            self.spec.name,
            missed.isoformat(),
        )
        async with self._lock:
            await self._invoke(
                self._scheduled_request(past_due=True),
                reason=f"Timer is past due (missed {missed.isoformat()})",
            )
            self._save_status(self._clock(), self._clock())

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
        await self._run_if_past_due()
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
                self._save_status(occurrence, self._clock())
