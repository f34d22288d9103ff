"""Sample HTTP app for the runner tests: routes, auth levels, failures, context, logging."""

from __future__ import annotations

import asyncio
import json
import logging
import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger("runner_http_app")


def _json(document: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(document), status_code=status, mimetype="application/json")


@app.route(route="items/{sku}", methods=["GET"])
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    return _json(
        {
            "route": dict(req.route_params),
            "params": dict(req.params),
            "method": req.method,
            "url": req.url,
            "header": req.headers.get("x-probe"),
        }
    )


@app.route(route="orders/{orderId:int}", methods=["GET"])
def get_order(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"function": "get_order", "orderId": req.route_params["orderId"]})


@app.route(route="orders/search", methods=["GET"])
def search_orders(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"function": "search_orders"})


@app.route(route="files/{name?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_file(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"name": req.route_params.get("name")})


@app.route(route="public/ping", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ping(req: func.HttpRequest) -> str:
    return "pong"


@app.route(route="ops/reset", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def ops_reset(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"reset": True})


@app.route(route="echo", methods=["POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse(
        req.get_body(),
        status_code=201,
        headers={"x-echo": "yes", "content-type": req.headers.get("content-type", "text/plain")},
    )
    response.headers.add("set-cookie", "a=1")
    response.headers.add("set-cookie", "b=2")
    return response


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret-internal-detail")


@app.route(route="nothing", methods=["DELETE"])
def nothing(req: func.HttpRequest):  # type: ignore[no-untyped-def]
    # Unannotated on purpose: the worker refuses `-> None` on an HTTP function at load time.
    return None


@app.route(route="async/hello", methods=["GET"])
async def async_hello(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"hello": req.params.get("name", "world")})


@app.route(route="context", methods=["GET"])
def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    log.info("inside with_context")
    return _json(
        {
            "invocation_id": context.invocation_id,
            "function_name": context.function_name,
            "function_directory": context.function_directory,
            "traceparent": context.trace_context.trace_parent,
        }
    )


@app.route(route="settings/{name}", methods=["GET"])
def read_setting(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"value": os.environ.get(req.route_params["name"])})


@app.route(route="slow", methods=["GET"])
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(float(req.params.get("seconds", "1")))
    return func.HttpResponse("finally")
