"""The Business Central API surface: one endpoint that guards, routes and answers.

Every API request passes the same gate, in this order: injected throttling, injected
outage, the per-principal limits, injected latency, injected random errors. Only then is it
routed. Control routes (``/_sim/*``) live elsewhere and never pass this gate.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from devtools.erp_sim import writes
from devtools.erp_sim.bodies import (
    AvailabilityCreate,
    AvailabilityPatch,
    CustomerCreate,
    CustomerPatch,
    ItemCreate,
    ItemPatch,
    PriceListLineCreate,
    PriceListLinePatch,
    SalesDocumentPatch,
    SalesLineCreate,
    SalesLinePatch,
    SalesOrderCreate,
    SalesQuoteCreate,
    SubscriptionCreate,
    SubscriptionPatch,
    parse_body,
)
from devtools.erp_sim.dataset import Dataset
from devtools.erp_sim.documents import (
    KINDS,
    ORDER,
    DocumentKind,
    Rules,
    add_line,
    create_document,
    delete_document,
    with_lines,
)
from devtools.erp_sim.errors import (
    ApiError,
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    Throttled,
)
from devtools.erp_sim.fulfilment import change_line, delete_line, ship_and_invoice
from devtools.erp_sim.listing import (
    QueryOptions,
    parse_options,
    read_collection,
    read_small_collection,
    shape_entity,
)
from devtools.erp_sim.reference import COMPANY_ID, company_row
from devtools.erp_sim.responses import LostResponse, ODataJSON, error_response
from devtools.erp_sim.routing import Segment, Target, api_prefix, entity_set_spec, parse_target
from devtools.erp_sim.schema import POSTED_DOCUMENTS, SPECS, EntitySetSpec
from devtools.erp_sim.state import SimulatorState
from devtools.erp_sim.store import Row
from devtools.erp_sim.subscribing import check_resource, validate_url

# Entity set -> (create body, create), (patch body, patch), delete.
_CREATE: dict[str, tuple[type[BaseModel], Callable[[Dataset, Any], Row]]] = {
    "items": (ItemCreate, writes.create_item),
    "customers": (CustomerCreate, writes.create_customer),
    "priceListLines": (PriceListLineCreate, writes.create_price_line),
    "itemAvailabilityByLocation": (AvailabilityCreate, writes.create_availability),
}
_PATCH: dict[str, tuple[type[BaseModel], Callable[[Dataset, Row, Any], Row]]] = {
    "items": (ItemPatch, writes.patch_item),
    "customers": (CustomerPatch, writes.patch_customer),
    "priceListLines": (PriceListLinePatch, writes.patch_price_line),
    "itemAvailabilityByLocation": (AvailabilityPatch, writes.patch_availability),
}
_DELETE: dict[str, Callable[[Dataset, Row], None]] = {
    "items": writes.delete_item,
    "customers": writes.delete_customer,
    "priceListLines": writes.delete_price_line,
    "itemAvailabilityByLocation": writes.delete_availability,
}


async def api_endpoint(request: Request) -> Response:
    sim: SimulatorState = request.app.state.sim
    stats = sim.stats
    stats.arrived()
    entity_name, status = "unknown", 500
    principal = _principal(request)
    admitted = False
    try:
        try:
            target = parse_target(_origin(request), _raw_path(request))
            entity_name = target.stats_name
            faults = sim.faults
            if faults.throttle:
                raise Throttled("Too many requests (simulated throttling).", 1)
            if faults.outage:
                stats.outage_refusals += 1
                raise ServiceUnavailable(
                    "The service is temporarily unavailable (simulated outage)."
                )
            if request.method in ("POST", "PATCH", "PUT"):
                # Received in full before it queues, as by BC's front end: a queued request
                # is processed even when its caller has stopped waiting.
                await request.body()
            refusal = await sim.limiter.acquire(principal)
            if refusal is not None and refusal.status == 503:
                raise ServiceUnavailable(refusal.reason)
            if refusal is not None:
                raise Throttled(refusal.reason, refusal.retry_after)
            admitted = True
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if faults.random_failure():
                stats.injected_errors += 1
                raise InternalError("An unexpected error occurred (simulated).")
            response = await _dispatch(sim, request, target)
        except ApiError as error:
            response = error_response(error)
        status = 0 if isinstance(response, LostResponse) else response.status_code
        return response
    finally:
        if admitted:
            sim.limiter.release(principal)
        stats.finished(entity_name, request.method, status)


def _principal(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return "anonymous"
    return principal_of_token(token)


def principal_of_token(token: str) -> str:
    """Who a bearer token speaks for: Business Central counts its limits per user or app,
    not per token, so two tokens of one Entra app (a refresh) share one budget. An Entra
    token is a JWT whose claims name the app (``appid``/``azp``) and the object (``oid``);
    the simulator reads them without checking the signature. Any other token is its own
    principal (static tokens in tests)."""
    parts = token.split(".")
    if len(parts) == 3:
        try:
            padded = parts[1] + "=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(padded))
        except (ValueError, binascii.Error):
            claims = None
        if isinstance(claims, dict):
            tenant = str(claims.get("tid", ""))
            for claim in ("oid", "appid", "azp"):
                if isinstance(claims.get(claim), str) and claims[claim]:
                    return f"{tenant}/{claim}:{claims[claim]}"
    return token


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        return raw.decode("latin-1").split("?", 1)[0]
    return str(request.scope["path"])


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise BadRequest("The request body is empty.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from exc


def _refuse_method(method: str, name: str, entity_type: str) -> MethodNotAllowed:
    return MethodNotAllowed(
        f"'{method}' requests for '{name}' of EntityType '{entity_type}' are not allowed within "
        "Microsoft Dynamics 365 Business Central OData web services."
    )


# ---- routing ------------------------------------------------------------------------------


async def _dispatch(sim: SimulatorState, request: Request, target: Target) -> Response:
    method = request.method
    if target.company_id is None and not target.segments:
        if method != "GET":
            raise _refuse_method(method, "companies", "company")
        return ODataJSON({"@odata.context": target.context("companies"), "value": [company_row()]})
    if target.segments and target.segments[0].name == "subscriptions":
        return await _subscriptions(sim, request, target, target.segments[0])
    if target.company_id != COMPANY_ID:
        raise NotFound(f"Resource not found for the segment 'companies({target.company_id})'.")
    if not target.segments:
        if method != "GET":
            raise _refuse_method(method, "companies", "company")
        return ODataJSON({"@odata.context": target.context("$entity"), **company_row()})
    head = target.segments[0]
    spec = entity_set_spec(target, head)
    dataset = sim.dataset
    if len(target.segments) == 1:
        if head.key is None:
            return await _collection(sim, dataset, request, target, spec)
        return await _entity(sim, dataset, request, target, spec, head.key)
    if len(target.segments) == 2 and head.key is not None:
        return await _navigation(sim, dataset, request, target, spec, head.key, target.segments[1])
    raise NotFound(f"Resource not found for the segment '{target.segments[-1].name}'.")


def _options(sim: SimulatorState, request: Request, spec: EntitySetSpec) -> QueryOptions:
    expandable = (spec.lines,) if spec.lines else ()
    return parse_options(
        request.query_params,
        request.headers.get("prefer"),
        spec,
        sim.options.default_page_size,
        expandable,
    )


def _expander(dataset: Dataset, spec: EntitySetSpec) -> Callable[[Row], Row] | None:
    kind = KINDS.get(spec.name)
    if spec.name in POSTED_DOCUMENTS and spec.lines:
        lines_name = spec.lines
        return lambda row: {**row, lines_name: list(dataset.posted_lines.get(row["id"], ()))}
    if kind is None:
        return None
    return lambda row: with_lines(dataset, kind, row)


def _rules(sim: SimulatorState) -> Rules:
    return Rules(sim.options.credit_check, sim.options.reserve_on_order)


def _entity_response(
    target: Target, spec: EntitySetSpec, row: Row, status: int = 200, location: bool = False
) -> ODataJSON:
    headers = {"ETag": str(row.get("@odata.etag", ""))}
    if location:
        headers["Location"] = target.url(f"{spec.name}({row[spec.key]})")
    body = {"@odata.context": target.context(f"{spec.name}/$entity"), **row}
    return ODataJSON(body, status_code=status, headers=headers)


async def _collection(
    sim: SimulatorState, dataset: Dataset, request: Request, target: Target, spec: EntitySetSpec
) -> Response:
    method = request.method
    if method not in spec.methods or method not in ("GET", "POST"):
        raise _refuse_method(method, spec.name, spec.entity_type)
    if method == "GET":
        options = _options(sim, request, spec)
        body, headers = read_collection(
            dataset[spec.name],
            options,
            context=target.context(spec.name),
            request_url=f"{_origin(request)}{_raw_path(request)}",
            params=request.query_params,
            expand_rows=_expander(dataset, spec),
        )
        return ODataJSON(body, headers=headers)
    payload = await _json_body(request)
    kind = KINDS.get(spec.name)
    if kind is ORDER and sim.faults.commit_delay_ms:
        await asyncio.sleep(sim.faults.commit_delay_ms / 1000)
    if kind is not None:
        return _create_document(
            sim, dataset, target, spec, kind, payload, request.query_params.get("$expand")
        )
    model, create = _CREATE[spec.name]
    row = create(dataset, parse_body(model, payload, spec.entity_type))
    return _entity_response(target, spec, row, status=201, location=True)


def _create_document(
    sim: SimulatorState,
    dataset: Dataset,
    target: Target,
    spec: EntitySetSpec,
    kind: DocumentKind,
    payload: Any,
    request_expand: str | None = None,
) -> Response:
    body: SalesOrderCreate | SalesQuoteCreate
    if kind is ORDER:
        body = parse_body(SalesOrderCreate, payload, spec.entity_type)
    else:
        body = parse_body(SalesQuoteCreate, payload, spec.entity_type)
    header, lines = create_document(dataset, kind, body, _rules(sim), datetime.now(UTC).date())
    if kind is ORDER:
        lost = sim.faults.take_drop()
        if lost is not None:
            sim.stats.dropped_responses += 1
            if lost == "close":
                return LostResponse()
            raise InternalError("The connection to the server was lost (simulated, after commit).")
    # Like BC, the answer to a deep insert is the header alone unless $expand asks for lines.
    expand = (request_expand or "").replace(" ", "").split(",")
    shown = with_lines(dataset, kind, header) if lines and kind.lines_name in expand else header
    return _entity_response(target, spec, shown, status=201, location=True)


async def _entity(
    sim: SimulatorState,
    dataset: Dataset,
    request: Request,
    target: Target,
    spec: EntitySetSpec,
    key: str,
) -> Response:
    method = request.method
    if method not in spec.methods or method == "POST":
        raise _refuse_method(method, spec.name, spec.entity_type)
    row = dataset[spec.name].get(key.lower())
    if row is None:
        raise NotFound(f"The {spec.entity_type} with id '{key}' does not exist.")
    kind = KINDS.get(spec.name)
    if method == "GET":
        options = _options(sim, request, spec)
        return _entity_response(target, spec, shape_entity(row, options, _expander(dataset, spec)))
    writes.check_etag(row, request.headers.get("if-match"))
    if method == "DELETE":
        if kind is not None:
            delete_document(dataset, kind, row)
        else:
            _DELETE[spec.name](dataset, row)
        return Response(status_code=204)
    payload = await _json_body(request)
    if kind is not None:
        changes = parse_body(SalesDocumentPatch, payload, spec.entity_type).changes()
        dataset[spec.name].update(row, changes)
        dataset.touch(spec.name, row)
        return _entity_response(target, spec, row)
    model, patch = _PATCH[spec.name]
    return _entity_response(
        target, spec, patch(dataset, row, parse_body(model, payload, spec.entity_type))
    )


async def _navigation(
    sim: SimulatorState,
    dataset: Dataset,
    request: Request,
    target: Target,
    spec: EntitySetSpec,
    key: str,
    nav: Segment,
) -> Response:
    parent = dataset[spec.name].get(key.lower())
    if parent is None:
        raise NotFound(f"The {spec.entity_type} with id '{key}' does not exist.")
    method = request.method
    if spec.name == "customers" and nav.name == "customerFinancialDetails":
        if method != "GET":
            raise _refuse_method(method, nav.name, "customerFinancialDetail")
        detail_spec = SPECS[nav.name]
        detail = dataset.financial_detail(parent["number"])
        rows = [detail] if detail is not None else []
        if nav.key is not None:
            found = next((r for r in rows if r["id"] == nav.key.lower()), None)
            if found is None:
                raise NotFound(f"The customerFinancialDetail with id '{nav.key}' does not exist.")
            return _entity_response(target, detail_spec, found)
        options = _options(sim, request, detail_spec)
        context = target.context(f"customers({parent['id']})/{nav.name}")
        return ODataJSON(read_small_collection(rows, detail_spec, options, context=context))
    kind = KINDS.get(spec.name)
    if kind is ORDER and nav.name == "Microsoft.NAV.shipAndInvoice" and nav.key is None:
        if method != "POST":
            raise _refuse_method(method, nav.name, "salesOrder")
        ship_and_invoice(dataset, parent, datetime.now(UTC).date())
        return Response(status_code=204)
    if spec.name in POSTED_DOCUMENTS and nav.name == spec.lines:
        if method != "GET":
            raise _refuse_method(method, nav.name, SPECS[nav.name].entity_type)
        posted_spec = SPECS[nav.name]
        posted = sorted(dataset.posted_lines.get(parent["id"], ()), key=lambda r: r["sequence"])
        context = target.context(f"{spec.name}({parent['id']})/{nav.name}")
        return ODataJSON(
            read_small_collection(
                posted, posted_spec, _options(sim, request, posted_spec), context=context
            )
        )
    if kind is None or nav.name != kind.lines_name:
        raise NotFound(f"Resource not found for the segment '{nav.name}'.")
    line_spec = SPECS[nav.name]
    lines = sorted(dataset.lines.get(parent["id"], ()), key=lambda line: line["sequence"])
    if nav.key is not None:
        line = next((r for r in lines if r["id"] == nav.key.lower()), None)
        if line is None:
            raise NotFound(f"The {line_spec.entity_type} with id '{nav.key}' does not exist.")
        if method == "GET":
            return _entity_response(target, line_spec, line)
        if kind is not ORDER or method not in ("PATCH", "DELETE"):
            raise _refuse_method(method, nav.name, line_spec.entity_type)
        # Lines of an open sales order can be changed or deleted (If-Match as for headers).
        writes.check_etag(line, request.headers.get("if-match"))
        if method == "DELETE":
            delete_line(dataset, parent, line)
            return Response(status_code=204)
        patch = parse_body(SalesLinePatch, await _json_body(request), line_spec.entity_type)
        return _entity_response(
            target, line_spec, change_line(dataset, parent, line, patch.quantity)
        )
    if method == "GET":
        options = _options(sim, request, line_spec)
        context = target.context(f"{spec.name}({parent['id']})/{nav.name}")
        return ODataJSON(read_small_collection(lines, line_spec, options, context=context))
    if method != "POST":
        raise _refuse_method(method, nav.name, line_spec.entity_type)
    body = parse_body(SalesLineCreate, await _json_body(request), line_spec.entity_type)
    line = add_line(dataset, kind, parent, body, _rules(sim))
    return _entity_response(target, line_spec, line, status=201)


# ---- webhook subscriptions ----------------------------------------------------------------


async def _subscriptions(
    sim: SimulatorState, request: Request, target: Target, segment: Segment
) -> Response:
    spec = SPECS["subscriptions"]
    store = sim.subscriptions
    prefix = api_prefix(target)
    held = store.at_root(prefix)
    method = request.method
    if segment.key is None:
        if method == "GET":
            rows = sorted(held.values(), key=lambda row: row["subscriptionId"])
            options = _options(sim, request, spec)
            return ODataJSON(
                read_small_collection(rows, spec, options, context=target.context("subscriptions"))
            )
        if method != "POST":
            raise _refuse_method(method, "subscriptions", "subscription")
        body = parse_body(SubscriptionCreate, await _json_body(request), spec.entity_type)
        check_resource(body.resource, prefix, target.api)
        if sim.options.subscription_handshake:
            await validate_url(str(body.notificationUrl))
        created = store.create(body.notificationUrl, body.resource, body.clientState, prefix)
        return _entity_response(target, spec, created, status=201, location=True)
    row = held.get(segment.key)
    if row is None:
        raise NotFound(f"The subscription '{segment.key}' does not exist.")
    if method == "GET":
        return _entity_response(target, spec, row)
    if method not in ("PATCH", "DELETE"):
        raise _refuse_method(method, "subscriptions", "subscription")
    writes.check_etag(row, request.headers.get("if-match"))
    if method == "DELETE":
        store.remove(segment.key)
        return Response(status_code=204)
    changes = parse_body(SubscriptionPatch, await _json_body(request), spec.entity_type).changes()
    if "resource" in changes:
        check_resource(str(changes["resource"]), prefix, target.api)
    if sim.options.subscription_handshake:
        # Business Central validates the URL again on every renewal.
        await validate_url(str(changes.get("notificationUrl") or row["notificationUrl"]))
    return _entity_response(target, spec, store.renew(row, changes))
