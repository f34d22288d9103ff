"""A batch trigger annotated `list[...]`: Microsoft's worker refuses the whole app for it."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.route(route="fine")
def fine(req: func.HttpRequest) -> str:
    return "this function would be fine on its own"


@app.service_bus_queue_trigger(
    arg_name="msgs", queue_name="events", connection="ServiceBusConnection", cardinality="many"
)
def on_events(msgs: list[func.ServiceBusMessage]) -> None:
    return None
