"""``python -m devtools.erp_sim`` as a process: READY line, serving, clean exit on signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _start(*extra: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.erp_sim", "--host", "127.0.0.1", "--port", "0", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("READY "):
        process.kill()
        _, errors = process.communicate(timeout=10)
        pytest.fail(f"no READY line, got {line!r}; stderr: {errors}")
    return process, line.removeprefix("READY ")


def _finish(process: subprocess.Popen[str]) -> None:
    """Wait for the exit and close the pipes; kill if it hangs."""
    try:
        process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_ready_serves_and_exits_cleanly(stop_with: signal.Signals) -> None:
    process, url = _start("--seed", "3", "--items", "40", "--customers", "8")
    try:
        assert url.startswith("http://127.0.0.1:")
        companies = httpx.get(f"{url}/v2.0/local/sandbox/api/v2.0/companies", timeout=10)
        assert companies.status_code == 200
        assert companies.json()["value"][0]["name"] == "CRONUS Demo"
        info = httpx.get(f"{url}/_sim/info", timeout=10).json()
        assert info["counts"]["items"] == 40 and info["counts"]["customers"] == 8
        assert info["seed"] == 3
    finally:
        process.send_signal(stop_with)
        _finish(process)
    assert process.returncode == 0


def test_cli_applies_limit_options() -> None:
    process, url = _start("--items", "10", "--customers", "3", "--requests-per-window", "2")
    try:
        api = f"{url}/v2.0/local/sandbox/api/v2.0/companies"
        statuses = [httpx.get(api, timeout=10).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert httpx.get(f"{url}/_sim/limits", timeout=10).json()["requestsPerWindow"] == 2
    finally:
        process.terminate()
        _finish(process)
    assert process.returncode == 0
