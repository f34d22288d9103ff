"""Settings the way Core Tools treats them: `Values` become environment variables.

Variables already in the environment win, so tests and CI override a settings file without
editing it. `%NAME%` placeholders in trigger arguments are resolved from the same
environment, as the Functions host resolves them from app settings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from devtools.runner.errors import SettingsError

SETTINGS_FILE = "local.settings.json"
SAMPLE_SETTINGS_FILE = "local.settings.sample.json"
_PLACEHOLDER = re.compile(r"%([^%\s]+)%")


class LocalSettingsFile(BaseModel):
    """The parts of local.settings.json the runner uses."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    is_encrypted: bool = Field(default=False, alias="IsEncrypted")
    values: dict[str, str] = Field(default_factory=dict, alias="Values")

    @field_validator("values", mode="before")
    @classmethod
    def _scalars_as_strings(cls, raw: object) -> object:
        # Core Tools stores every value as a string; accept JSON scalars and say so for others.
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise ValueError("Values must be an object of setting names to strings")
        converted: dict[str, str] = {}
        for name, value in raw.items():
            if isinstance(value, bool):
                converted[name] = "true" if value else "false"
            elif isinstance(value, str | int | float):
                converted[name] = str(value)
            elif value is None:
                converted[name] = ""
            else:
                raise ValueError(f"setting {name!r} must be a string, not {type(value).__name__}")
        return converted


def default_settings_path(app_dir: Path) -> Path | None:
    """local.settings.json if present, else the committed sample, else nothing."""
    for name in (SETTINGS_FILE, SAMPLE_SETTINGS_FILE):
        candidate = app_dir / name
        if candidate.is_file():
            return candidate
    return None


def read_settings_file(path: Path) -> dict[str, str]:
    """The `Values` of a settings file, validated."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid JSON: {exc}") from exc
    try:
        parsed = LocalSettingsFile.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"settings file {path} is invalid: {exc}") from exc
    if parsed.is_encrypted:
        raise SettingsError(
            f"settings file {path} is encrypted; the local runner reads plain values only"
        )
    return parsed.values


def apply_settings(
    values: Mapping[str, str], environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Copy settings into the environment without overriding; return the names it added."""
    target = os.environ if environ is None else environ
    added: list[str] = []
    for name, value in values.items():
        if name not in target:
            target[name] = value
            added.append(name)
    return added


def resolve_placeholders(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace each `%NAME%` with the setting's value; a missing setting is an error."""
    source = os.environ if environ is None else environ

    def _lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in source:
            raise SettingsError(f"'%{name}%' does not resolve to a value: no setting named {name}")
        return source[name]

    return _PLACEHOLDER.sub(_lookup, text)
