"""`python -m devtools.runner --app function_app:app --host 127.0.0.1 --port 7071`.

Prints `READY http://HOST:PORT` once serving; SIGTERM or SIGINT stop it cleanly. Exit code
2 means the app could not be started (the reason is logged on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from devtools.runner.errors import AppLoadError, RunnerError
from devtools.runner.logcontext import InvocationFormatter
from devtools.runner.runner import Runner, RunnerOptions


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.runner", description="Serve an Azure Functions app locally."
    )
    parser.add_argument(
        "--app", default="function_app:app", help="module:attribute of the FunctionApp"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071, help="0 picks a free port")
    parser.add_argument("--app-dir", type=Path, default=None, help="default: current directory")
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="settings file (default: local.settings.json, else local.settings.sample.json)",
    )
    parser.add_argument("--no-settings", action="store_true", help="read no settings file")
    parser.add_argument("--host-json", type=Path, default=None, help="default: <app-dir>/host.json")
    parser.add_argument("--shutdown-grace", type=float, default=10.0, help="seconds")
    parser.add_argument(
        "--timer-status-dir",
        type=Path,
        default=None,
        help="keep monitored timers' schedule status here across restarts (useMonitor)",
    )
    parser.add_argument(
        "--log-level", default=os.environ.get("RUNNER_LOG_LEVEL", "INFO"), help="default INFO"
    )
    return parser.parse_args(argv)


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        InvocationFormatter("%(asctime)s %(levelname)s %(name)s%(invocation_scope)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The Azure SDKs narrate every AMQP frame at INFO; keep their warnings only.
    for noisy in ("azure", "uamqp", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _serve(options: RunnerOptions) -> int:
    runner = Runner(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.start()
    except RunnerError as exc:
        # An import failure's traceback points at the app's bug; other reasons say it all.
        cause = exc.__cause__ if isinstance(exc, AppLoadError) else None
        logging.getLogger("devtools.runner").error("Cannot start: %s", exc, exc_info=cause)
        return 2
    print(f"READY {runner.url}", flush=True)
    await stop.wait()
    logging.getLogger("devtools.runner").info("Stopping")
    await runner.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    _configure_logging(args.log_level)
    options = RunnerOptions(
        app=args.app,
        host=args.host,
        port=args.port,
        app_dir=args.app_dir,
        settings_path=args.settings,
        use_settings_file=not args.no_settings,
        host_json_path=args.host_json,
        shutdown_grace=args.shutdown_grace,
        timer_status_dir=args.timer_status_dir,
    )
    return asyncio.run(_serve(options))


if __name__ == "__main__":
    sys.exit(main())
