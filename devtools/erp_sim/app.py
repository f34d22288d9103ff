"""The Starlette application: the Business Central API routes plus the ``/_sim/`` controls."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devtools.erp_sim import control
from devtools.erp_sim.api import api_endpoint
from devtools.erp_sim.errors import ApiError, MethodNotAllowed, NotFound
from devtools.erp_sim.responses import error_response
from devtools.erp_sim.state import SimulatorOptions, SimulatorState

_API_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error: ApiError
    if status == 405:
        error = MethodNotAllowed(f"The method '{request.method}' is not allowed here.")
    elif status == 404:
        error = NotFound(
            f"No HTTP resource was found that matches the request URI '{request.url.path}'."
        )
    else:
        error = ApiError(str(exc), status=status, code="Error")
    return error_response(error)


def create_app(
    options: SimulatorOptions | None = None, state: SimulatorState | None = None
) -> Starlette:
    """Build the app around ``state`` (or fresh state generated from ``options``)."""
    sim = state or SimulatorState(options or SimulatorOptions())
    routes = [
        Route("/_sim/health", control.health, methods=["GET"]),
        Route("/_sim/info", control.info, methods=["GET"]),
        Route("/_sim/reset", control.reset, methods=["POST"]),
        Route("/_sim/limits", control.limits, methods=["GET", "POST"]),
        Route("/_sim/hold", control.hold, methods=["POST"]),
        Route("/_sim/faults", control.faults, methods=["GET", "POST"]),
        Route("/_sim/stats", control.stats, methods=["GET"]),
        Route("/_sim/stats/reset", control.stats_reset, methods=["POST"]),
        Route("/_sim/config", control.config, methods=["GET", "POST"]),
        Route("/_sim/price", control.price, methods=["GET"]),
        Route("/_sim/notify", control.notify, methods=["POST"]),
        Route("/_sim/customers/{number:path}/financials", control.financials, methods=["POST"]),
        Route("/_sim/customers/{number:path}/history", control.history, methods=["POST"]),
        Route("/_sim/salesOrders/{key}/status", control.order_status, methods=["POST"]),
        Route("/_sim/salesOrders/{key}/ship", control.order_ship, methods=["POST"]),
        Route("/_sim/salesOrders/{key}/invoice", control.order_invoice, methods=["POST"]),
        Route("/_sim/salesInvoices/{key}/pay", control.invoice_pay, methods=["POST"]),
        Route(
            "/_sim/salesInvoices/{key}/creditMemo", control.invoice_credit_memo, methods=["POST"]
        ),
        Route("/v2.0/{tenant}/{environment}/api/{rest:path}", api_endpoint, methods=_API_METHODS),
        Route("/V2.0/{tenant}/{environment}/api/{rest:path}", api_endpoint, methods=_API_METHODS),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _http_error, 405: _http_error})
    app.state.sim = sim
    return app
