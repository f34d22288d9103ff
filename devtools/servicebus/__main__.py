"""Entry point of the stand-in.

    python -m devtools.servicebus --host 127.0.0.1 --port 5672 \\
        --config infra/servicebus-topology.json

Prints ``READY host:port`` on stdout once listening; SIGTERM or SIGINT stop it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from .server import StandinServer, StandinStartError
from .topology import (
    TopologyError,
    emulator_limit_warnings,
    load_topology,
    stand_in_feature_warnings,
)

_LOG = logging.getLogger("devtools.servicebus")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.servicebus",
        description="Local Service Bus stand-in: an AMQP 1.0 broker for azure-servicebus.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5672, help="AMQP port; 0 picks a free one")
    parser.add_argument(
        "--config",
        default="infra/servicebus-topology.json",
        help="topology in the Service Bus emulator's Config.json format",
    )
    parser.add_argument(
        "--admin-port",
        type=int,
        default=None,
        help="optional HTTP port serving GET /stats (message counts); 0 = any",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="keep messages in a SQLite database in this directory across restarts "
        "(default: in memory only)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level for stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_topology(args.config)
    except TopologyError as exc:
        _LOG.error("%s", exc)
        return 2
    for warning in emulator_limit_warnings(config):
        _LOG.warning("emulator compatibility: %s", warning)
    for warning in stand_in_feature_warnings(config):
        _LOG.warning("not reproduced by the stand-in: %s", warning)

    server = StandinServer(
        config,
        host=args.host,
        port=args.port,
        admin_port=args.admin_port,
        data_dir=args.data_dir,
    )
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        server.start()
    except StandinStartError as exc:
        _LOG.error("%s", exc)
        return 1
    if server.admin_url:
        _LOG.info("stats at %s/stats", server.admin_url)
    print(f"READY {server.host}:{server.port}", flush=True)
    # Short waits keep the main thread responsive to signals.
    while not stop_requested.wait(0.5):
        if server.wait(0):
            _LOG.error("the broker stopped unexpectedly")
            return 1
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
