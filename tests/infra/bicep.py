"""Read the Bicep templates as pycep-parser sees them, without Azure or the Bicep CLI.

pycep-parser and checkov live in ``.venv-infra`` (``make infra-setup``); this module runs them
there through subprocess and hands the tests plain JSON. In pycep's JSON a literal string and
a bare identifier look the same (``'cloud'`` and ``cloud`` both become ``"cloud"``), so a
value is read as a parameter reference only when it names a declared parameter.
"""

from __future__ import annotations

import ast
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
INFRA_VENV = ROOT / ".venv-infra"
INFRA_PYTHON = INFRA_VENV / "bin" / "python"
CHECKOV = INFRA_VENV / "bin" / "checkov"
DUMP_SCRIPT = Path(__file__).with_name("pycep_dump.py")


class BicepParseFailed(AssertionError):
    """pycep-parser refused a file; the message names it."""


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def parse_with_pycep(paths: list[Path]) -> dict[str, Any]:
    """{path relative to infra/: pycep JSON or {"error": ...}} for each file."""
    result = subprocess.run(
        [str(INFRA_PYTHON), str(DUMP_SCRIPT), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise BicepParseFailed(f"pycep dump failed: {result.stderr.strip()[-2000:]}")
    raw: dict[str, Any] = json.loads(result.stdout)
    return {str(Path(path).relative_to(INFRA)): parsed for path, parsed in raw.items()}


def run_checkov(directory: Path) -> dict[str, Any]:
    """checkov's JSON report for the Bicep files (and a secrets scan) of a directory.

    ``--skip-download`` keeps checkov off the network (no Prisma Cloud guidelines or
    version check); the run is then fully local.
    """
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(directory),
            "--framework",
            "bicep",
            "secrets",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    # checkov exits 1 when a check fails; the report is still on stdout.
    if not result.stdout.strip():
        raise AssertionError(f"checkov produced no report: {result.stderr.strip()[-2000:]}")
    report = json.loads(result.stdout)
    return {"reports": report if isinstance(report, list) else [report]}


@dataclass(frozen=True)
class Template:
    """One parsed Bicep file."""

    path: str
    parsed: dict[str, Any]

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.parsed.get("parameters") or {})

    @property
    def variables(self) -> dict[str, Any]:
        return dict(self.parsed.get("variables") or {})

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.parsed.get("outputs") or {})

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.parsed.get("resources") or {})

    @property
    def modules(self) -> dict[str, Any]:
        return dict(self.parsed.get("modules") or {})

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Symbolic name -> body (loop bodies unwrapped) of the non-existing resources of a type."""
        found = {}
        for name, resource in self.resources.items():
            if resource["type"] == resource_type and not resource.get("existing"):
                found[name] = body(resource["config"])
        return found

    def is_secure(self, parameter: str) -> bool:
        decorators = self.parameters[parameter].get("decorators") or []
        return any(d.get("type") == "secure" for d in decorators)

    def parameter_default(self, parameter: str) -> Any:
        return self.parameters[parameter].get("default")

    def decorator(self, parameter: str, kind: str) -> Any:
        for item in self.parameters[parameter].get("decorators") or []:
            if item.get("type") == kind:
                return item.get("argument")
        return None


def body(config: dict[str, Any]) -> dict[str, Any]:
    """The resource body, whether it is declared directly or inside a ``[for ...]`` loop."""
    inner = config
    while "loop_type" in inner and "config" in inner:
        inner = inner["config"]
    return inner


def loop_source(config: dict[str, Any]) -> Any:
    """What a ``[for ...]`` resource iterates over (pycep's expression), or None."""
    if "loop_type" not in config:
        return None
    return config["loop_type"]["detail"]["array_name"]


def accessor_path(expression: Any) -> list[str]:
    """``a.b.c`` as ["a", "b", "c"]; [] for anything that is not a plain property access."""
    if isinstance(expression, str):
        try:  # pycep hands some nested expressions (loop sources) over as their Python repr
            expression = ast.literal_eval(expression)
        except (ValueError, SyntaxError):
            return [expression]
    if not isinstance(expression, dict) or "operator" not in expression:
        return []
    operator = expression["operator"]
    if operator.get("type") != "property_accessor":
        return []
    operands = operator["operands"]
    return accessor_path(operands["operand_1"]) + accessor_path(operands["operand_2"])


def scope_target(scope: Any) -> str:
    """The symbolic resource a ``scope:`` names: ``storage`` or ``queues`` for ``queues[i]``."""
    if isinstance(scope, str):
        return scope
    operator = scope["operator"]
    if operator["type"] == "index_accessor":
        return scope_target(operator["operands"]["operand_1"])
    raise AssertionError(f"unexpected scope expression: {scope}")
