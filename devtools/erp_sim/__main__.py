"""``python -m devtools.erp_sim --host 127.0.0.1 --port 8787 --seed 42 --items 200 --customers 50``

Generates the demo data, starts listening, prints ``READY <url>`` and serves until SIGTERM or
SIGINT, then exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import date
from types import FrameType

from starlette.applications import Starlette

from devtools.erp_sim.app import create_app
from devtools.erp_sim.limits import LimitSettings
from devtools.erp_sim.server import bind_socket, build_server, url_of
from devtools.erp_sim.state import SimulatorOptions


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.erp_sim", description="Business Central-shaped ERP simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument(
        "--anchor-date",
        type=date.fromisoformat,
        default=None,
        help="the 'today' generated dates revolve around (default: UTC today)",
    )
    parser.add_argument("--max-concurrent", type=int, default=5)
    parser.add_argument("--requests-per-window", type=int, default=6000)
    parser.add_argument("--window-seconds", type=float, default=300.0)
    parser.add_argument(
        "--credit-check",
        action="store_true",
        help="refuse orders over the customer's credit limit, as a tenant whose extension blocks "
        "them would (Business Central itself only warns a user)",
    )
    # Kept so existing scripts still start: accepting such orders is now the default.
    parser.add_argument("--no-credit-check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--reserve-on-order",
        action="store_true",
        help="sales orders also raise reservedQuantity, not only qtyOnSalesOrders",
    )
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def _options(arguments: argparse.Namespace) -> SimulatorOptions:
    return SimulatorOptions(
        seed=arguments.seed,
        items=arguments.items,
        customers=arguments.customers,
        anchor=arguments.anchor_date,
        limits=LimitSettings(
            max_concurrent=arguments.max_concurrent,
            requests_per_window=arguments.requests_per_window,
            window_seconds=arguments.window_seconds,
        ),
        credit_check=arguments.credit_check and not arguments.no_credit_check,
        reserve_on_order=arguments.reserve_on_order,
    )


async def _serve(app: Starlette, host: str, port: int, log_level: str) -> None:
    sock = bind_socket(host, port)
    server = build_server(app, host, port, log_level)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if server.started:
        print(f"READY {url_of(sock)}", flush=True)
    await serving


def _exit_now(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    # A signal while the data is generated ends the process at once. While serving, uvicorn
    # installs its own handlers, shuts down gracefully and then re-raises the signal, which
    # lands here again and becomes a clean exit (status 0) instead of death by signal.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_now)
    try:
        app = create_app(_options(arguments))
        asyncio.run(_serve(app, arguments.host, arguments.port, arguments.log_level))
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
