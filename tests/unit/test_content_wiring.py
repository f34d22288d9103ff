"""The content sync as the settings configure it, and which pass a run chooses."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from shared.bootstrap import channel_targets, sync_options
from shared.config.settings import Settings, SettingsError, load_settings
from shared.services.content.progress import Checkpoint, Watermarks
from shared.services.content.sync import _choose_mode


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields.values():
        for choice in getattr(field.validation_alias, "choices", []):
            monkeypatch.delenv(str(choice), raising=False)


async def test_demo_channels_become_targets_with_their_assortment_and_webhook() -> None:
    async with httpx.AsyncClient() as http:
        targets = channel_targets(load_settings(STOREFRONT_BASE_URL="http://127.0.0.1:9"), http)
    assert set(targets) == {"web", "b2b-eu"}
    assert targets["web"].profile.categories is None
    assert targets["b2b-eu"].profile.categories == frozenset(
        {"CHAIR", "DESK", "LAMP", "STORAGE", "TABLE"}
    )
    assert targets["b2b-eu"].profile.currency == "EUR"
    assert targets["b2b-eu"].adapter.name == "b2b-eu"
    adapter = targets["web"].adapter
    assert getattr(adapter, "url", "") == "http://127.0.0.1:9/channels/web/catalog/batch"


async def test_a_channel_without_a_webhook_is_not_a_target() -> None:
    channels = '{"web": {"catalogWebhook": "/channels/web/catalog/batch"}, "pos": {}}'
    settings = load_settings(CHANNELS=channels, CHANNEL_SECRETS='{"web": "a", "pos": "b"}')
    async with httpx.AsyncClient() as http:
        assert set(channel_targets(settings, http)) == {"web"}


def test_run_sizes_come_from_the_settings() -> None:
    options = sync_options(
        load_settings(
            CONTENT_RUN_BUDGET_SECONDS="120",
            CONTENT_ERP_PAGE_SIZE="2000",
            CONTENT_ERP_LOOKUP_SIZE="50",
            CONTENT_BATCH_SIZE="200",
            LOCAL_CURRENCY="EUR",
        )
    )
    assert (options.budget_seconds, options.erp_page_size, options.lookup_size) == (120, 2000, 50)
    assert options.batch.max_operations == 200 and options.price_currency == "EUR"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONTENT_RUN_BUDGET_SECONDS", "900"),  # would not fit the 10-minute function timeout
        ("CONTENT_ERP_PAGE_SIZE", "20001"),  # Business Central answers 413 above 20,000
        ("CONTENT_BATCH_SIZE", "0"),
        ("SYNC_POLICY", '{"content": {"deltaInterval": "PT25M"}}'),
    ],
)
def test_bad_content_settings_are_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(**{name: value})


NOW = datetime(2025, 6, 1, tzinfo=UTC)
SYNCED = Watermarks(NOW, NOW)


@pytest.mark.parametrize(
    ("requested", "checkpoint", "full_request", "marks", "expected"),
    [
        ("delta", None, None, SYNCED, "delta"),
        ("delta", None, None, Watermarks(None, None), "full"),  # first sync ever
        ("delta", None, "etag", SYNCED, "full"),  # the nightly request waits for the lease
        ("full", None, None, SYNCED, "full"),
        ("delta", Checkpoint("full", "p", NOW), None, SYNCED, "full"),  # finish it first
        ("delta", Checkpoint("delta", "p", NOW), None, SYNCED, "delta"),
        ("full", Checkpoint("delta", "p", NOW), None, SYNCED, "full"),
    ],
)
def test_which_pass_a_run_works_on(
    requested: str,
    checkpoint: Checkpoint | None,
    full_request: str | None,
    marks: Watermarks,
    expected: str,
) -> None:
    assert _choose_mode(requested, checkpoint, full_request, marks) == expected  # type: ignore[arg-type]
