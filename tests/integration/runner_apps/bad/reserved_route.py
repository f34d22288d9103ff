"""A route under `admin`, which the host keeps for itself."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.route(route="admin/reports")
def reports(req: func.HttpRequest) -> str:
    return "reports"
