"""B2B self-service: a customer's orders, invoices and shipments, live from the ERP.

Function key (the storefront) plus ``x-customer-token`` (which customer the storefront's
signed-in user belongs to; ``shared/domain/orders/customer_token.py``): a token for another
customer than the path's is refused 403, so a storefront user only ever sees their own
customer's documents.
"""

from __future__ import annotations

import json
import time
from typing import Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions.http import HttpProblem, http_endpoint, model_response, validate
from functions.openapi import Reply, documented, problem
from shared.bootstrap import get_services, history_deps
from shared.config.settings import get_settings
from shared.domain.orders.customer_token import (
    MAX_TOKEN_LENGTH,
    InvalidCustomerToken,
    verify,
)
from shared.services.orders import history

bp = func.Blueprint()
TOKEN_HEADER = "x-customer-token"


class CustomerTokenHeader(BaseModel):
    """``x-customer-token``: v1.{channel}.{customer base64url}.{expires}.{hex HMAC-SHA256}."""

    model_config = ConfigDict(populate_by_name=True)

    token: str = Field(alias=TOKEN_HEADER, min_length=1, max_length=MAX_TOKEN_LENGTH)


_REPLIES_COMMON = {
    400: problem("A bad query or continuation token."),
    401: problem("No valid x-customer-token."),
    403: problem("The token proves another customer."),
    404: problem("No such customer."),
    503: problem("The ERP cannot be read; retry.", **{"Retry-After": "s"}),
}
_DESCRIPTION = (
    "Live from the ERP's read replica, cached for the sync policy's `orders.historyCache` "
    "(`dataAsOf`, `stale` as for prices). Paged: `pageSize` (at most "
    f"{history.MAX_PAGE_SIZE}) and the `continuation` of the previous page. The storefront "
    "proves which customer its user belongs to with `x-customer-token` (docs/contract: signed "
    "customer token); a token for another customer is refused 403."
)


def _secrets() -> dict[str, bytes]:
    # The channels' shared secrets (CHANNEL_SECRETS), the ones catalog webhooks are signed with.
    secrets: dict[str, str] = json.loads(get_settings().channel_secrets.get_secret_value())
    return {channel: secret.encode("utf-8") for channel, secret in secrets.items()}


def _query(req: func.HttpRequest) -> history.HistoryQuery:
    query = validate({**dict(req.params), **dict(req.route_params)}, history.HistoryQuery)
    try:
        proof = verify(req.headers.get(TOKEN_HEADER), _secrets(), int(time.time()))
    except InvalidCustomerToken as error:
        raise HttpProblem(401, "Unauthorized", f"customer token refused: {error}") from None
    if proof.customer_id != query.customer_id:
        raise HttpProblem(403, "Forbidden", "the customer token is for another customer")
    return query


async def _answer(
    req: func.HttpRequest, kind: history.Kind, model: type[history.HistoryAnswer]
) -> func.HttpResponse:
    query = _query(req)
    # An unknown customer (404) and an unreadable ERP (503) are the services' errors, which
    # http_endpoint renders; a continuation token is input, so refusing it is this layer's 400.
    try:
        body: dict[str, Any] = await history.history_page(history_deps(get_services()), kind, query)
    except history.BadContinuation as error:
        raise HttpProblem(400, "Bad request", str(error)) from None
    return model_response(model, body)


@bp.function_name("customer_orders")
@bp.route(
    route="customers/{customerId}/orders", methods=["GET"], auth_level=func.AuthLevel.FUNCTION
)
@documented(
    "A customer's open sales orders in the ERP (any channel)",
    tag="b2b",
    description=_DESCRIPTION,
    params=history.HistoryQuery,
    headers=CustomerTokenHeader,
    replies={200: Reply("One page of orders.", history.OrdersHistory), **_REPLIES_COMMON},
)
@http_endpoint
async def customer_orders(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer(req, "orders", history.OrdersHistory)


@bp.function_name("customer_invoices")
@bp.route(
    route="customers/{customerId}/invoices", methods=["GET"], auth_level=func.AuthLevel.FUNCTION
)
@documented(
    "A customer's posted invoices: overdue first, then open, then paid",
    tag="b2b",
    description=_DESCRIPTION,
    params=history.HistoryQuery,
    headers=CustomerTokenHeader,
    replies={200: Reply("One page of invoices.", history.InvoicesHistory), **_REPLIES_COMMON},
)
@http_endpoint
async def customer_invoices(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer(req, "invoices", history.InvoicesHistory)


@bp.function_name("customer_shipments")
@bp.route(
    route="customers/{customerId}/shipments", methods=["GET"], auth_level=func.AuthLevel.FUNCTION
)
@documented(
    "A customer's posted shipments",
    tag="b2b",
    description=_DESCRIPTION,
    params=history.HistoryQuery,
    headers=CustomerTokenHeader,
    replies={200: Reply("One page of shipments.", history.ShipmentsHistory), **_REPLIES_COMMON},
)
@http_endpoint
async def customer_shipments(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer(req, "shipments", history.ShipmentsHistory)
