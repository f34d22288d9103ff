"""The declared sync policy: the shipped file, overrides, derived schedules, clear failures."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from devtools.runner.schedules import Schedule
from shared.config import cron as policy_cron
from shared.config.policy import (
    POLICY_FILE,
    PolicyError,
    UnknownJob,
    deep_merge,
    load_policy,
)
from shared.config.settings import SettingsError, load_settings

START = datetime(2025, 3, 3, 0, 0, 7, tzinfo=UTC)


def _fire_times(cron: str, count: int) -> list[datetime]:
    schedule = Schedule.parse(cron)
    times, moment = [], START
    for _ in range(count):
        moment = schedule.next_after(moment)
        times.append(moment)
    return times


def test_the_shipped_policy_loads_with_the_documented_objectives() -> None:
    policy = load_policy()
    assert policy.prices.pattern == "published-delta"
    assert policy.prices.freshness_objective == timedelta(minutes=15)
    assert policy.credit.max_cached == timedelta(minutes=5)
    assert policy.stock.freshness_objective == timedelta(seconds=5)
    assert policy.audit.accuracy_objective == Decimal("0.99")
    assert policy.impact.cost_per_manual_correction == Decimal("25.00")
    assert [row.name for row in policy.domains()] == [
        "prices",
        "credit",
        "stock",
        "orders",
        "content",
    ]
    # Every job's cron is valid for the host and fires exactly at its declared interval.
    for job, cron in policy.schedules().items():
        assert len(cron.split()) == 6, job
        Schedule.parse(cron)
    delta = _fire_times(policy.schedule("price_publish_delta"), 4)
    assert {b - a for a, b in itertools.pairwise(delta)} == {policy.prices.delta_interval}


def test_an_override_changes_a_schedule_and_a_bound_and_keeps_the_rest() -> None:
    shipped = load_policy()
    changed = load_policy('{"prices": {"deltaInterval": "PT10M", "freshnessObjective": "PT40M"}}')
    assert changed.prices.delta_interval == timedelta(minutes=10)
    assert changed.schedule("price_publish_delta") != shipped.schedule("price_publish_delta")
    fires = _fire_times(changed.schedule("price_publish_delta"), 3)
    assert [b - a for a, b in itertools.pairwise(fires)] == [timedelta(minutes=10)] * 2
    assert changed.prices.freshness_objective == timedelta(minutes=40)
    # Deep merge: siblings in the same section and other sections are untouched.
    assert changed.prices.full_at == shipped.prices.full_at
    assert changed.content == shipped.content


def test_a_paused_job_keeps_a_valid_schedule_that_practically_never_fires() -> None:
    policy = load_policy(
        '{"content": {"paused": true}, "housekeeping": {"heartbeat": {"paused": true}}}'
    )
    for job in ("content_sync_delta", "content_sync_full", "heartbeat"):
        assert policy.schedule(job) == policy_cron.PAUSED
        first, second = _fire_times(policy.schedule(job), 2)
        assert second - first > timedelta(days=365)
    assert "paused" in policy.domains()[4].objective
    assert policy.schedule("price_publish_delta") != policy_cron.PAUSED


@pytest.mark.parametrize(
    ("interval", "offset", "expected"),
    [
        ("PT30S", "PT0S", "*/30 * * * * *"),
        ("PT1M", "PT15S", "15 * * * * *"),
        ("PT5M", "PT0S", "0 */5 * * * *"),
        ("PT20M", "PT5M", "0 5,25,45 * * * *"),
        ("PT1H", "PT20M", "0 20 * * * *"),
        ("PT6H", "PT1H30M", "0 30 1,7,13,19 * * *"),
        ("P1D", "PT2H", "0 0 2 * * *"),
    ],
)
def test_intervals_become_exact_crons(interval: str, offset: str, expected: str) -> None:
    override = {"housekeeping": {"orderPurge": {"interval": interval, "offset": offset}}}
    policy = load_policy(json.dumps(override))
    cron = policy.schedule("orders_purge_keys")
    assert cron == expected
    fires = _fire_times(cron, 3)
    declared = policy.housekeeping.order_purge.interval
    assert [b - a for a, b in itertools.pairwise(fires)] == [declared] * 2


@pytest.mark.parametrize(
    ("override", "mentions"),
    [
        ('{"prices": {"deltaInterval": "PT7M"}}', "prices.deltaInterval"),
        ('{"prices": {"deltaInterval": "PT7M"}}', "does not divide an hour evenly"),
        ('{"stock": {"reconcileInterval": "PT5H"}}', "does not divide a day evenly"),
        ('{"prices": {"freshnessObjective": "PT2M"}}', "at least deltaInterval"),
        ('{"credit": {"maxCached": 300}}', "credit.maxCached"),
        ('{"credit": {"maxCached": "P1M"}}', "ISO-8601 duration"),
        ('{"credit": {"intakeCache": "PT6M"}}', "intakeCache must not exceed maxCached"),
        ('{"content": {"fullAt": "25:00"}}', "content.fullAt"),
        ('{"housekeeping": {"orderSweep": {"offset": "PT90S"}}}', "shorter than the interval"),
        ('{"audit": {"accuracyObjective": "1.5"}}', "audit.accuracyObjective"),
        ('{"impact": {"currency": "usd"}}', "impact.currency"),
        ('{"prices": {"deltaIntervall": "PT5M"}}', "prices.deltaIntervall"),
        ('{"prices": {"pattern": "live"}}', "prices.pattern"),
        ('["not", "an", "object"]', "must be a JSON object"),
        ("{not json", "not JSON"),
    ],
)
def test_a_malformed_policy_fails_naming_the_field(override: str, mentions: str) -> None:
    with pytest.raises(PolicyError, match="invalid sync policy") as failed:
        load_policy(override)
    assert mentions in str(failed.value)
    assert "SYNC_POLICY" in str(failed.value)


def test_a_malformed_shipped_file_is_named(tmp_path: Path) -> None:
    document = json.loads(POLICY_FILE.read_text())
    document["orders"]["bookingObjective"] = "PT0S"
    broken = tmp_path / "sync_policy.json"
    broken.write_text(json.dumps(document))
    with pytest.raises(PolicyError, match=r"sync_policy\.json\): orders\.bookingObjective"):
        load_policy(path=broken)


def test_the_app_setting_stops_start_up_naming_itself_and_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNC_POLICY", '{"content": {"deltaInterval": "PT25M"}}')
    with pytest.raises(SettingsError, match=r"SYNC_POLICY.*content\.deltaInterval"):
        load_settings()
    monkeypatch.setenv(
        "SYNC_POLICY", '{"content": {"deltaInterval": "PT30M", "freshnessObjective": "PT30M"}}'
    )
    assert load_settings().sync_policy


def test_unknown_jobs_are_refused() -> None:
    with pytest.raises(UnknownJob, match="no timer job"):
        load_policy().schedule("price_publish_hourly")


def test_deep_merge_merges_objects_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}
    assert deep_merge(base, {"a": {"c": {"d": 3}}, "e": [2]}) == {
        "a": {"b": 1, "c": {"d": 3}},
        "e": [2],
    }
    assert base["a"] == {"b": 1, "c": {"d": 2}}  # the input is not changed


def test_daily_times_and_durations_render_for_people() -> None:
    assert policy_cron.daily_at(time(2, 30)) == "0 30 2 * * *"
    assert policy_cron.iso_duration(timedelta(hours=1, minutes=30)) == "PT1H30M"
    assert policy_cron.describe(timedelta(seconds=90)) == "90 s"
    assert policy_cron.describe(timedelta(minutes=15)) == "15 min"
