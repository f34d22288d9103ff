"""The credit check (storefront, function key)."""

from __future__ import annotations

import azure.functions as func

from functions.http import HttpProblem, http_endpoint, json_response, parse_body
from shared.bootstrap import get_services
from shared.services.credit_check import CreditCheckRequest, CurrencyNotConvertible, check_credit
from shared.services.credit_figures import CreditUnavailable, CustomerNotFound
from shared.services.orders_context import order_context

bp = func.Blueprint()


@bp.function_name("credit_check")
@bp.route(route="credit/check", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@http_endpoint
async def check(req: func.HttpRequest) -> func.HttpResponse:
    request = parse_body(req, CreditCheckRequest)
    try:
        answer = await check_credit(order_context(get_services()), request)
    except CustomerNotFound:
        raise HttpProblem(404, "Unknown customer", f"no customer {request.customer_id}") from None
    except CreditUnavailable as unavailable:
        raise HttpProblem(
            503,
            "Credit cannot be checked now",
            unavailable.detail,
            headers={"Retry-After": str(unavailable.retry_after_seconds)},
        ) from None
    except CurrencyNotConvertible as error:
        raise HttpProblem(
            422,
            "Invalid request",
            "the amount cannot be converted to the local currency exactly",
            violations=[
                {
                    "rule": "currency-not-convertible",
                    "field": "currency",
                    "detail": f"no published exchange rate for {error} today",
                }
            ],
        ) from None
    return json_response(answer)
