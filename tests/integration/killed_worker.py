"""Running a worker module in its own process until it kills itself (no tests here)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


async def run_until_killed(module: str, settings: dict[str, Any], exit_code: int) -> None:
    """Run ``python -m module`` with `settings` on stdin; it must end with `exit_code` (its
    own ``os._exit`` mid-work), or the test fails with the worker's stderr."""
    worker = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", module],
        cwd=ROOT,
        input=json.dumps(settings),
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert worker.returncode == exit_code, worker.stderr[-2000:]
