"""Trace spans for the triggers: one SERVER span per HTTP invocation, one CONSUMER span per
Service Bus invocation, with the correlation id on each and as the correlation scope.

Handlers keep their one-parameter signatures (``req`` / ``msg``): under the Functions host the
worker already makes the host's trace context current (see shared/telemetry/setup.py), so
the functions do not need the ``context`` argument to continue the host's trace.

Service Bus: a single message's CONSUMER span is a child of the context the sender put in the
message's application properties, so one order is one trace from intake to booking; the
host's invocation span, when there is one in another trace, is a link. A batch has one span
linked to every message's context (a span has only one parent). A ``DeadLetter`` leaving the
body is counted (``erpsync.dead_letters``) by queue and reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from urllib.parse import unquote, urlsplit

import azure.functions as func
from opentelemetry import trace
from opentelemetry.trace import Link, Span, Status, StatusCode

from functions.messages import DeadLetter
from shared.adapters.erp.correlation import correlation_scope, get_correlation_id
from shared.telemetry import metrics
from shared.telemetry.propagation import extract_from_properties, span_context_of
from shared.telemetry.spans import consumer_span, has_active_span, http_server_span

MessageTrigger = Callable[[func.ServiceBusMessage], Awaitable[None]]
BatchTrigger = Callable[[list[func.ServiceBusMessage]], Awaitable[None]]


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
    """The SERVER span of one HTTP invocation (see ``shared.telemetry.spans``)."""
    path = urlsplit(req.url).path or "/"
    route = route_template(path, dict(req.route_params or {}))
    with http_server_span(req.method, route, path, req.headers, correlation_id) as span:
        yield span


def _correlation_id_of(msg: func.ServiceBusMessage) -> str | None:
    return msg.correlation_id or get_correlation_id() or msg.message_id or None


def _message_attributes(msg: func.ServiceBusMessage) -> dict[str, str | int | None]:
    correlation_id = _correlation_id_of(msg)
    return {
        "messaging.message.id": msg.message_id,
        "messaging.message.conversation_id": correlation_id,
        "messaging.servicebus.message.delivery_count": msg.delivery_count,
        "app.correlation_id": correlation_id,
    }


def _host_link() -> list[Link]:
    if not has_active_span():
        return []
    return [Link(trace.get_current_span().get_span_context())]


def _message_ids(error: DeadLetter, count: int) -> int:
    named = getattr(error, "message_ids", None)
    return len(named) if named else count


async def _run_traced(
    queue: str, count: int, body: Callable[[], Awaitable[None]], span: Span
) -> None:
    try:
        await body()
    except DeadLetter as error:
        dead = _message_ids(error, count)
        metrics.dead_lettered(queue, error.reason, dead)
        metrics.event_processed(queue, "dead-lettered", dead)
        metrics.event_processed(queue, "abandoned", count - dead)
        span.set_attribute("app.dead_letter_reason", error.reason)
        span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {error.reason}"))
        raise
    except BaseException:
        metrics.event_processed(queue, "abandoned", count)
        raise
    metrics.event_processed(queue, "completed", count)


def traced_message(queue: str) -> Callable[[MessageTrigger], MessageTrigger]:
    """Decorate a single-message Service Bus trigger (under the ``bp`` decorators)."""

    def decorate(handler: MessageTrigger) -> MessageTrigger:
        @wraps(handler)
        async def wrapper(msg: func.ServiceBusMessage) -> None:
            sent_from = extract_from_properties(msg.application_properties)
            from_sender = span_context_of(sent_from).is_valid
            correlation_id = _correlation_id_of(msg)
            with consumer_span(
                queue,
                parent=sent_from if from_sender else None,
                links=_host_link() if from_sender else [],
                attributes=_message_attributes(msg),
            ) as span:
                if correlation_id is None:
                    await _run_traced(queue, 1, lambda: handler(msg), span)
                    return
                with correlation_scope(correlation_id):
                    await _run_traced(queue, 1, lambda: handler(msg), span)

        return wrapper

    return decorate


def _links_of(msgs: Sequence[func.ServiceBusMessage]) -> list[Link]:
    links: list[Link] = []
    for msg in msgs:
        context = span_context_of(extract_from_properties(msg.application_properties))
        if context.is_valid:
            links.append(Link(context, {"messaging.message.id": msg.message_id or ""}))
    return links


def traced_batch(queue: str) -> Callable[[BatchTrigger], BatchTrigger]:
    """Decorate a batch (``cardinality=MANY``) Service Bus trigger: links per message."""

    def decorate(handler: BatchTrigger) -> BatchTrigger:
        @wraps(handler)
        async def wrapper(msgs: list[func.ServiceBusMessage]) -> None:
            with consumer_span(
                queue,
                parent=None,
                links=_links_of(msgs),
                attributes={"messaging.batch.message_count": len(msgs)},
            ) as span:
                await _run_traced(queue, len(msgs), lambda: handler(msgs), span)

        return wrapper

    return decorate
