"""Stock level alerts: an outbox in the item's partition, then the ``stock-alerts`` topic.

An alert row is written in the same entity-group transaction as the position change that
caused it, so an alert exists exactly when the change does; it is published after the commit
and deleted once the topic accepted it. If publishing fails, the row stays and the next
handler or sweep that touches the item publishes it. The MessageId is the alert id, derived
from the position state, so publishing a row twice is dropped by duplicate detection on the
topic (and a storefront can dedupe on it beyond the window).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.adapters.ports import MessageSender, TableStorage
from shared.adapters.stores.stock import POSITIONS_TABLE
from shared.domain.stock import ThresholdCrossing

ALERTS_TOPIC = "stock-alerts"
ALERT_KIND = "alert"
# Row keys of alert rows start with this; real location codes never do.
ALERT_ROW_PREFIX = "~alert~"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingAlert:
    """An alert waiting in the outbox of its item's partition."""

    alert_id: str
    sku: str
    body: Mapping[str, Any]

    @property
    def row_key(self) -> str:
        return f"{ALERT_ROW_PREFIX}{self.alert_id}"

    def to_entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": self.sku,
            "RowKey": self.row_key,
            "kind": ALERT_KIND,
            "alertId": self.alert_id,
            "body": json.dumps(dict(self.body), separators=(",", ":")),
        }


def pending_alert(crossing: ThresholdCrossing, state_token: str) -> PendingAlert:
    """The outbox entry for a crossing; ``state_token`` names the position state it reached."""
    digest = hashlib.sha256(
        "\x1f".join(
            [
                crossing.sku,
                str(crossing.scope),
                crossing.scope_id,
                str(crossing.level_after),
                str(crossing.available_after),
                state_token,
            ]
        ).encode("utf-8")
    ).hexdigest()
    alert_id = f"stock-{digest[:40]}"
    return PendingAlert(alert_id, crossing.sku, {"alertId": alert_id, **crossing.to_message()})


def is_alert_row(entity: Mapping[str, Any]) -> bool:
    return entity.get("kind") == ALERT_KIND


def alert_from_entity(entity: Mapping[str, Any]) -> PendingAlert:
    body = json.loads(str(entity["body"]))
    return PendingAlert(str(entity["alertId"]), str(entity["PartitionKey"]), body)


async def publish_alerts(
    bus: MessageSender, tables: TableStorage, alerts: Iterable[PendingAlert]
) -> int:
    """Send each alert, then delete its outbox row; returns how many were sent.

    One at a time on purpose: the first concurrent sends on a fresh sender race while it
    opens. Raises the first bus error after trying all; rows of unsent alerts stay for a retry.
    """
    sent = 0
    failure: Exception | None = None
    for alert in alerts:
        try:
            await _publish_one(bus, tables, alert)
        except Exception as error:  # any failure leaves the row for the next attempt
            failure = failure or error
            continue
        sent += 1
    if failure is not None:
        _log.warning("some stock alerts not published yet (%d sent): %s", sent, failure)
        raise failure
    return sent


async def _publish_one(bus: MessageSender, tables: TableStorage, alert: PendingAlert) -> None:
    await bus.send_json(
        ALERTS_TOPIC,
        alert.body,
        message_id=alert.alert_id,
        subject="stock-level",
        properties=_properties(alert.body),
    )
    await tables.delete(POSITIONS_TABLE, alert.sku, alert.row_key)


def _properties(body: Mapping[str, Any]) -> dict[str, str | int]:
    # Application properties let a subscription filter (e.g. only out-of-stock) without parsing.
    return {
        name: str(body[name])
        for name in ("scope", "level", "direction")
        if isinstance(body.get(name), str)
    }


def alerts_of(rows: Sequence[Mapping[str, Any]]) -> list[PendingAlert]:
    """The outbox entries among a partition's rows."""
    return [alert_from_entity(row) for row in rows if is_alert_row(row)]
