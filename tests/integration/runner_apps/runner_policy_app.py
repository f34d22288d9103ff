"""Sample app whose timer takes its schedule from the sync policy, as the product's do."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func

from shared.bootstrap import policy_schedule

app = func.FunctionApp()
ticks: list[datetime] = []


@app.timer_trigger(schedule=policy_schedule("heartbeat"), arg_name="timer")
def heartbeat(timer: func.TimerRequest) -> None:
    ticks.append(datetime.now(UTC))
