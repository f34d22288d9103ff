"""A schedule naming a setting that does not exist."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="%NO_SUCH_SCHEDULE_SETTING%", arg_name="timer")
def never(timer: func.TimerRequest) -> None:
    return None
