"""ISO-8601 durations as the Service Bus emulator config writes them (PT1M, PT10M, P14D)."""

from __future__ import annotations

import re
from datetime import timedelta

# Years and months have no fixed length; like .NET's XmlConvert they are taken as 365 and 30 days.
_DURATION = re.compile(
    r"^P(?!$)"
    r"(?:(?P<years>\d+)Y)?"
    r"(?:(?P<months>\d+)M)?"
    r"(?:(?P<weeks>\d+)W)?"
    r"(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)"
    r"(?:(?P<hours>\d+)H)?"
    r"(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?"
    r")?$"
)


class InvalidDuration(ValueError):
    """The text is not an ISO-8601 duration such as PT30S or P14D."""


def parse_iso_duration(text: str) -> timedelta:
    """Parse an ISO-8601 duration (``PnYnMnWnDTnHnMnS``, each part optional) into a timedelta."""
    match = _DURATION.match(text.strip().upper())
    if match is None:
        raise InvalidDuration(f"not an ISO-8601 duration: {text!r}")
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    return timedelta(
        days=parts.get("years", 0) * 365
        + parts.get("months", 0) * 30
        + parts.get("weeks", 0) * 7
        + parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )


def format_iso_duration(value: timedelta) -> str:
    """Render a timedelta the way the emulator config writes it (days and a time part)."""
    total_ms = round(value.total_seconds() * 1000)
    days, rest_ms = divmod(total_ms, 86_400_000)
    hours, rest_ms = divmod(rest_ms, 3_600_000)
    minutes, rest_ms = divmod(rest_ms, 60_000)
    seconds = rest_ms / 1000
    text = "P" + (f"{days}D" if days else "")
    time_part = (
        (f"{hours}H" if hours else "")
        + (f"{minutes}M" if minutes else "")
        + (f"{seconds:g}S" if seconds else "")
    )
    if time_part:
        text += "T" + time_part
    return text if text != "P" else "PT0S"
