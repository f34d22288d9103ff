"""Trace context through message properties and ERP headers, the trigger spans, metrics, and
when telemetry is (not) configured. Spans go to an in-memory exporter in this process."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from functions.messages import Rejected, Rejection, settles_batch, settles_message
from functions.tracing import route_template, traced_batch, traced_message
from shared.config.settings import Settings
from shared.observability.correlation import correlation_scope, get_correlation_id
from shared.observability.propagation import (
    extract_from_headers,
    extract_from_properties,
    inject_into_properties,
    span_context_of,
)
from shared.observability.setup import TelemetryMode, TelemetrySetup
from tests.received import RecordingActions, received_message
from tests.support.erp_client_fakes import json_response, make_client
from tests.telemetry_support import Recorders, recorders

ROOT = Path(__file__).resolve().parents[2]
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
PARENT_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_SPAN = 0xB7AD6B7169203331


@pytest.fixture
def telemetry() -> Iterator[Recorders]:
    found = recorders()
    found.spans.clear()
    yield found
    found.spans.clear()


def _message(properties: dict[str, object], **extra: object) -> Any:
    return received_message(
        application_properties=properties,
        message_id=str(extra.get("message_id", "m-1")),
        correlation_id=extra.get("correlation_id"),  # type: ignore[arg-type]
    )


def _traceparent(context: trace.SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def _only(spans: list[ReadableSpan], kind: SpanKind) -> ReadableSpan:
    chosen = [span for span in spans if span.kind is kind]
    assert len(chosen) == 1, [s.name for s in spans]
    return chosen[0]


def test_the_current_span_goes_into_message_properties_and_comes_back(
    telemetry: Recorders,
) -> None:
    properties: dict[str | bytes, object] = {"attempt": 2}
    with trace.get_tracer("test").start_as_current_span("send") as span:
        inject_into_properties(properties)
        sent = span.get_span_context()
    expected = _traceparent(sent)
    assert properties[b"traceparent"] == expected
    assert properties[b"Diagnostic-Id"] == expected
    assert properties["attempt"] == 2
    # The receiving side sees str keys (the worker, the runner) or bytes keys (the SDK).
    for received in (
        properties,
        {str(k, "utf-8") if isinstance(k, bytes) else k: v for k, v in properties.items()},
    ):
        context = span_context_of(extract_from_properties(received))
        assert (context.trace_id, context.span_id) == (sent.trace_id, sent.span_id)
        assert context.is_remote


def test_nothing_is_injected_without_a_span() -> None:
    properties: dict[str | bytes, object] = {}
    inject_into_properties(properties)
    assert properties == {}


def test_diagnostic_id_is_read_when_traceparent_is_missing_and_junk_is_ignored() -> None:
    context = span_context_of(extract_from_properties({"Diagnostic-Id": PARENT}))
    assert (context.trace_id, context.span_id) == (PARENT_TRACE, PARENT_SPAN)
    assert not span_context_of(extract_from_properties({"traceparent": "not-a-trace"})).is_valid
    assert not span_context_of(extract_from_properties(None)).is_valid
    headers = {"traceparent": PARENT, "tracestate": "shop=1"}
    from_headers = span_context_of(extract_from_headers(headers))
    assert from_headers.trace_id == PARENT_TRACE
    assert from_headers.trace_state.get("shop") == "1"


def test_route_templates_put_route_values_back_as_names() -> None:
    assert route_template("/api/orders/ORD-1", {"orderId": "ORD-1"}) == "/api/orders/{orderId}"
    assert route_template("/api/prices/A%2FB", {"sku": "A/B"}) == "/api/prices/{sku}"
    assert route_template("/api/orders", {}) == "/api/orders"


async def test_a_consumer_span_continues_the_sender_and_sets_the_correlation_scope(
    telemetry: Recorders,
) -> None:
    seen: list[str | None] = []

    @traced_message("orders")
    async def handler(msg: Any) -> None:
        seen.append(get_correlation_id())

    await handler(_message({"traceparent": PARENT}, correlation_id="corr-9"))
    consumer = _only(telemetry.trace(PARENT_TRACE), SpanKind.CONSUMER)
    assert consumer.parent is not None and consumer.parent.span_id == PARENT_SPAN
    assert consumer.attributes is not None
    assert consumer.attributes["app.correlation_id"] == "corr-9"
    assert consumer.attributes["messaging.destination.name"] == "orders"
    assert seen == ["corr-9"]
    assert get_correlation_id() is None  # the scope ended with the invocation


async def test_a_dead_letter_is_counted_by_queue_and_reason_and_marks_the_span(
    telemetry: Recorders,
) -> None:
    @settles_message("selftest")
    @traced_message("selftest")
    async def handler(msg: Any) -> None:
        raise Rejected("InvalidMessage", "probeId: missing")

    before = telemetry.metric_total(
        "erpsync.dead_letters", queue="selftest", reason="InvalidMessage"
    )
    actions = RecordingActions()
    await handler(_message({"traceparent": PARENT}, message_id="m-bad"), actions)  # type: ignore[arg-type]
    assert actions.settled == [("deadletter", "m-bad", "InvalidMessage")]
    after = telemetry.metric_total(
        "erpsync.dead_letters", queue="selftest", reason="InvalidMessage"
    )
    assert after - before == 1
    consumer = _only(telemetry.trace(PARENT_TRACE), SpanKind.CONSUMER)
    assert consumer.status.status_code is StatusCode.ERROR
    assert consumer.attributes is not None
    assert consumer.attributes["app.dead_letter_reason"] == "InvalidMessage"


async def test_a_batch_dead_letters_its_rejections_and_completes_the_rest() -> None:
    bad, good = _message({}, message_id="bad"), _message({}, message_id="good")

    @settles_batch("inventory-events")
    async def handler(msgs: list[Any]) -> Sequence[Rejection]:
        return [Rejection(bad, "unparseable", "not JSON")]

    actions = RecordingActions()
    await handler([bad, good], actions)  # type: ignore[arg-type]
    assert sorted(actions.settled) == [
        ("complete", "good", None),
        ("deadletter", "bad", "unparseable"),
    ]


async def test_a_failing_handler_settles_nothing_so_the_host_abandons() -> None:
    @settles_batch("inventory-events")
    async def handler(msgs: list[Any]) -> Sequence[Rejection]:
        raise RuntimeError("table service unavailable")

    actions = RecordingActions()
    with pytest.raises(RuntimeError):
        await handler([_message({})], actions)  # type: ignore[arg-type]
    assert actions.settled == []


async def test_a_batch_span_links_every_traced_message(telemetry: Recorders) -> None:
    other = "00-11111111111111111111111111111111-2222222222222222-01"
    outcomes: list[int] = []

    @settles_batch("inventory-events")
    @traced_batch("inventory-events")
    async def handler(msgs: list[Any]) -> Sequence[Rejection]:
        outcomes.append(len(msgs))
        return []

    before = telemetry.metric_total(
        "erpsync.events.processed", kind="inventory-events", outcome="completed"
    )
    with trace.get_tracer("test").start_as_current_span("host invocation") as host:
        actions = RecordingActions()
        await handler(
            [_message({"traceparent": PARENT}), _message({"traceparent": other}), _message({})],
            actions,  # type: ignore[arg-type]
        )
    assert [s[0] for s in actions.settled] == ["complete"] * 3
    batch = _only(telemetry.trace(host.get_span_context().trace_id), SpanKind.CONSUMER)
    assert {link.context.trace_id for link in batch.links} == {
        PARENT_TRACE,
        0x1111111111111111_1111111111111111,
    }
    assert batch.parent is not None and batch.parent.span_id == host.get_span_context().span_id
    after = telemetry.metric_total(
        "erpsync.events.processed", kind="inventory-events", outcome="completed"
    )
    assert (outcomes, after - before) == ([3], 3)


async def test_every_erp_attempt_is_a_client_span_whose_context_is_sent_as_traceparent(
    telemetry: Recorders,
) -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "0"}),
            json_response({"value": []}),
        ]
    )
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return next(answers)

    throttles_before = telemetry.metric_total("erpsync.erp.throttles", entity_set="items")
    with (
        trace.get_tracer("test").start_as_current_span("booking") as parent,
        correlation_scope("corr-erp"),
    ):
        async with make_client(handler) as client:
            assert [item async for item in client.iter_items()] == []
    spans = telemetry.trace(parent.get_span_context().trace_id)
    attempts = [span for span in spans if span.kind is SpanKind.CLIENT]
    assert [span.attributes["erp.attempt"] for span in attempts if span.attributes] == [1, 2]
    assert [span.attributes["erp.throttled"] for span in attempts if span.attributes] == [
        True,
        False,
    ]
    for request, span in zip(sent, attempts, strict=True):
        context = span.get_span_context()
        assert request.headers["traceparent"] == _traceparent(context)
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
        assert span.attributes is not None
        assert span.attributes["app.correlation_id"] == "corr-erp"
        assert span.attributes["erp.entity_set"] == "items"
    assert (
        telemetry.metric_total("erpsync.erp.throttles", entity_set="items") - throttles_before == 1
    )


def _settings(**values: str) -> Settings:
    return Settings.model_validate(values)


def test_without_a_connection_string_nothing_is_configured() -> None:
    calls: list[str] = []
    setup = TelemetrySetup(configure=calls.append)
    assert setup.configure(_settings()) is TelemetryMode.OFF
    assert (
        setup.configure(_settings(APPLICATIONINSIGHTS_CONNECTION_STRING="   ")) is TelemetryMode.OFF
    )
    assert calls == []


def test_a_connection_string_configures_the_distro_once() -> None:
    calls: list[str] = []
    setup = TelemetrySetup(configure=calls.append)
    settings = _settings(APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=k")
    assert setup.configure(settings) is TelemetryMode.AZURE_MONITOR
    assert setup.configure(settings) is TelemetryMode.AZURE_MONITOR
    assert calls == ["InstrumentationKey=k"]


def test_the_worker_configures_in_azure_so_the_app_does_not() -> None:
    calls: list[str] = []
    setup = TelemetrySetup(configure=calls.append)
    settings = _settings(
        APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=k",
        PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY="true",
    )
    assert setup.configure(settings) is TelemetryMode.WORKER
    assert calls == []


def test_a_failing_configuration_is_a_warning_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    def broken(connection_string: str) -> None:
        raise ValueError("malformed connection string")

    setup = TelemetrySetup(configure=broken)
    with caplog.at_level(logging.WARNING, logger="shared.observability.setup"):
        mode = setup.configure(_settings(APPLICATIONINSIGHTS_CONNECTION_STRING="junk"))
    assert mode is TelemetryMode.FAILED
    assert "malformed connection string" in caplog.text


def test_importing_the_app_without_a_connection_string_installs_no_exporter() -> None:
    probe = (
        "import json, sys\n"
        "import function_app\n"
        "from opentelemetry import metrics, trace\n"
        "from shared.observability.setup import _process_setup\n"
        "print(json.dumps({'mode': str(_process_setup.mode),"
        " 'tracer': type(trace.get_tracer_provider()).__name__,"
        " 'meter': type(metrics.get_meter_provider()).__name__,"
        " 'distro': 'azure.monitor.opentelemetry' in sys.modules}))\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("APPLICATIONINSIGHTS_", "PYTHON_APPLICATIONINSIGHTS_", "OTEL_"))
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "mode": "off",
        "tracer": "ProxyTracerProvider",
        "meter": "_ProxyMeterProvider",
        "distro": False,
    }
