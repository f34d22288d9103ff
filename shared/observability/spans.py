"""The spans of one order's path, and the attribute names they share.

One correlation id joins the hops (``app.correlation_id`` on every span, and
``messaging.message.conversation_id`` on messages, as OpenTelemetry names a correlation id);
one W3C trace joins them too: HTTP server -> Service Bus producer -> consumer -> booking ->
ERP client, each a child of the one before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from shared.observability.propagation import extract_from_headers

TRACER_NAME = "erpsync"
CORRELATION_ID = "app.correlation_id"
MESSAGING_SYSTEM = "servicebus"

Attributes = Mapping[str, AttributeValue]


def tracer() -> trace.Tracer:
    """The product's tracer (a no-op until a provider is configured)."""
    return trace.get_tracer(TRACER_NAME)


def has_active_span() -> bool:
    """True when a valid span is current, e.g. the host's invocation span under Azure."""
    return trace.get_current_span().get_span_context().is_valid


def _clean(attributes: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {name: value for name, value in attributes.items() if value is not None}


@contextmanager
def http_server_span(
    method: str, route: str, path: str, headers: Mapping[str, str], correlation_id: str
) -> Iterator[Span]:
    """The SERVER span of one HTTP invocation.

    Under the Functions host with worker telemetry on, the worker makes the host's invocation
    context current before calling us; the host has already continued the caller's
    ``traceparent``, so that context is the parent. Elsewhere (the local runner, tests) the
    request's own ``traceparent`` header is continued, or a trace starts here.
    """
    parent = None if has_active_span() else extract_from_headers(headers)
    attributes = {
        "http.request.method": method,
        "http.route": route,
        "url.path": path,
        CORRELATION_ID: correlation_id,
    }
    with tracer().start_as_current_span(
        f"{method} {route}", context=parent, kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span


def record_http_status(span: Span, status: int) -> None:
    """A server span is an error only for 5xx: a 4xx is the caller's mistake, answered."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


@contextmanager
def producer_span(entity: str, message_id: str, correlation_id: str | None) -> Iterator[Span]:
    """The PRODUCER span of one Service Bus send; inject the trace context inside it."""
    attributes = _clean(
        {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "send",
            "messaging.destination.name": entity,
            "messaging.message.id": message_id,
            "messaging.message.conversation_id": correlation_id,
            CORRELATION_ID: correlation_id,
        }
    )
    with tracer().start_as_current_span(
        f"send {entity}", kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        yield span


@contextmanager
def consumer_span(
    entity: str,
    *,
    parent: Context | None,
    links: Sequence[Link] = (),
    attributes: Mapping[str, AttributeValue | None] | None = None,
) -> Iterator[Span]:
    """The CONSUMER span around a Service Bus trigger body (``parent=None``: the current
    context, i.e. the host's invocation span or a new trace)."""
    base: dict[str, AttributeValue | None] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "process",
        "messaging.destination.name": entity,
        **(attributes or {}),
    }
    with tracer().start_as_current_span(
        f"process {entity}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=list(links),
        attributes=_clean(base),
    ) as span:
        yield span


@contextmanager
def internal_span(name: str, attributes: Mapping[str, AttributeValue | None]) -> Iterator[Span]:
    """A step inside an invocation worth seeing on its own (booking one order)."""
    # Imported here: the ERP package imports this module (its client spans).
    from shared.observability.correlation import get_correlation_id

    with tracer().start_as_current_span(
        name,
        kind=SpanKind.INTERNAL,
        attributes=_clean({CORRELATION_ID: get_correlation_id(), **attributes}),
    ) as span:
        yield span


@contextmanager
def erp_client_span(
    method: str, entity_set: str, attempt: int, correlation_id: str
) -> Iterator[Span]:
    """The CLIENT span of one HTTP attempt at Business Central (a retry is a new span)."""
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method,
        "erp.entity_set": entity_set,
        "erp.attempt": attempt,
        "http.request.resend_count": attempt - 1,
        "server.system": "business-central",
        CORRELATION_ID: correlation_id,
    }
    with tracer().start_as_current_span(
        f"{method} {entity_set}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span


def record_erp_status(span: Span, status: int) -> None:
    """Status and throttling of an ERP answer; 4xx other than 429 is an answer, not a fault
    of the call, but it still marks the client span as an error as HTTP conventions say."""
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("erp.throttled", status == 429)
    if status >= 400:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
