"""A local stand-in for the Azure Functions host (Core Tools cannot be installed here).

`python -m devtools.runner --app function_app:app --port 7071` serves a v2-model
FunctionApp: HTTP triggers with keys and route templates, the admin API, NCRONTAB timers
and Service Bus triggers over the real `azure-servicebus` client. See README.md.
"""

from devtools.runner.errors import (
    AppIndexError,
    AppLoadError,
    HostConfigError,
    OutputDeliveryError,
    RunnerError,
    SettingsError,
)
from devtools.runner.invoker import InvocationRecord
from devtools.runner.runner import Runner, RunnerOptions

__all__ = [
    "AppIndexError",
    "AppLoadError",
    "HostConfigError",
    "InvocationRecord",
    "OutputDeliveryError",
    "Runner",
    "RunnerError",
    "RunnerOptions",
    "SettingsError",
]
