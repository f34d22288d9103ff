"""The product's stock functions as they are: the batch trigger (cardinality many)."""

import azure.functions as func

from functions import inventory

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(inventory.bp)
