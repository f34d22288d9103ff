"""Status at a glance: each operations area as green, amber or red with a one-line reason.

Pure rules over what the overview read, so they are unit-tested without any I/O. Red means
someone should act now (a failed run, a dependency down, the ERP breaker open, an unreadable
section); amber means look soon (dead letters waiting, drift found, stale or missing data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.adapters.stores.timer_runs import TimerStatus

if TYPE_CHECKING:
    from shared.services.operations.dead_letters import DeadLetterCounts

Level = Literal["green", "amber", "red"]
# Watermarks whose last success is older than this are stale (the slowest job is nightly).
STALE_AFTER = timedelta(hours=26)


class AreaStatus(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    area: str
    level: Level
    reason: str


# Here, not in the overview, because the status reads it and the overview imports the status.
class DriftRun(BaseModel):
    """One reconciliation run: how many keys drifted and the largest drift (a decimal string)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    run_id: str
    started_at: datetime | None = None
    outcome: str
    checked: int = 0
    drifted: int = 0
    seeded: int = 0
    largest_drift: str = Field("0", pattern=r"^-?[0-9]+(\.[0-9]+)?$")
    largest_sku: str = ""
    largest_location: str = ""
    error: str = ""


def _names(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def timers_status(timers: Sequence[TimerStatus], now: datetime) -> AreaStatus:
    failed = [t for t in timers if t.last_run and t.last_run.result == "failed"]
    if failed:
        first = failed[0].last_run
        assert first is not None
        return AreaStatus(
            area="timers",
            level="red",
            reason=f"last run failed: {_names([t.name for t in failed])} ({first.error})",
        )
    interrupted = [t.name for t in timers if t.last_run and t.last_run.result == "interrupted"]
    if interrupted:
        return AreaStatus(
            area="timers",
            level="amber",
            reason=f"last run ended without a record (process stopped): {_names(interrupted)}",
        )
    never = [t.name for t in timers if t.never_ran]
    if never:
        return AreaStatus(area="timers", level="amber", reason=f"never ran: {_names(never)}")
    skipped = [t.name for t in timers if t.last_run and t.last_run.result == "skipped-lease-held"]
    if skipped:
        return AreaStatus(
            area="timers", level="amber", reason=f"last run skipped (lease held): {_names(skipped)}"
        )
    return AreaStatus(area="timers", level="green", reason=f"{len(timers)} timers, last runs ok")


def watermarks_status(
    watermarks: Sequence[tuple[str, datetime | None]], now: datetime
) -> AreaStatus:
    judged = [(job, at) for job, at in watermarks if at is not None]
    if not judged:
        return AreaStatus(
            area="watermarks", level="amber", reason="no successful sync recorded yet"
        )
    stale = [job for job, at in judged if now - at > STALE_AFTER]
    if stale:
        hours = int(STALE_AFTER.total_seconds() // 3600)
        return AreaStatus(
            area="watermarks", level="amber", reason=f"no success for {hours}h: {_names(stale)}"
        )
    newest_age = min(now - at for _job, at in judged)
    return AreaStatus(
        area="watermarks",
        level="green",
        reason=f"{len(judged)} jobs fresh, newest success {int(newest_age.total_seconds())}s ago",
    )


def dead_letters_status(counts: DeadLetterCounts | None) -> AreaStatus:
    if counts is None:
        return AreaStatus(area="dead letters", level="red", reason="dead-letter queues unreadable")
    unreadable = [c.entity for c in counts.entities if c.count is None]
    if unreadable:
        return AreaStatus(
            area="dead letters", level="red", reason=f"unreadable: {_names(unreadable)}"
        )
    waiting = [f"{c.entity} {c.display}" for c in counts.entities if c.count]
    if waiting:
        return AreaStatus(area="dead letters", level="amber", reason=f"waiting: {_names(waiting)}")
    return AreaStatus(area="dead letters", level="green", reason="no dead-lettered messages")


def drift_status(drift: Sequence[DriftRun]) -> AreaStatus:
    if not drift:
        return AreaStatus(area="reconciliation", level="amber", reason="no reconciliation run yet")
    last = drift[0]
    if last.outcome != "succeeded":
        return AreaStatus(
            area="reconciliation", level="red", reason=f"last run {last.outcome}: {last.error}"
        )
    if last.drifted:
        return AreaStatus(
            area="reconciliation",
            level="amber",
            reason=f"last run corrected {last.drifted} drifted keys (largest {last.largest_drift}"
            f" on {last.largest_sku}@{last.largest_location})",
        )
    return AreaStatus(
        area="reconciliation", level="green", reason=f"last run: {last.checked} keys in sync"
    )


def erp_status(breaker_state: str, booking_breakers: Sequence[tuple[str, str]] = ()) -> AreaStatus:
    """The default principal's breaker decides; a booking principal whose breaker is open
    (e.g. a revoked secret) makes it amber, since bookings still go through the others."""
    if breaker_state == "open":
        return AreaStatus(
            area="erp", level="red", reason="circuit breaker open: ERP calls fail fast"
        )
    if breaker_state == "half_open":
        return AreaStatus(area="erp", level="amber", reason="circuit breaker half-open: probing")
    stopped = [name for name, state in booking_breakers if state == "open"]
    if stopped:
        return AreaStatus(
            area="erp",
            level="amber",
            reason=f"circuit breaker open for booking principal(s) {_names(stopped)}: "
            "bookings go through the others",
        )
    return AreaStatus(area="erp", level="green", reason="circuit breaker closed")


def health_status(dependencies: Sequence[tuple[str, str, str]]) -> AreaStatus:
    if not dependencies:
        return AreaStatus(area="health", level="red", reason="health could not be checked")
    down = [
        f"{name} ({detail})" if detail else name
        for name, status, detail in dependencies
        if status != "ok"
    ]
    if down:
        return AreaStatus(area="health", level="red", reason=f"down: {_names(down)}")
    names = ", ".join(name for name, _s, _d in dependencies)
    return AreaStatus(area="health", level="green", reason=f"{names} reachable")


def assess(
    *,
    now: datetime,
    timers: Sequence[TimerStatus],
    watermarks: Sequence[tuple[str, datetime | None]],
    dead_letters: DeadLetterCounts | None,
    drift: Sequence[DriftRun],
    breaker_state: str,
    dependencies: Sequence[tuple[str, str, str]],
    section_errors: Mapping[str, str],
    booking_breakers: Sequence[tuple[str, str]] = (),
) -> list[AreaStatus]:
    """One status per area; an area whose section could not be read is red."""
    found = [
        ("timers", timers_status(timers, now)),
        ("watermarks", watermarks_status(watermarks, now)),
        ("deadLetters", dead_letters_status(dead_letters)),
        ("drift", drift_status(drift)),
        ("erp", erp_status(breaker_state, booking_breakers)),
        ("health", health_status(dependencies)),
    ]
    return [
        AreaStatus(area=status.area, level="red", reason=f"could not read: {section_errors[key]}")
        if key in section_errors
        else status
        for key, status in found
    ]
