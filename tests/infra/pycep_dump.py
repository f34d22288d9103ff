"""Parse Bicep files with pycep-parser and print {path: parsed template} as JSON.

Run by ``.venv-infra/bin/python`` (pycep-parser lives in that separate virtualenv, next to
checkov, whose pins would clash with the app's). A file that does not parse is reported as
``{"error": "..."}`` instead of stopping the others, so one test run names every bad file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pycep import BicepParser  # type: ignore[import-not-found]


def parse_all(paths: list[str]) -> dict[str, Any]:
    parser = BicepParser()
    parsed: dict[str, Any] = {}
    for path in paths:
        try:
            parsed[path] = parser.parse(file_path=Path(path))
        except Exception as error:  # any parse failure is the finding, whatever its type
            parsed[path] = {"error": f"{type(error).__name__}: {error}"}
    return parsed


if __name__ == "__main__":
    json.dump(parse_all(sys.argv[1:]), sys.stdout, default=str)
