"""Tracing and metrics through the OpenTelemetry API only, so every call is a no-op until a
provider is configured (``setup.configure_telemetry``) and the product never depends on an
exporter being present.

- ``spans``: the spans of one order's path (HTTP server, Service Bus producer and consumer,
  booking, ERP client) and the attribute names they share;
- ``propagation``: W3C trace context in and out of HTTP headers and message properties;
- ``metrics``: the ``erpsync.*`` instruments, recorded with one-line calls;
- ``setup``: when and how a provider is configured (Azure Monitor distro).
"""
