"""Which Business Central subscriptions are ours, recorded in Table storage.

The notification receiver needs it to answer without ever making BC delete a subscription it
should keep: a wrong ``clientState`` on one of *our* subscriptions is refused (someone is
forging), while a notification for a subscription we do not know (another environment's,
pointing at the same URL, or one created a moment ago) is answered 202 and counted. One row
per subscription id, written by the maintenance timer, which alone creates subscriptions.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.adapters.erp.odata import Api
from shared.adapters.ports import TableStorage

REGISTRY_TABLE = "ErpSubscriptions"
_PARTITION = "subscription"


async def remember(tables: TableStorage, subscription_id: str, entity_set: str, api: Api) -> None:
    """Record (or refresh) one of our subscriptions; idempotent."""
    await tables.upsert(
        REGISTRY_TABLE,
        {
            "PartitionKey": _PARTITION,
            "RowKey": subscription_id,
            "EntitySet": entity_set,
            "Api": str(api),
            "SeenAt": datetime.now(UTC).isoformat(),
        },
    )


async def forget(tables: TableStorage, subscription_id: str) -> None:
    """Drop a subscription we deleted in the ERP; a missing row is fine."""
    await tables.delete(REGISTRY_TABLE, _PARTITION, subscription_id)


async def is_ours(tables: TableStorage, subscription_id: str) -> bool:
    """True when the maintenance timer created or kept this subscription."""
    return await tables.get(REGISTRY_TABLE, _PARTITION, subscription_id) is not None
