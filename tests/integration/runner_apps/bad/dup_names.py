"""Two functions named alike: the host needs unique names."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.function_name("twin")
@app.route(route="one")
def first(req: func.HttpRequest) -> str:
    return "one"


@app.function_name("twin")
@app.route(route="two")
def second(req: func.HttpRequest) -> str:
    return "two"
