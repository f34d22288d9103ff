"""The function app: validates settings, creates the app, registers one blueprint per family.

Settings are validated at import, so a malformed setting stops start-up with a message naming
it instead of failing later inside an invocation. Auth level FUNCTION by default, so a route
that forgets to choose is never anonymous.
"""

import azure.functions as func

from functions import (
    audit,
    content,
    credit,
    customer_history,
    erp_webhooks,
    health,
    impact,
    inventory,
    openapi,
    operations,
    order_lifecycle,
    orders,
    prices,
    selftest,
)
from shared.config.settings import get_settings
from shared.observability.setup import configure_telemetry

# Telemetry after the settings it reads: off unless a connection string is set (or the
# Functions worker configured it; see shared/observability/setup.py).
configure_telemetry(get_settings())

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for module in (health, selftest, prices, inventory, erp_webhooks, credit, orders, content, openapi):
    app.register_functions(module.bp)
app.register_functions(order_lifecycle.bp)
app.register_functions(customer_history.bp)
app.register_functions(impact.bp)
app.register_functions(audit.bp)
# Operations last: its overview lists the timers the modules above registered.
app.register_functions(operations.bp)
# The OpenAPI route documents the app as registered, handed over here rather than imported.
openapi.serve(app)
