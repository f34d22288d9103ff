"""The Bicep templates parse (pycep-parser) and pass checkov; every skipped check says why."""

from __future__ import annotations

import re
from typing import Any

from tests.infra.bicep import INFRA, bicep_files

# `// checkov:skip=CKV_AZURE_35: why` inside a resource block.
SKIP_COMMENT = re.compile(r"//\s*checkov:skip=(CKV2?_[A-Z0-9]+_\d+)\s*(?::\s*(.*))?$", re.MULTILINE)
MIN_JUSTIFICATION = 40


def _reports(checkov_report: dict[str, Any], check_type: str) -> list[dict[str, Any]]:
    return [r for r in checkov_report["reports"] if r.get("check_type") == check_type]


def test_every_bicep_file_parses(parsed_bicep: dict[str, Any]) -> None:
    expected = {str(path.relative_to(INFRA)) for path in bicep_files()}
    assert set(parsed_bicep) == expected
    broken = {path: parsed["error"] for path, parsed in parsed_bicep.items() if "error" in parsed}
    assert broken == {}
    # Every file declares something: an empty parse would mean pycep skipped the content.
    assert all(parsed.get("resources") or parsed.get("modules") for parsed in parsed_bicep.values())


def test_checkov_passes_with_no_failed_check(checkov_report: dict[str, Any]) -> None:
    bicep = _reports(checkov_report, "bicep")
    assert len(bicep) == 1, "checkov did not scan the Bicep files"
    summary = bicep[0]["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 20, "checkov ran (almost) no Bicep checks"
    failed = [
        (c["check_id"], c["resource"], c["file_path"])
        for report in checkov_report["reports"]
        for c in report["results"].get("failed_checks", [])
    ]
    assert failed == []


def test_every_skip_is_justified_inline_and_still_needed(checkov_report: dict[str, Any]) -> None:
    in_files: set[tuple[str, str]] = set()
    unjustified = []
    for path in bicep_files():
        relative = "/" + str(path.relative_to(INFRA))
        for match in SKIP_COMMENT.finditer(path.read_text()):
            check_id, why = match.group(1), (match.group(2) or "").strip()
            in_files.add((relative, check_id))
            if len(why) < MIN_JUSTIFICATION:
                unjustified.append((relative, check_id, why))
    assert unjustified == [], "a checkov skip needs a real reason after the check id"

    skipped = {
        (c["file_path"], c["check_id"])
        for report in _reports(checkov_report, "bicep")
        for c in report["results"].get("skipped_checks", [])
    }
    # A comment for a check that no longer runs (or no longer fails) is a stale exception.
    assert in_files == skipped
