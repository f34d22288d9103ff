"""One HTTP function that the tests disable with AzureWebJobs.<name>.Disabled."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="switched", methods=["GET"])
def switched(req: func.HttpRequest) -> str:
    return "on"


@app.route(route="always", methods=["GET"])
def always(req: func.HttpRequest) -> str:
    return "on"
