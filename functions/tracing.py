"""Trace spans for the triggers: one SERVER span per HTTP invocation, one CONSUMER span per
Service Bus invocation, with the correlation id on each and as the correlation scope.

Handlers keep their one-parameter signatures (``req`` / ``msg``): under the Functions host the
worker already makes the host's trace context current (see shared/observability/setup.py), so
the functions do not need the ``context`` argument to continue the host's trace.

Service Bus: a single message's CONSUMER span is a child of the context the sender put in the
message's application properties, so one order is one trace from intake to booking; the
host's invocation span, when there is one in another trace, is a link. A batch has one span
linked to every message's context (a span has only one parent). A rejected message marks the
span with its dead-letter reason; counting and settling are ``functions.messages``' job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from urllib.parse import unquote, urlsplit

import azure.functions as func
from opentelemetry import trace
from opentelemetry.trace import Link, Span, Status, StatusCode

from functions.messages import (
    Received,
    Rejected,
    Rejection,
    correlation_id_of,
    message_id_of,
    properties_of,
)
from shared.observability.correlation import correlation_scope, get_correlation_id
from shared.observability.propagation import extract_from_properties, span_context_of
from shared.observability.spans import consumer_span, has_active_span, http_server_span

MessageTrigger = Callable[[Received], Awaitable[None]]
BatchTrigger = Callable[[list[Received]], Awaitable[Sequence[Rejection]]]


def route_template(path: str, route_params: dict[str, str]) -> str:
    """The path with route values put back as ``{name}``: a low-cardinality span name."""
    by_value = {value: name for name, value in route_params.items() if value}
    segments = [
        f"{{{by_value[unquote(part)]}}}" if unquote(part) in by_value else part
        for part in path.split("/")
    ]
    return "/".join(segments) or "/"


@contextmanager
def http_span(req: func.HttpRequest, correlation_id: str) -> Iterator[Span]:
    """The SERVER span of one HTTP invocation (see ``shared.observability.spans``)."""
    path = urlsplit(req.url).path or "/"
    route = route_template(path, dict(req.route_params or {}))
    with http_server_span(req.method, route, path, req.headers, correlation_id) as span:
        yield span


def _correlation_id_of(msg: Received) -> str | None:
    return correlation_id_of(msg) or get_correlation_id() or message_id_of(msg) or None


def _message_attributes(msg: Received) -> dict[str, str | int | None]:
    correlation_id = _correlation_id_of(msg)
    return {
        "messaging.message.id": message_id_of(msg),
        "messaging.message.conversation_id": correlation_id,
        "messaging.servicebus.message.delivery_count": msg.delivery_count,
        "app.correlation_id": correlation_id,
    }


def _host_link() -> list[Link]:
    if not has_active_span():
        return []
    return [Link(trace.get_current_span().get_span_context())]


def _mark_rejected(span: Span, reason: str) -> None:
    span.set_attribute("app.dead_letter_reason", reason)
    span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {reason}"))


def traced_message(queue: str) -> Callable[[MessageTrigger], MessageTrigger]:
    """Decorate a single-message Service Bus handler (inside ``settles_message``)."""

    def decorate(handler: MessageTrigger) -> MessageTrigger:
        @wraps(handler)
        async def wrapper(msg: Received) -> None:
            sent_from = extract_from_properties(properties_of(msg))
            from_sender = span_context_of(sent_from).is_valid
            correlation_id = _correlation_id_of(msg)
            with consumer_span(
                queue,
                parent=sent_from if from_sender else None,
                links=_host_link() if from_sender else [],
                attributes=_message_attributes(msg),
            ) as span:
                try:
                    if correlation_id is None:
                        await handler(msg)
                        return
                    with correlation_scope(correlation_id):
                        await handler(msg)
                except Rejected as rejected:
                    _mark_rejected(span, rejected.reason)
                    raise

        return wrapper

    return decorate


def _links_of(msgs: Sequence[Received]) -> list[Link]:
    links: list[Link] = []
    for msg in msgs:
        context = span_context_of(extract_from_properties(properties_of(msg)))
        if context.is_valid:
            links.append(Link(context, {"messaging.message.id": message_id_of(msg)}))
    return links


def traced_batch(queue: str) -> Callable[[BatchTrigger], BatchTrigger]:
    """Decorate a batch (``cardinality=MANY``) handler (inside ``settles_batch``)."""

    def decorate(handler: BatchTrigger) -> BatchTrigger:
        @wraps(handler)
        async def wrapper(msgs: list[Received]) -> Sequence[Rejection]:
            with consumer_span(
                queue,
                parent=None,
                links=_links_of(msgs),
                attributes={"messaging.batch.message_count": len(msgs)},
            ) as span:
                rejections = await handler(msgs)
                if rejections:
                    span.set_attribute("app.dead_lettered", len(rejections))
                    _mark_rejected(span, rejections[0].reason)
                return rejections

        return wrapper

    return decorate
