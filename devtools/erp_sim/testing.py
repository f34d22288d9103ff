"""Run the simulator inside the test process, on a free loopback port.

    with running_simulator(seed=7, items=300) as base_url:
        httpx.get(f"{base_url}/_sim/health")

The server runs in a background thread with its own event loop and is stopped on exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from devtools.erp_sim.app import create_app
from devtools.erp_sim.limits import LimitSettings
from devtools.erp_sim.reference import COMPANY_ID
from devtools.erp_sim.server import bind_socket, build_server, url_of
from devtools.erp_sim.state import SimulatorOptions

DEFAULT_TENANT = "local"
DEFAULT_ENVIRONMENT = "sandbox"


class SimulatorDidNotStart(RuntimeError):
    """The server thread ended or timed out before it was listening."""


@contextmanager
def running_simulator(
    *,
    seed: int = 42,
    items: int = 200,
    customers: int = 50,
    limits: LimitSettings | None = None,
    options: SimulatorOptions | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[str]:
    """Start the simulator on 127.0.0.1 and a free port; yield its base URL."""
    chosen = options or SimulatorOptions()
    chosen = replace(chosen, seed=seed, items=items, customers=customers)
    if limits is not None:
        chosen = replace(chosen, limits=limits)
    app = create_app(chosen)
    sock = bind_socket("127.0.0.1", 0)
    server = build_server(app, "127.0.0.1", 0)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="erp-sim", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise SimulatorDidNotStart("the ERP simulator did not start listening")
        time.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def standard_api(
    base_url: str, tenant: str = DEFAULT_TENANT, env: str = DEFAULT_ENVIRONMENT
) -> str:
    """The company URL of the standard API v2.0."""
    return f"{base_url}/v2.0/{tenant}/{env}/api/v2.0/companies({COMPANY_ID})"


def custom_api(
    base_url: str,
    tenant: str = DEFAULT_TENANT,
    env: str = DEFAULT_ENVIRONMENT,
    publisher: str = "contoso",
    group: str = "commerceSync",
    version: str = "v1.0",
) -> str:
    """The company URL of the product's custom API pages."""
    return (
        f"{base_url}/v2.0/{tenant}/{env}/api/{publisher}/{group}/{version}/companies({COMPANY_ID})"
    )
