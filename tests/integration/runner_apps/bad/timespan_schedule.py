"""A TimeSpan schedule: not allowed on Flex Consumption."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="00:05:00", arg_name="timer")
def every_five_minutes(timer: func.TimerRequest) -> None:
    return None
