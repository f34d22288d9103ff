"""The content sync as the app settings configure it: channels, adapters and run sizes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from shared.adapters.channels_webhook import WebhookPolicy, catalog_webhook_channels
from shared.adapters.stores import sync_state
from shared.adapters.tables import TableStore
from shared.config.cron import iso_duration
from shared.config.policy import policy_for
from shared.config.settings import Settings
from shared.domain.content.listing import ChannelProfile
from shared.services.content import progress
from shared.services.content.delivery import BatchLimits
from shared.services.content.sync import ChannelTarget, SyncOptions


def channel_targets(
    settings: Settings, http: httpx.AsyncClient, policy: WebhookPolicy | None = None
) -> dict[str, ChannelTarget]:
    """Every configured channel that has a catalog webhook, with its assortment and adapter."""
    channels = settings.channels
    adapters = catalog_webhook_channels(
        {name: channel.catalog_webhook for name, channel in channels.items()},
        settings.channel_secret,
        settings.storefront_base_url,
        http,
        policy
        or WebhookPolicy(max_retry_after_seconds=settings.storefront_max_retry_after_seconds),
    )
    return {
        name: ChannelTarget(
            ChannelProfile(
                name=name,
                locale=channel.locale,
                currency=channel.currency,
                categories=None if channel.categories == "*" else frozenset(channel.categories),
            ),
            adapters[name],
        )
        for name, channel in channels.items()
        if name in adapters
    }


def sync_options(settings: Settings) -> SyncOptions:
    return SyncOptions(
        budget_seconds=settings.content_run_budget_seconds,
        erp_page_size=settings.content_erp_page_size,
        lookup_size=settings.content_erp_lookup_size,
        batch=BatchLimits(max_operations=settings.content_batch_size),
        price_currency=settings.local_currency,
    )


async def sync_status(
    tables: TableStore, settings: Settings, now: datetime | None = None
) -> dict[str, Any]:
    """Watermarks, the pass under way, a pending full pass, the configured channels, and
    whether the last successful run is older than the policy's content freshness objective."""
    checkpoint = await progress.load_checkpoint(tables)
    objective = policy_for(settings.sync_policy).content.freshness_objective
    mark = await sync_state.read_watermark(tables, progress.CONTENT_WATERMARK)
    moment = now or datetime.now(UTC)
    return {
        "watermark": (await progress.read_watermarks(tables)).as_json(),
        "lastSuccessAt": mark.last_success_at.isoformat() if mark.last_success_at else None,
        "freshnessObjective": iso_duration(objective),
        "stale": mark.last_success_at is None or moment - mark.last_success_at > objective,
        "passInProgress": checkpoint.as_json() if checkpoint else None,
        "fullPassRequested": await progress.full_pass_request(tables) is not None,
        "channels": {
            name: {
                "currency": channel.currency,
                "locale": channel.locale,
                "categories": channel.categories,
                "catalogWebhook": bool(channel.catalog_webhook),
            }
            for name, channel in settings.channels.items()
        },
    }
