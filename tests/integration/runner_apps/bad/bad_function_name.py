"""A function name the host refuses (it must start with a letter)."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.function_name("1st_report")
@app.route(route="first")
def first_report(req: func.HttpRequest) -> str:
    return "first"
