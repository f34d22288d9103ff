"""``recorded_timer``: every timer function records its runs, in one place.

Applied under ``@bp.timer_trigger`` with the app's function name (the same as
``@bp.function_name``), it writes a ``running`` row, runs the job and stores ``ok``,
``skipped-lease-held`` (another run holds the job's lease: not a failure, so it is swallowed
here) or ``failed`` with a short error, which is then re-raised so the host still sees the
failure. Recording is bounded in time and its own failures are only logged: a table outage
must never hide, delay for long or replace the job's outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import azure.functions as func

from shared.adapters.stores import timer_runs
from shared.adapters.stores.lease import LeaseHeld
from shared.adapters.tables import TableStore
from shared.bootstrap import get_services

RECORD_TIMEOUT_SECONDS = 5.0
_log = logging.getLogger(__name__)

TimerHandler = Callable[..., Awaitable[None]]
Recording = Callable[[], Awaitable[None]]

# Function names of every decorated timer: the overview lists the ones that never ran.
RECORDED_TIMERS: list[str] = []


def _process_tables() -> TableStore:
    return get_services().tables


async def _quietly(what: str, name: str, action: Recording) -> None:
    try:
        await asyncio.wait_for(action(), RECORD_TIMEOUT_SECONDS)
    except Exception as error:  # recording is best effort; the job's outcome matters more
        summary = timer_runs.short_error(error)
        _log.warning("could not record %s of timer %s: %s", what, name, summary)


def _past_due(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    for value in (*args, *kwargs.values()):
        if isinstance(value, func.TimerRequest):
            return bool(value.past_due)
    return False


def recorded_timer(
    function_name: str, tables: Callable[[], TableStore] = _process_tables
) -> Callable[[TimerHandler], TimerHandler]:
    """Record each run of the decorated timer under ``function_name`` in ``TimerRuns``."""

    def decorate(handler: TimerHandler) -> TimerHandler:
        if function_name not in RECORDED_TIMERS:
            RECORDED_TIMERS.append(function_name)

        @wraps(handler)
        async def run(*args: Any, **kwargs: Any) -> None:
            record = timer_runs.TimerRun(function_name, past_due=_past_due(args, kwargs))

            async def start() -> None:
                await timer_runs.record_start(tables(), record)

            def end(result: timer_runs.TimerResult, error: str = "") -> Recording:
                return lambda: timer_runs.record_end(tables(), record, result, error)

            await _quietly("the start", function_name, start)
            try:
                await handler(*args, **kwargs)
            except LeaseHeld as held:
                _log.info("timer %s skipped: %s", function_name, held)
                await _quietly("the end", function_name, end("skipped-lease-held", str(held)))
                return
            except Exception as error:
                failure = end("failed", timer_runs.short_error(error))
                await _quietly("the failure", function_name, failure)
                raise
            await _quietly("the end", function_name, end("ok"))

        run.__dict__["recorded_timer_name"] = function_name
        return run

    return decorate
