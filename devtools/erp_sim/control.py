"""Control routes under ``/_sim/``: reset, limits, faults, stats, config, pricing, webhooks.

Their names and bodies are a contract external test suites use. They are never throttled
or faulted, and they answer errors in the same envelope as the API.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devtools.erp_sim import fulfilment
from devtools.erp_sim.bodies import (
    ConfigBody,
    CreditMemoBody,
    FaultsBody,
    FinancialsBody,
    HistoryBody,
    HoldBody,
    LimitsBody,
    NotifyBody,
    PayBody,
    PriceQuery,
    ResetBody,
    ShipBody,
    StatusBody,
    parse_body,
)
from devtools.erp_sim.errors import ApiError, BadRequest, NotFound
from devtools.erp_sim.faults import Faults
from devtools.erp_sim.limits import LimitSettings
from devtools.erp_sim.numbers import decimal_text
from devtools.erp_sim.pricing import (
    PriceRequest,
    PricingError,
    UnknownCustomer,
    UnknownItem,
    calculate,
)
from devtools.erp_sim.reference import COMPANY_ID, company_row
from devtools.erp_sim.responses import error_response
from devtools.erp_sim.state import SimulatorState, build_dataset
from devtools.erp_sim.webhooks import deliver
from devtools.erp_sim.writes import set_financials

Handler = Callable[[Request], Awaitable[Response]]

ModelT = TypeVar("ModelT", bound=BaseModel)


def _control(handler: Callable[[Request, SimulatorState], Awaitable[Any]]) -> Handler:
    """Wrap a control handler: hand it the state, turn errors into the error envelope."""

    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request, request.app.state.sim)
        except ApiError as error:
            return error_response(error)
        return result if isinstance(result, Response) else JSONResponse(result)

    endpoint.__name__ = handler.__name__
    return endpoint


async def _body(request: Request, model: type[ModelT]) -> ModelT:
    raw = await request.body()
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from exc
    return parse_body(model, payload)


def _info(request: Request, sim: SimulatorState) -> dict[str, Any]:
    origin = f"{request.url.scheme}://{request.url.netloc}"
    dataset = sim.dataset
    return {
        "company": company_row(),
        "seed": dataset.seed,
        "items": sim.options.items,
        "customers": sim.options.customers,
        "anchorDate": dataset.anchor.isoformat(),
        "counts": dataset.counts(),
        "config": _config_json(sim),
        "limits": sim.limiter.settings.as_json(),
        "faults": sim.faults.as_json(),
        "fixtures": dataset.fixtures.as_json(),
        "exampleUrls": {
            "standard": f"{origin}/v2.0/local/sandbox/api/v2.0/companies({COMPANY_ID})/items",
            "custom": (
                f"{origin}/v2.0/local/sandbox/api/contoso/commerceSync/v1.0/"
                f"companies({COMPANY_ID})/priceListLines"
            ),
        },
    }


def _config_json(sim: SimulatorState) -> dict[str, Any]:
    return {
        "creditCheck": sim.options.credit_check,
        "reserveOnOrder": sim.options.reserve_on_order,
        "defaultPageSize": sim.options.default_page_size,
        "subscriptionHandshake": sim.options.subscription_handshake,
    }


@_control
async def health(request: Request, sim: SimulatorState) -> dict[str, Any]:
    return {"status": "ok", "companyId": COMPANY_ID}


@_control
async def info(request: Request, sim: SimulatorState) -> dict[str, Any]:
    return _info(request, sim)


@_control
async def reset(request: Request, sim: SimulatorState) -> dict[str, Any]:
    body = await _body(request, ResetBody)
    options = replace(
        sim.options,
        seed=sim.options.seed if body.seed is None else body.seed,
        items=sim.options.items if body.items is None else body.items,
        customers=sim.options.customers if body.customers is None else body.customers,
        anchor=body.anchorDate if body.anchorDate is not None else sim.options.anchor,
    )
    async with sim.reset_lock:
        # Generation takes seconds at full scale: build off the loop, then swap at once.
        dataset = await run_in_threadpool(build_dataset, options)
        sim.reset(options, dataset)
    return _info(request, sim)


@_control
async def limits(request: Request, sim: SimulatorState) -> dict[str, Any]:
    if request.method == "POST":
        body = await _body(request, LimitsBody)
        current = sim.limiter.settings
        sim.limiter.configure(
            LimitSettings(
                max_concurrent=body.maxConcurrent or current.max_concurrent,
                requests_per_window=body.requestsPerWindow or current.requests_per_window,
                window_seconds=body.windowSeconds or current.window_seconds,
                queue_size=current.queue_size if body.queueSize is None else body.queueSize,
                queue_timeout_seconds=(body.queueTimeoutSeconds or current.queue_timeout_seconds),
            )
        )
        sim.limiter.clear()
    return sim.limiter.settings.as_json()


@_control
async def hold(request: Request, sim: SimulatorState) -> dict[str, Any]:
    body = await _body(request, HoldBody)
    sim.limiter.hold(body.principal, body.slots, body.seconds)
    return {"principal": body.principal, "slots": body.slots, "seconds": body.seconds}


@_control
async def faults(request: Request, sim: SimulatorState) -> dict[str, Any]:
    if request.method == "POST":
        # The body replaces the whole fault setup: what it leaves out is switched off.
        body = await _body(request, FaultsBody)
        sim.faults = Faults(
            latency_ms=body.latencyMs,
            error_rate=body.errorRate,
            outage=body.outage,
            throttle=body.throttle,
            drop_response_after_commit=body.dropResponseAfterCommit,
            drop_mode=body.dropMode,
            commit_delay_ms=body.commitDelayMs,
            rng=sim.faults.rng,
        )
    return sim.faults.as_json()


@_control
async def stats(request: Request, sim: SimulatorState) -> dict[str, Any]:
    return {
        **sim.stats.as_json(),
        "queued": sim.limiter.queued(),
        "queuedMax": sim.limiter.queued_max,
    }


@_control
async def stats_reset(request: Request, sim: SimulatorState) -> dict[str, Any]:
    sim.stats.reset()
    return sim.stats.as_json()


@_control
async def config(request: Request, sim: SimulatorState) -> dict[str, Any]:
    if request.method == "POST":
        body = await _body(request, ConfigBody)
        sim.options = replace(
            sim.options,
            credit_check=sim.options.credit_check if body.creditCheck is None else body.creditCheck,
            reserve_on_order=(
                sim.options.reserve_on_order if body.reserveOnOrder is None else body.reserveOnOrder
            ),
            default_page_size=body.defaultPageSize or sim.options.default_page_size,
            subscription_handshake=(
                sim.options.subscription_handshake
                if body.subscriptionHandshake is None
                else body.subscriptionHandshake
            ),
        )
    return _config_json(sim)


@_control
async def price(request: Request, sim: SimulatorState) -> dict[str, Any]:
    query = parse_body(PriceQuery, dict(request.query_params))
    on_date = query.on_date or datetime.now(UTC).date()
    try:
        result = calculate(
            sim.dataset,
            PriceRequest(
                customer_number=query.customerNumber,
                item_number=query.itemNumber,
                quantity=query.quantity,
                currency_code=query.currencyCode,
                unit_of_measure_code=query.unitOfMeasureCode,
                on_date=on_date,
            ),
        )
    except (UnknownCustomer, UnknownItem) as exc:
        raise NotFound(str(exc)) from exc
    except PricingError as exc:
        raise BadRequest(str(exc)) from exc
    return {
        "unitPrice": decimal_text(result.unit_price, 2),
        "lineDiscountPercent": decimal_text(result.line_discount_percent),
        "lineAmount": str(result.line_amount),
        "priceListCode": result.price_list_code,
        "listPrice": decimal_text(result.list_price, 2),
        "minimumQuantity": decimal_text(result.minimum_quantity),
        "currencyCode": result.currency_code,
        "unitOfMeasureCode": result.unit_of_measure_code,
        "date": on_date.isoformat(),
    }


@_control
async def notify(request: Request, sim: SimulatorState) -> dict[str, Any]:
    body = await _body(request, NotifyBody)
    store = sim.subscriptions
    if body.subscriptionId is not None:
        row = store.rows.get(body.subscriptionId)
        if row is None:
            raise NotFound(f"The subscription '{body.subscriptionId}' does not exist.")
        targets = [row]
    else:
        wanted = body.resource.strip("/") if body.resource else None
        targets = [
            row for row in store.active() if wanted is None or row["resource"].strip("/") == wanted
        ]
    deliveries = await deliver(
        store,
        targets,
        change_type=body.changeType,
        entity_id=body.entityId,
        handshake=body.handshake,
        first_change=body.firstChange,
    )
    return {"deliveries": [delivery.as_json() for delivery in deliveries]}


@_control
async def financials(request: Request, sim: SimulatorState) -> dict[str, Any]:
    number = request.path_params["number"]
    customer = sim.dataset.customer(number)
    if customer is None:
        raise NotFound(f"The customer '{number}' does not exist.")
    body = await _body(request, FinancialsBody)
    return set_financials(sim.dataset, customer, body)


# ---- order fulfilment (no API action in Business Central for these) -------------------------


def _today() -> Any:
    return datetime.now(UTC).date()


@_control
async def order_status(request: Request, sim: SimulatorState) -> dict[str, Any]:
    """Release, reopen or send an order for approval (BC's Sales Header status)."""
    body = await _body(request, StatusBody)
    header = fulfilment.find_order(sim.dataset, request.path_params["key"])
    return dict(fulfilment.set_status(sim.dataset, header, body.status))


@_control
async def order_ship(request: Request, sim: SimulatorState) -> dict[str, Any]:
    """Post a (partial) shipment with shipping agent and tracking number, optionally invoiced."""
    body = await _body(request, ShipBody)
    dataset = sim.dataset
    header = fulfilment.find_order(dataset, request.path_params["key"])
    quantities = None
    if body.lines is not None:
        by_sequence = {line["sequence"]: line["id"] for line in dataset.lines.get(header["id"], ())}
        quantities = {}
        for line in body.lines:
            line_id = str(line.lineId) if line.lineId else by_sequence.get(line.sequence or -1)
            if line_id is None:
                raise BadRequest(f"The order has no line with sequence {line.sequence}.")
            quantities[line_id] = quantities.get(line_id, 0) + line.quantity
    shipment = fulfilment.ship(
        dataset,
        header,
        quantities,
        shipping_agent=body.shippingAgentCode,
        tracking_number=body.packageTrackingNumber,
        today=_today(),
    )
    answer: dict[str, Any] = {"shipment": shipment}
    if body.invoice:
        answer["invoice"] = fulfilment.invoice(dataset, header, _today())
    return answer


@_control
async def order_invoice(request: Request, sim: SimulatorState) -> dict[str, Any]:
    """Post an invoice for what was shipped and not yet invoiced."""
    header = fulfilment.find_order(sim.dataset, request.path_params["key"])
    return {"invoice": fulfilment.invoice(sim.dataset, header, _today())}


@_control
async def invoice_pay(request: Request, sim: SimulatorState) -> dict[str, Any]:
    body = await _body(request, PayBody)
    key = request.path_params["key"]
    invoices = sim.dataset[fulfilment.INVOICES]
    row = invoices.get(key.lower()) or invoices.find_one("number", key.upper())
    if row is None:
        raise NotFound(f"The sales invoice '{key}' does not exist.")
    return dict(fulfilment.pay(sim.dataset, row, body.amount))


@_control
async def invoice_credit_memo(request: Request, sim: SimulatorState) -> dict[str, Any]:
    body = await _body(request, CreditMemoBody)
    key = request.path_params["key"]
    invoices = sim.dataset[fulfilment.INVOICES]
    row = invoices.get(key.lower()) or invoices.find_one("number", key.upper())
    if row is None:
        raise NotFound(f"The sales invoice '{key}' does not exist.")
    quantities = None
    if body.lines is not None:
        quantities = {line.sequence: line.quantity for line in body.lines}
    return {"creditMemo": fulfilment.credit_memo(sim.dataset, row, quantities, _today())}


@_control
async def history(request: Request, sim: SimulatorState) -> dict[str, Any]:
    number = request.path_params["number"]
    customer = sim.dataset.customer(number)
    if customer is None:
        raise NotFound(f"The customer '{number}' does not exist.")
    body = await _body(request, HistoryBody)
    return fulfilment.generate_history(
        sim.dataset,
        customer,
        orders=body.orders,
        shipments=body.shipments,
        invoices=body.invoices,
        paid_share=body.paidShare,
        today=_today(),
    )
