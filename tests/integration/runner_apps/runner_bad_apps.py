"""Apps the runner must refuse to start, one per attribute."""

from __future__ import annotations

import azure.functions as func

duplicate_names = func.FunctionApp()


@duplicate_names.function_name("twin")
@duplicate_names.route(route="one")
def first(req: func.HttpRequest) -> str:
    return "one"


@duplicate_names.function_name("twin")
@duplicate_names.route(route="two")
def second(req: func.HttpRequest) -> str:
    return "two"


duplicate_routes = func.FunctionApp()


@duplicate_routes.route(route="orders/{orderId}", methods=["GET"])
def get_order(req: func.HttpRequest) -> str:
    return "a"


@duplicate_routes.route(route="Orders/{id}", methods=["GET", "POST"])
def get_order_again(req: func.HttpRequest) -> str:
    return "b"


unresolved_schedule = func.FunctionApp()


@unresolved_schedule.timer_trigger(schedule="%NO_SUCH_SCHEDULE_SETTING%", arg_name="timer")
def never(timer: func.TimerRequest) -> None:
    return None


not_an_app = object()
