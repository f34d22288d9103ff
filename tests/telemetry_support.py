"""In-memory OpenTelemetry providers for tests: spans and metrics stay in this process.

OpenTelemetry lets a process set its global providers once, so they are installed once (on
first use) and shared by every telemetry test; each test reads only its own trace (by trace
id) and compares metric values before and after, so tests stay independent.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass(frozen=True)
class Recorders:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def trace(self, trace_id: int) -> list[ReadableSpan]:
        """Finished spans of one trace, in the order they ended."""
        return [
            span
            for span in self.spans.get_finished_spans()
            if span.context is not None and span.context.trace_id == trace_id
        ]

    def metric_total(self, name: str, **attributes: str) -> float:
        """Sum of a counter's points whose attributes include ``attributes``."""
        data = self.metrics.get_metrics_data()
        total = 0.0
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        if _includes(point.attributes or {}, attributes):
                            total += float(getattr(point, "value", getattr(point, "sum", 0)))
        return total


def _includes(found: Mapping[str, object], wanted: Mapping[str, str]) -> bool:
    return all(found.get(key) == value for key, value in wanted.items())


@functools.cache
def recorders() -> Recorders:
    """Install (once) and return the in-memory exporter and metric reader."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    assert trace.get_tracer_provider() is tracer_provider, "a tracer provider was already set"
    return Recorders(spans, reader)
