"""Latency of GET /api/health and the operations overview/page, old path beside new (prints
figures; not a test).

Starts its own stack on free ports (Azurite, Service Bus stand-in, ERP simulator) and the
function app of this checkout in the local runner; with ``--old-app-dir`` (a checkout of the
code before the probe cache, e.g. the main worktree) a second runner serves that code on the
same stack, and both are measured in alternating rounds, so the machine's load hits both
alike. Then, on the new runner only, the Service Bus stand-in is stopped: how long until
``/api/health`` says ``serviceBus: down`` (the cache bound plus the probe timeout at most), and
how long a health answer takes while the broker is gone (bounded by the probe timeout).

    .venv/bin/python -m bench.probes_bench [--rounds N] [--per-round N] [--old-app-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from devtools.stack import LocalStack, StackPorts, free_port

ROUTES = {
    "health": ("/api/health", False),
    "overview": ("/api/ops/overview", True),
    "dashboard": ("/api/ops/dashboard", True),
}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout}s")
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def _old_runner(old_dir: Path, stack: LocalStack, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The old code's function app on this stack (its own process, killed by the caller)."""
    env = {**os.environ, **stack.settings()}
    argv = [sys.executable, "-m", "devtools.runner", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--app", "function_app:app"]
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv,
            cwd=old_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/api/health"), 90, "the old runner")
    return popen


def _measure(client: httpx.Client, route: str, admin: bool, key: str, count: int) -> list[float]:
    headers = {"x-functions-key": key} if admin else {}
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(route, headers=headers)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            print(f"  {route}: {response.status_code} {response.text[:200]}")
    return samples


def _report(label: str, samples: dict[str, list[float]]) -> None:
    for name, values in samples.items():
        print(
            f"{label:4} {name:9}: n={len(values):4}  p50 {_percentile(values, 0.5) * 1000:7.1f} ms"
            f"  p99 {_percentile(values, 0.99) * 1000:7.1f} ms  max {max(values) * 1000:7.1f} ms"
        )


def _down_detection(stack: LocalStack, base_url: str) -> None:
    """Stop the broker; time until health says serviceBus down, and answer times meanwhile."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        client.get("/api/health")  # a fresh ok result in the cache
        for process in stack._processes:  # the stand-in this script started
            if process.name == "servicebus":
                process.popen.terminate()
                process.popen.wait(10)
        stopped = time.perf_counter()
        answer_times = []
        while True:
            started = time.perf_counter()
            body = client.get("/api/health").json()
            answer_times.append(time.perf_counter() - started)
            bus = body["dependencies"]["serviceBus"]
            if bus["status"] == "down":
                break
            if time.perf_counter() - stopped > 60:
                print("serviceBus never showed as down within 60 s")
                return
            time.sleep(0.1)
    print(
        f"broker stopped -> health says serviceBus down after {time.perf_counter() - stopped:.1f} s"
        f" (detail {bus['detail']!r}, ageMs {bus['ageMs']});"
        f" slowest health answer meanwhile {max(answer_times) * 1000:.0f} ms"
        f" over {len(answer_times)} calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-round", type=int, default=50, help="health calls per round")
    parser.add_argument("--old-app-dir", type=Path, default=None)
    args = parser.parse_args()
    stack = LocalStack(ports=StackPorts.free(), erp_items=200, erp_customers=50)
    old: subprocess.Popen[bytes] | None = None
    try:
        stack.start_tables()
        stack.start_servicebus()
        stack.start_erp()
        stack.start_runner()
        runners = {"new": f"http://127.0.0.1:{stack.ports.runner}"}
        if args.old_app_dir is not None:
            port = free_port()
            log = stack.log_dir / f"runner-old-{port}.log"
            old = _old_runner(args.old_app_dir.resolve(), stack, port, log)
            runners["old"] = f"http://127.0.0.1:{port}"
        key = stack.settings()["LOCAL_ADMIN_KEY"]
        print(
            f"probes bench: {args.rounds} rounds; per round {args.per_round} health calls and"
            f" {max(1, args.per_round // 5)} of each operations route, one at a time; load"
            f" average at start {os.getloadavg()[0]:.2f}"
        )
        samples: dict[str, dict[str, list[float]]] = {
            label: {name: [] for name in ROUTES} for label in runners
        }
        clients = {label: httpx.Client(base_url=url, timeout=60) for label, url in runners.items()}
        try:
            for client in clients.values():  # first calls open the clients and links
                for route, admin in ROUTES.values():
                    _measure(client, route, admin, key, 2)
            for _ in range(args.rounds):
                for label, client in clients.items():
                    for name, (route, admin) in ROUTES.items():
                        count = args.per_round if name == "health" else max(1, args.per_round // 5)
                        samples[label][name] += _measure(client, route, admin, key, count)
        finally:
            for client in clients.values():
                client.close()
        for label in runners:
            _report(label, samples[label])
        print(f"load average at end {os.getloadavg()[0]:.2f}")
        if old is not None:
            old.terminate()
            old.wait(20)
            old = None
        _down_detection(stack, runners["new"])
    finally:
        if old is not None:
            old.terminate()
            old.wait(20)
        stack.stop()


if __name__ == "__main__":
    main()
