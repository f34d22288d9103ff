"""The credit check (storefront, function key)."""

from __future__ import annotations

import azure.functions as func

from functions.http import http_endpoint, model_response, parse_body
from functions.openapi import Reply, documented, problem
from shared.bootstrap import get_services, order_context
from shared.services.credit.check import (
    CreditAnswer,
    CreditCheckRequest,
    check_credit,
)

bp = func.Blueprint()


@bp.function_name("credit_check")
@bp.route(route="credit/check", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@documented(
    "May this customer take on this amount, and why (not)",
    tag="credit",
    description="Live ERP figures plus this product's accepted but unbooked orders.",
    body=CreditCheckRequest,
    replies={
        200: Reply("The decision, the figures behind it and the reasons.", CreditAnswer),
        404: problem("No such customer."),
        422: problem("Invalid request, or no exchange rate to convert the amount exactly."),
        503: problem("The ERP is down and no recent figures are known.", **{"Retry-After": "s"}),
    },
)
@http_endpoint
async def check(req: func.HttpRequest) -> func.HttpResponse:
    request = parse_body(req, CreditCheckRequest)
    answer = await check_credit(order_context(get_services()), request)
    return model_response(CreditAnswer, answer)
