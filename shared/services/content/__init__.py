"""Batch content sync from the ERP to every storefront channel (see ``sync`` for the design)."""

from shared.adapters.stores.content_failures import list_failures
from shared.services.content.progress import request_full_pass
from shared.services.content.runs import RunStats, recent_runs
from shared.services.content.sync import ChannelTarget, SyncOptions, run_content_sync
from shared.services.content.wiring import sync_status

__all__ = [
    "ChannelTarget",
    "RunStats",
    "SyncOptions",
    "list_failures",
    "recent_runs",
    "request_full_pass",
    "run_content_sync",
    "sync_status",
]
