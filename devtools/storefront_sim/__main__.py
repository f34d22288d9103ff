"""`python -m devtools.storefront_sim --host 127.0.0.1 --port 8788 [--channel name=secret ...]`.

Prints `READY http://HOST:PORT` once serving (`--port 0` picks a free port); SIGTERM or
SIGINT stop it cleanly with exit code 0. Channels come from `--channel` (repeatable; a name
given twice accepts both secrets), else `STOREFRONT_SIM_CHANNELS`, else the demo channels.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import timedelta

from devtools.storefront_sim.app import create_app
from devtools.storefront_sim.channels import (
    CHANNELS_ENV_VAR,
    ChannelSecrets,
    ChannelSpecInvalid,
    channels_from_env,
    default_channels,
    parse_channel_specs,
)
from devtools.storefront_sim.server import SimulatorServer
from devtools.storefront_sim.state import SimulatorOptions, SimulatorState


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.storefront_sim",
        description="Storefront catalog webhook simulator (local development and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8788, help="0 picks a free port")
    parser.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="NAME=SECRET",
        help=f"repeatable; default from {CHANNELS_ENV_VAR}, else web and b2b-eu",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the injected error rate")
    parser.add_argument(
        "--tolerance-seconds", type=int, default=300, help="accepted signature clock skew"
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def _channels(specs: list[str]) -> ChannelSecrets:
    if specs:
        return parse_channel_specs(specs)
    return channels_from_env(os.environ.get(CHANNELS_ENV_VAR)) or default_channels()


async def _serve(host: str, port: int, options: SimulatorOptions) -> int:
    server = SimulatorServer(create_app(SimulatorState(options)), host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    channels = ", ".join(sorted(options.channels))
    logging.getLogger("devtools.storefront_sim").info("channels: %s", channels)
    print(f"READY {server.url}", flush=True)
    await stop.wait()
    await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        channels = _channels(args.channel)
    except ChannelSpecInvalid as exc:
        print(f"storefront simulator: {exc}", file=sys.stderr)
        return 2
    options = SimulatorOptions(
        channels=channels,
        tolerance=timedelta(seconds=args.tolerance_seconds),
        seed=args.seed,
    )
    try:
        return asyncio.run(_serve(args.host, args.port, options))
    except OSError as exc:
        print(
            f"storefront simulator: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
