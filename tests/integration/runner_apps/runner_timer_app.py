"""Sample timer app for the runner tests; runs are recorded in module lists."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import azure.functions as func

app = func.FunctionApp()
ticks: list[datetime] = []
manual_runs: list[bool] = []
guarded_runs: list[tuple[bool, bool]] = []
_guard = threading.Lock()
_active = 0
max_active = 0


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer")
def every_tick(timer: func.TimerRequest) -> None:
    ticks.append(datetime.now(UTC))


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer")
def yearly(timer: func.TimerRequest) -> None:
    manual_runs.append(timer.past_due)


@app.timer_trigger(schedule="%GUARDED_SCHEDULE%", arg_name="timer")
def guarded(timer: func.TimerRequest) -> None:
    """Counts overlapping runs; an on-demand run (no schedule status) holds on for 2.5 s."""
    global _active, max_active
    with _guard:
        _active += 1
        max_active = max(max_active, _active)
    try:
        on_demand = not timer.schedule_status
        if on_demand:
            time.sleep(2.5)
        guarded_runs.append((on_demand, timer.past_due))
    finally:
        with _guard:
            _active -= 1
