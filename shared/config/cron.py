"""Six-field NCRONTAB expressions derived from the sync policy's intervals and times of day.

Only intervals that divide a minute, an hour or a day evenly are accepted: anything else
(say every 7 minutes) has no exact cron form, and a cron that silently drifts from the
declared interval would break the freshness objective the interval was chosen for.
"""

from __future__ import annotations

from datetime import time, timedelta

# 29 February at midnight: a paused job keeps a valid schedule that fires once in four years.
PAUSED = "0 0 0 29 2 *"

_MINUTE = 60
_HOUR = 3600
_DAY = 86_400


class ScheduleDerivationError(ValueError):
    """The interval or offset has no exact NCRONTAB form; the message says why."""


def iso_duration(value: timedelta) -> str:
    """A timedelta as the ISO-8601 duration the policy file uses (``PT5M``, ``PT1H30M``)."""
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, _DAY)
    hours, rest = divmod(rest, _HOUR)
    minutes, secs = divmod(rest, _MINUTE)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    text = "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")
    return text if text != "P" else "PT0S"


def describe(value: timedelta) -> str:
    """A duration for people: ``5 min``, ``1 h``, ``90 s``."""
    seconds = int(value.total_seconds())
    for size, unit in ((_DAY, "d"), (_HOUR, "h"), (_MINUTE, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _values(start: int, limit: int, step: int) -> str:
    if start == 0:
        return "*" if step == 1 else f"*/{step}"
    return ",".join(str(value) for value in range(start, limit, step))


def _divisors(total: int) -> str:
    return ", ".join(str(n) for n in range(1, total) if total % n == 0)


def every(interval: timedelta, offset: timedelta = timedelta(0)) -> str:
    """The cron that fires every ``interval``, ``offset`` after each aligned boundary."""
    seconds = interval.total_seconds()
    shift = offset.total_seconds()
    if seconds <= 0 or seconds != int(seconds):
        raise ScheduleDerivationError(
            f"interval {interval} must be a positive whole number of seconds"
        )
    if shift < 0 or shift != int(shift) or shift >= seconds:
        raise ScheduleDerivationError(
            f"offset {iso_duration(offset)} must be whole seconds, at least 0 and shorter "
            f"than the interval {iso_duration(interval)}"
        )
    total, lag = int(seconds), int(shift)
    if total < _MINUTE:
        if _MINUTE % total:
            raise ScheduleDerivationError(
                f"interval {iso_duration(interval)} does not divide a minute evenly, so no "
                f"exact NCRONTAB exists; use one of {_divisors(_MINUTE)} seconds"
            )
        return f"{_values(lag, _MINUTE, total)} * * * * *"
    if total < _HOUR:
        if total % _MINUTE or _HOUR % total:
            raise ScheduleDerivationError(
                f"interval {iso_duration(interval)} does not divide an hour evenly, so no "
                f"exact NCRONTAB exists; use one of {_divisors(_MINUTE)} minutes"
            )
        lag_minutes, lag_seconds = divmod(lag, _MINUTE)
        return f"{lag_seconds} {_values(lag_minutes, 60, total // _MINUTE)} * * * *"
    if total <= _DAY:
        if total % _HOUR or _DAY % total:
            raise ScheduleDerivationError(
                f"interval {iso_duration(interval)} does not divide a day evenly, so no "
                f"exact NCRONTAB exists; use one of {_divisors(24)} hours or P1D"
            )
        lag_hours, rest = divmod(lag, _HOUR)
        lag_minutes, lag_seconds = divmod(rest, _MINUTE)
        return f"{lag_seconds} {lag_minutes} {_values(lag_hours, 24, total // _HOUR)} * * *"
    raise ScheduleDerivationError(
        f"interval {iso_duration(interval)} is longer than a day; use a daily time instead"
    )


def daily_at(moment: time) -> str:
    """The cron that fires once a day at ``moment`` (UTC, whole seconds)."""
    if moment.microsecond or moment.tzinfo is not None:
        raise ScheduleDerivationError(
            f"time {moment.isoformat()} must be whole seconds, UTC, without a zone offset"
        )
    return f"{moment.second} {moment.minute} {moment.hour} * * *"
