""".funcignore keeps dev and test material out of the deployment package, and the app in it."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import PurePosixPath

import pytest

from tests.infra.bicep import ROOT

MUST_EXCLUDE = [
    "tests/unit/test_settings.py",
    ".venv/bin/python",
    ".venv-infra/bin/checkov",
    "node_modules/.bin/azurite-table",
    "devtools/stack.py",
    "bench/quote_bench.py",
    "docs/benchmarks.md",
    "local.settings.json",
    "infra/main.bicep",
    "tests/unit/__pycache__/test_settings.cpython-313.pyc",
    "devtools/__pycache__/stack.cpython-313.pyc",
]
MUST_KEEP = [
    "function_app.py",
    "functions/http.py",
    "shared/config/settings.py",
    "shared/adapters/erp/client.py",
    "host.json",
    "requirements.txt",
]


def _patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def excluded(path: str, patterns: list[str]) -> bool:
    """gitignore-style: a pattern matches a path component (or the path); "dir/" a directory."""
    parts = PurePosixPath(path).parts
    for pattern in patterns:
        directory_only = pattern.endswith("/")
        name = pattern.rstrip("/")
        # A directory pattern matches a component that has something below it.
        candidates = parts[:-1] if directory_only else parts
        if any(fnmatch(part, name) for part in candidates) or fnmatch(path, name):
            return True
    return False


@pytest.mark.parametrize("path", MUST_EXCLUDE)
def test_dev_material_stays_out_of_the_package(path: str) -> None:
    assert excluded(path, _patterns())


@pytest.mark.parametrize("path", MUST_KEEP)
def test_the_app_itself_is_deployed(path: str) -> None:
    assert (ROOT / path).exists()
    assert not excluded(path, _patterns())


def test_the_apps_bytecode_is_deployed() -> None:
    """The package is read-only in Azure: the checked-hash .pyc files ``make bytecode`` writes
    next to the app's modules ship with it, or every cold start compiles them again."""
    for path in (
        "__pycache__/function_app.cpython-313.pyc",
        "functions/__pycache__/http.cpython-313.pyc",
        "shared/config/__pycache__/settings.cpython-313.pyc",
    ):
        assert not excluded(path, _patterns()), path
