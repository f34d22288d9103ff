"""The function app: validates settings, creates the app, registers one blueprint per family.

Settings are validated at import, so a malformed setting stops start-up with a message naming
it instead of failing later inside an invocation. Auth level FUNCTION by default, so a route
that forgets to choose is never anonymous.
"""

import azure.functions as func

from functions import content, credit, erp_webhooks, health, inventory, orders, prices, selftest
from shared.settings import get_settings

get_settings()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for module in (health, selftest, prices, inventory, erp_webhooks, credit, orders, content):
    app.register_functions(module.bp)
