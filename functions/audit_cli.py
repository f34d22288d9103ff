"""``python -m functions.audit_cli``: the audit from a shell or a pipeline.

Exit codes: 0 every audited layer met its objectives, 1 a layer failed, 2 a usage or
configuration error (bad arguments, invalid settings or policy).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.services.operations.audit.html import render_html
from shared.services.operations.audit.models import LAYERS, Layer
from shared.services.operations.audit.service import AuditOptions, run_audit

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(ValueError):
    """The command line asks for something the audit cannot do."""


def parse_layers(text: str) -> tuple[Layer, ...]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in LAYERS]
    if unknown or not names:
        raise UsageError(f"--layers takes a comma list of {', '.join(LAYERS)}; got {text!r}")
    return tuple(layer for layer in LAYERS if layer in names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m functions.audit_cli",
        description="Audit the running product against the ERP (data, connectivity, logic).",
    )
    parser.add_argument("--json", type=Path, help="write the report as JSON to this file")
    parser.add_argument("--html", type=Path, help="write the report as HTML to this file")
    parser.add_argument("--layers", default=",".join(LAYERS), help="comma list of layers")
    parser.add_argument("--sample-size", type=int, help="logic layer sample (default: policy)")
    parser.add_argument("--seed", type=int, help="logic layer seed (default: today's date)")
    return parser


def _say(line: str) -> None:
    print(line, flush=True)  # noqa: T201  (progress for the operator)


async def _run(options: AuditOptions, json_path: Path | None, html_path: Path | None) -> int:
    # Imported here: a bad setting must become exit code 2, not an import-time crash.
    from shared.bootstrap import audit_dependencies, build_services
    from shared.config.settings import get_settings

    services = build_services(get_settings())
    try:
        report = await run_audit(audit_dependencies(services), options, _say)
    finally:
        await services.close()
    if json_path is not None:
        json_path.write_text(report.model_dump_json(by_alias=True, indent=2), encoding="utf-8")
        _say(f"wrote {json_path}")
    if html_path is not None:
        html_path.write_text(render_html(report), encoding="utf-8")
        _say(f"wrote {html_path}")
    for verdict in report.verdicts:
        _say(f"{verdict.layer}: {'PASS' if verdict.passed else 'FAIL'}")
        for reason in verdict.reasons:
            _say(f"  - {reason}")
    return EXIT_PASSED if report.passed else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return EXIT_USAGE if stop.code else EXIT_PASSED
    try:
        layers = parse_layers(args.layers)
        if args.sample_size is not None and not 1 <= args.sample_size <= 10_000:
            raise UsageError("--sample-size must be between 1 and 10000")
        from shared.bootstrap import get_policy
        from shared.config.policy import PolicyError
        from shared.config.settings import SettingsError, get_settings

        try:
            get_settings()
            get_policy()
        except (SettingsError, PolicyError) as error:
            raise UsageError(str(error)) from None
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    options = AuditOptions(layers=layers, sample_size=args.sample_size, seed=args.seed)
    return asyncio.run(_run(options, args.json, args.html))


if __name__ == "__main__":
    raise SystemExit(main())
