"""Fixtures for the infrastructure checks: parsed Bicep and one checkov report per session."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep import (
    CHECKOV,
    INFRA,
    INFRA_PYTHON,
    ROOT,
    Template,
    bicep_files,
    parse_with_pycep,
    run_checkov,
)


@pytest.fixture(scope="session")
def infra_venv() -> Path:
    if not (INFRA_PYTHON.exists() and CHECKOV.exists()):
        missing = ".venv-infra is missing: run `make infra-setup` (make test does it first)"
        if os.environ.get("CI"):
            # In CI a missing prerequisite is a broken build, never a quietly skipped check.
            pytest.fail(missing)
        pytest.skip(missing)
    return INFRA_PYTHON


@pytest.fixture(scope="session")
def parsed_bicep(infra_venv: Path) -> dict[str, Any]:
    return parse_with_pycep(bicep_files())


@pytest.fixture(scope="session")
def templates(parsed_bicep: dict[str, Any]) -> dict[str, Template]:
    broken = {path: p["error"] for path, p in parsed_bicep.items() if "error" in p}
    assert not broken, f"Bicep files pycep-parser cannot parse: {broken}"
    return {path: Template(path, parsed) for path, parsed in parsed_bicep.items()}


@pytest.fixture(scope="session")
def main_template(templates: dict[str, Template]) -> Template:
    return templates["main.bicep"]


@pytest.fixture(scope="session")
def checkov_report(infra_venv: Path) -> dict[str, Any]:
    return run_checkov(INFRA)


@pytest.fixture(scope="session")
def topology() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((INFRA / "servicebus-topology.json").read_text())
    return document


@pytest.fixture(scope="session")
def host_json() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / "host.json").read_text())
    return document
