"""Where the content sync stands, as the admin route shows it (the composition root builds the
sync's channels and run sizes from the settings: ``shared.bootstrap``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.adapters.ports import TableStorage
from shared.adapters.stores import sync_state
from shared.config.cron import iso_duration
from shared.config.policy import policy_for
from shared.config.settings import Settings
from shared.services.content import progress


async def sync_status(
    tables: TableStorage, settings: Settings, now: datetime | None = None
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
