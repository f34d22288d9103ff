"""The simulator as the stack runs it (`python -m devtools.storefront_sim`) and its options."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from devtools.storefront_sim.state import SimulatorOptions
from devtools.storefront_sim.testing import SimulatorProcess, storefront_simulator
from shared.domain.content.signing import sign

ROOT = Path(__file__).resolve().parents[2]


def _push(url: str, channel: str, secret: bytes, now: datetime | None = None) -> httpx.Response:
    document = {
        "batchId": f"b-{channel}-{secret.decode()}",
        "upserts": [{"sku": "SKU-1", "contentHash": "h1", "product": {"name": "Widget"}}],
    }
    body = json.dumps(document).encode()
    headers = sign(body, secret, now or datetime.now(UTC), channel=channel)
    return httpx.post(f"{url}/channels/{channel}/catalog/batch", content=body, headers=headers)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_entry_point_serves_and_exits_cleanly(stop_signal: signal.Signals) -> None:
    process = SimulatorProcess(["web=old-secret", "web=new-secret", "outlet=outlet-secret"])
    url = process.start()
    try:
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        # A channel named twice accepts both secrets: a rotation rehearsed locally.
        assert _push(url, "web", b"old-secret").status_code == 200
        assert _push(url, "web", b"new-secret").status_code == 200
        assert _push(url, "outlet", b"outlet-secret").status_code == 200
        assert _push(url, "web", b"local-web-secret").status_code == 401
        # Only the channels given exist; the demo defaults are not added.
        assert _push(url, "b2b-eu", b"local-b2b-eu-secret").status_code == 404
        assert process.pid is not None
        os.kill(process.pid, stop_signal)
        exit_code = process.wait(timeout=30)
    finally:
        process.stop()
    assert exit_code == 0


def test_channels_come_from_the_environment_without_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREFRONT_SIM_CHANNELS", "web=env-secret, b2b-us=us-secret")
    process = SimulatorProcess()
    url = process.start()
    try:
        assert _push(url, "web", b"env-secret").status_code == 200
        assert _push(url, "b2b-us", b"us-secret").status_code == 200
        assert _push(url, "b2b-eu", b"local-b2b-eu-secret").status_code == 404
    finally:
        assert process.stop() == 0


@pytest.mark.parametrize("spec", ["web", "web=", "=secret", "bad name=secret"])
def test_bad_channel_spec_exits_2(spec: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devtools.storefront_sim", "--port", "0", "--channel", spec],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert b"READY" not in result.stdout


def test_port_in_use_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "devtools.storefront_sim", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert b"cannot listen" in result.stderr


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_replay_is_remembered_within_the_tolerance_then_refused_as_expired() -> None:
    start = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    clock = _Clock(start)
    options = SimulatorOptions(tolerance=timedelta(minutes=5), clock=clock)
    with storefront_simulator(options) as url:
        body = b'{"batchId": "b-1", "upserts": []}'
        headers = sign(body, b"local-web-secret", start, channel="web")

        def post() -> int:
            response = httpx.post(
                f"{url}/channels/web/catalog/batch", content=body, headers=headers
            )
            return response.status_code

        assert post() == 200
        clock.now = start + timedelta(minutes=4, seconds=59)
        assert post() == 409
        clock.now = start + timedelta(minutes=5, seconds=1)
        assert post() == 401


def test_received_at_comes_from_the_simulator_clock() -> None:
    moment = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    with storefront_simulator(SimulatorOptions(clock=_Clock(moment))) as url:
        assert _push(url, "web", b"local-web-secret", now=moment).status_code == 200
        items = httpx.get(f"{url}/_sim/received").json()["items"]
    assert [datetime.fromisoformat(item["receivedAt"]) for item in items] == [moment]
