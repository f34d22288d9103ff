"""Timer schedules: NCRONTAB (`{second} {minute} {hour} {day} {month} {dow}`), evaluated in
UTC as the host does without WEBSITE_TIME_ZONE. TimeSpan schedules (`hh:mm:ss`) are refused:
the Flex Consumption plan does not allow them, so an app using one would not run on Azure.

NCRONTAB requires both day-of-month and day-of-week to match when both are restricted
(unlike Unix cron's "either"), so croniter runs with `day_or=False`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter

from devtools.runner.host_config import parse_timespan


class ScheduleError(ValueError):
    """The schedule string is neither NCRONTAB nor a TimeSpan."""


@dataclass(frozen=True)
class Schedule:
    """When a timer fires; `expression` is the resolved text for logs and the admin API."""

    expression: str
    _cron: str | None
    _interval: timedelta | None

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        text = " ".join(expression.split())
        fields = text.split(" ")
        if len(fields) in (5, 6):
            # Five fields are accepted too: NCRONTAB then means "at second 0".
            cron = text if len(fields) == 6 else f"0 {text}"
            if not croniter.is_valid(cron, second_at_beginning=True):
                raise ScheduleError(f"{expression!r} is not a valid NCRONTAB expression")
            return cls(expression=text, _cron=cron, _interval=None)
        try:
            parse_timespan(text)
        except ValueError:
            raise ScheduleError(f"{expression!r} is not a six-field NCRONTAB expression") from None
        raise ScheduleError(
            f"{expression!r} is a TimeSpan schedule; the Flex Consumption plan allows "
            "NCRONTAB expressions only"
        )

    def _iter(self, start: datetime) -> croniter:
        assert self._cron is not None
        return croniter(self._cron, start, second_at_beginning=True, day_or=False)

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (timezone-aware UTC)."""
        if self._interval is not None:
            return moment + self._interval
        result: datetime = self._iter(moment).get_next(datetime)
        return result
