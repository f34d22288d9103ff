"""When telemetry is exported, and who configures it. Called once per process at import of
``function_app.py``; never raises.

Decisions (Azure Functions, Python v2 model, Azure Monitor OpenTelemetry distro):
- In Azure the app setting ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`` (Bicep) makes
  the Python worker call ``configure_azure_monitor`` itself before it loads the app, and make
  the host's trace context (``context.trace_context``) current before every async invocation.
  Configuring again here would install a second pipeline, so this module then does nothing.
  The exporter authenticates with the app's identity from
  ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD`` (Bicep), since local
  (key) ingestion is disabled on the Application Insights resource.
- Anywhere else (the local runner, a developer's shell) the distro is configured here only
  when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set, so the local stack exports nothing
  and opens no connection unless a developer asks for it.
- If configuring fails (package missing, bad connection string) the app runs untraced and a
  warning says why: telemetry is never a reason for an invocation to fail.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum

from shared.config.settings import Settings

_log = logging.getLogger(__name__)


class TelemetryMode(StrEnum):
    OFF = "off"
    WORKER = "configured-by-worker"
    AZURE_MONITOR = "azure-monitor"
    FAILED = "failed"


def _configure_azure_monitor(connection_string: str) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(connection_string=connection_string)


class TelemetrySetup:
    """Configures at most once, whatever the number of calls."""

    def __init__(self, configure: Callable[[str], None] = _configure_azure_monitor) -> None:
        self._configure = configure
        self._mode: TelemetryMode | None = None
        self._lock = threading.Lock()

    @property
    def mode(self) -> TelemetryMode | None:
        return self._mode

    def configure(self, settings: Settings) -> TelemetryMode:
        with self._lock:
            if self._mode is None:
                self._mode = self._decide(settings)
            return self._mode

    def _decide(self, settings: Settings) -> TelemetryMode:
        if settings.worker_configures_telemetry:
            _log.info("telemetry: configured by the Functions Python worker")
            return TelemetryMode.WORKER
        connection_string = settings.applicationinsights_connection_string.strip()
        if not connection_string:
            return TelemetryMode.OFF
        try:
            self._configure(connection_string)
        except Exception as error:  # any failure leaves the app running, untraced
            _log.warning("telemetry not configured, running without it: %r", error)
            return TelemetryMode.FAILED
        _log.info("telemetry: exporting to Azure Monitor")
        return TelemetryMode.AZURE_MONITOR


_process_setup = TelemetrySetup()


def configure_telemetry(settings: Settings) -> TelemetryMode:
    """Configure this process's telemetry once (see the module docstring for when)."""
    return _process_setup.configure(settings)
