"""The stock trigger one message per call (16 at a time), for comparison with batches."""

from __future__ import annotations

import azure.functions as func

from functions import inventory
from functions.messages import Received, Rejected, settles_message
from shared.services.inventory.messages import INVENTORY_QUEUE

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name("inventory_events_single")
@app.service_bus_queue_trigger(
    arg_name="msg",
    queue_name=INVENTORY_QUEUE,
    connection="ServiceBusConnection",
    auto_complete_messages=False,
)
@settles_message(INVENTORY_QUEUE)
async def single(msg: Received) -> None:
    rejected = await inventory.apply_batch([msg])
    if rejected:
        raise Rejected(rejected[0].reason, rejected[0].description)


@app.function_name("availability")
@app.route(route="availability", methods=["GET"])
async def availability(req: func.HttpRequest) -> func.HttpResponse:
    return await inventory.answer_availability(req)
