"""Two functions serving the same (route, method)."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.route(route="orders/{orderId}", methods=["GET"])
def get_order(req: func.HttpRequest) -> str:
    return "a"


@app.route(route="Orders/{id}", methods=["GET", "POST"])
def get_order_again(req: func.HttpRequest) -> str:
    return "b"
