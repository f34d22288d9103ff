"""Import the `module:attr` target the way the Python worker does, from the app directory."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import azure.functions as func

from devtools.runner.errors import AppLoadError


def parse_target(target: str) -> tuple[str, str]:
    """Split `function_app:app` into module and attribute names."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise AppLoadError(f"--app must look like 'module:attribute', got {target!r}")
    return module_name, attr


def load_app(
    target: str, app_dir: Path, *, fresh: bool = True
) -> tuple[ModuleType, func.FunctionApp]:
    """Import the module (fresh by default, so module state starts clean) and return the app."""
    module_name, attr = parse_target(target)
    directory = str(app_dir)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    if fresh:
        sys.modules.pop(module_name, None)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AppLoadError(f"importing {module_name!r} failed: {exc!r}") from exc
    app = getattr(module, attr, None)
    if app is None:
        raise AppLoadError(f"module {module_name!r} has no attribute {attr!r}")
    if not isinstance(app, func.FunctionApp):
        raise AppLoadError(
            f"{target} is a {type(app).__name__}, not an azure.functions.FunctionApp"
        )
    return module, app
