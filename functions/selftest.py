"""The synthetic probe: HTTP starts it, Service Bus carries it, a table records it."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.http import (
    HttpProblem,
    http_endpoint,
    json_response,
    model_response,
    parse_body,
    validate,
)
from functions.messages import (
    Received,
    correlation_id_of,
    delivery_count_of,
    parse_message,
    settles_message,
)
from functions.openapi import Reply, documented, problem
from functions.timer_runs import recorded_timer
from functions.tracing import traced_message
from shared.adapters.stores import erp_usage
from shared.bootstrap import get_services, policy_schedule
from shared.observability.correlation import get_correlation_id
from shared.services.operations import selftest

bp = func.Blueprint()
_log = logging.getLogger(__name__)


@bp.function_name("selftest_start")
@bp.route(route="ops/selftest", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "Start a synthetic probe through Service Bus",
    tag="operations",
    body=selftest.ProbeRequest,
    replies={202: Reply("The probe message as sent.", selftest.ProbeMessage)},
)
@http_endpoint
async def start(req: func.HttpRequest) -> func.HttpResponse:
    request = parse_body(req, selftest.ProbeRequest)
    message = await selftest.start_probe(
        get_services().bus, request, get_correlation_id() or request.probe_id
    )
    return json_response(message, status=202)


@bp.function_name("selftest_result")
@bp.route(route="ops/selftest/{probeId}", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@documented(
    "A probe's recorded result",
    tag="operations",
    params=selftest.ProbePath,
    replies={
        200: Reply("The probe was delivered and recorded.", selftest.ProbeResult),
        404: problem("Not recorded (yet)."),
    },
)
@http_endpoint
async def result(req: func.HttpRequest) -> func.HttpResponse:
    probe_id = validate({"probeId": req.route_params.get("probeId")}, selftest.ProbePath).probe_id
    found = await selftest.probe_result(get_services().tables, probe_id)
    if found is None:
        raise HttpProblem(404, "Not found", f"probe {probe_id} has not been recorded (yet)")
    return model_response(selftest.ProbeResult, found)


@bp.function_name("selftest_consume")
@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name=selftest.QUEUE,
    connection="ServiceBusConnection",
    auto_complete_messages=False,
)
@settles_message(selftest.QUEUE)
@traced_message(selftest.QUEUE)
async def consume(msg: Received) -> None:
    probe = parse_message(msg, selftest.ProbeMessage)
    recorded = await selftest.record_probe(
        get_services().tables, probe, delivery_count_of(msg), correlation_id_of(msg)
    )
    if not recorded:
        _log.info("probe %s already recorded; duplicate delivery ignored", probe.probe_id)


@bp.function_name("heartbeat")
@bp.timer_trigger(arg_name="timer", schedule=policy_schedule("heartbeat"), run_on_startup=False)
@recorded_timer("heartbeat")
async def heartbeat(timer: func.TimerRequest) -> None:
    services = get_services()
    await selftest.beat(services.tables, "heartbeat", bool(timer.past_due))
    # Every instance beats every few minutes: the cheapest place to persist its ERP usage
    # (one table write, no ERP call) for the audit's budget share.
    await erp_usage.recorder_for(services.erp).record(services.tables)
