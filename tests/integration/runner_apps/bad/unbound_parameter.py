"""A parameter that no binding provides."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.route(route="hello")
def hello(req: func.HttpRequest, greeting: str) -> str:
    return greeting
