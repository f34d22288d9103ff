"""W3C trace context through HTTP headers and Service Bus application properties.

Messages carry ``traceparent`` and ``tracestate`` plus ``Diagnostic-Id`` (the same value as
``traceparent``), the names the Azure SDKs and the Functions host read. They are written with
``bytes`` keys, as the Service Bus SDK writes them itself: when its own tracing is on it only
adds these keys when missing, so ours (the producer span's) are kept instead of duplicated.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
DIAGNOSTIC_ID = "Diagnostic-Id"
_W3C = TraceContextTextMapPropagator()


def trace_headers(context: Context | None = None) -> dict[str, str]:
    """``traceparent``/``tracestate`` of the current (or given) span; empty when there is none."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=context)
    return carrier


def inject_into_properties(
    properties: MutableMapping[str | bytes, Any], context: Context | None = None
) -> None:
    """Add the trace context to a message's application properties (nothing when untraced)."""
    headers = trace_headers(context)
    parent = headers.get(TRACEPARENT)
    if not parent:
        return
    properties[TRACEPARENT.encode()] = parent
    properties[DIAGNOSTIC_ID.encode()] = parent
    state = headers.get(TRACESTATE)
    if state:
        properties[TRACESTATE.encode()] = state


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    return None


def extract_from_properties(properties: Mapping[Any, Any] | None) -> Context:
    """The sender's context from application properties (str or bytes keys, any case).

    ``Diagnostic-Id`` is used when ``traceparent`` is missing and it holds a W3C id (older
    senders); an absent or malformed id gives an empty context, so a new trace starts.
    """
    found: dict[str, str] = {}
    for key, value in (properties or {}).items():
        name, text = _text(key), _text(value)
        if name is not None and text is not None:
            found[name.lower()] = text
    carrier = {TRACEPARENT: found.get(TRACEPARENT) or found.get(DIAGNOSTIC_ID.lower(), "")}
    if TRACESTATE in found:
        carrier[TRACESTATE] = found[TRACESTATE]
    return _W3C.extract(carrier)


def extract_from_headers(headers: Mapping[str, str]) -> Context:
    """The caller's context from HTTP headers (a case-insensitive mapping such as the
    Functions request headers)."""
    carrier = {
        name: value
        for name in (TRACEPARENT, TRACESTATE)
        if (value := headers.get(name)) is not None
    }
    return _W3C.extract(carrier)


def span_context_of(context: Context) -> trace.SpanContext:
    """The span context a ``Context`` carries (invalid when it carries none)."""
    return trace.get_current_span(context).get_span_context()
