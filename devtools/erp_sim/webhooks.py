"""Webhook subscriptions (Business Central's ``subscriptions`` entity) and sending notifications.

The simulator never calls a notification URL on its own, not even for the validation
handshake on create: a control route (``POST /_sim/notify``) asks for it, so tests decide
when traffic flows. Like Business Central, a receiver that answers a 4xx other than 408 or
429 loses its subscription. Only loopback URLs are ever called.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from devtools.erp_sim.reference import SUBSCRIPTION_LIFETIME_DAYS
from devtools.erp_sim.stamps import Stamper, format_timestamp

Row = dict[str, Any]

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_RETRYABLE = frozenset({408, 429})
_USER_ID = "00000000-0000-0000-0000-00000000a11c"


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in _LOOPBACK_HOSTS


class SubscriptionStore:
    """Subscriptions, each held by the API whose endpoint created it (``v2.0`` or
    ``{publisher}/{group}/{version}``); an API lists and changes only its own."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.roots: dict[str, str] = {}
        self._stamper = Stamper()

    def clear(self) -> None:
        self.rows.clear()
        self.roots.clear()

    def at_root(self, prefix: str) -> dict[str, Row]:
        wanted = prefix.lower()
        return {key: row for key, row in self.rows.items() if self.roots.get(key) == wanted}

    def remove(self, subscription_id: str) -> None:
        self.rows.pop(subscription_id, None)
        self.roots.pop(subscription_id, None)

    def create(
        self, notification_url: str, resource: str, client_state: str, prefix: str = "v2.0"
    ) -> Row:
        subscription_id = uuid.uuid4().hex
        row: Row = {
            "@odata.etag": "",
            "subscriptionId": subscription_id,
            "notificationUrl": notification_url,
            "resource": resource,
            "userId": _USER_ID,
            "lastModifiedDateTime": "",
            "clientState": client_state,
            "expirationDateTime": "",
        }
        self._renew(row)
        self.rows[subscription_id] = row
        self.roots[subscription_id] = prefix.lower()
        return row

    def renew(self, row: Row, changes: dict[str, Any]) -> Row:
        """PATCH: apply changes and push the expiry three days out (Business Central's renew)."""
        row.update(changes)
        self._renew(row)
        return row

    def _renew(self, row: Row) -> None:
        now = self._stamper.now()
        self._stamper.touch(row)
        row["expirationDateTime"] = format_timestamp(
            now + timedelta(days=SUBSCRIPTION_LIFETIME_DAYS)
        )

    def active(self) -> list[Row]:
        now = format_timestamp(self._stamper.now())
        return [row for row in self.rows.values() if row["expirationDateTime"] > now]


@dataclass(frozen=True)
class Delivery:
    subscription_id: str
    status: int | None
    outcome: str

    def as_json(self) -> dict[str, Any]:
        return {
            "subscriptionId": self.subscription_id,
            "status": self.status,
            "outcome": self.outcome,
        }


def notification_body(
    subscription: Row, resource: str, change_type: str, modified: str
) -> dict[str, Any]:
    """Business Central's notification payload: a signal only, the receiver reads the record."""
    return {
        "value": [
            {
                "subscriptionId": subscription["subscriptionId"],
                "clientState": subscription["clientState"],
                "expirationDateTime": subscription["expirationDateTime"],
                "resource": resource,
                "changeType": change_type,
                "lastModifiedDateTime": modified,
            }
        ]
    }


# Business Central folds over 1,000 changes within 30 seconds into one "collection"
# notification whose filter reads from 50 ms before the first change.
COLLECTION_WINDOW = timedelta(seconds=30)
_COLLECTION_LEAD = timedelta(milliseconds=50)


def collection_resource(resource: str, first_change: datetime) -> str:
    """``{resource}?$filter=lastModifiedDateTime%20gt%20{first change - 50 ms}``, BC's form."""
    since = format_timestamp(first_change - _COLLECTION_LEAD)
    return f"{resource}?$filter=lastModifiedDateTime%20gt%20{since}"


async def deliver(
    store: SubscriptionStore,
    targets: list[Row],
    *,
    change_type: str,
    entity_id: str | None,
    handshake: bool,
    first_change: datetime | None = None,
    timeout_seconds: float = 5.0,
) -> list[Delivery]:
    """Send one notification (or the validation handshake) to each target subscription.

    A "collection" notification names the set with BC's filter (from ``first_change``,
    default 30 seconds ago) and carries the last change's time (now).
    """
    deliveries: list[Delivery] = []
    now = Stamper().now()
    modified = format_timestamp(now)
    async with httpx.AsyncClient(timeout=timeout_seconds) as client:
        for subscription in targets:
            url = subscription["notificationUrl"]
            subscription_id = subscription["subscriptionId"]
            if not is_loopback_url(url):
                deliveries.append(Delivery(subscription_id, None, "refused: not a loopback URL"))
                continue
            try:
                if handshake:
                    token = secrets.token_urlsafe(16)
                    response = await client.post(url, params={"validationToken": token})
                    echoed = response.status_code == 200 and response.text == token
                    outcome = "validated" if echoed else "validation failed"
                else:
                    resource = subscription["resource"]
                    if change_type == "collection":
                        resource = collection_resource(
                            resource, first_change or now - COLLECTION_WINDOW
                        )
                    elif entity_id:
                        resource = f"{resource}({entity_id})"
                    body = notification_body(subscription, resource, change_type, modified)
                    response = await client.post(url, json=body)
                    outcome = _outcome(store, subscription_id, response.status_code)
                deliveries.append(Delivery(subscription_id, response.status_code, outcome))
            except httpx.HTTPError as exc:
                deliveries.append(Delivery(subscription_id, None, f"failed: {type(exc).__name__}"))
    return deliveries


def _outcome(store: SubscriptionStore, subscription_id: str, status: int) -> str:
    if status < 300:
        return "delivered"
    if status in _RETRYABLE or status >= 500:
        return "will retry"
    # Business Central drops a subscription whose receiver refuses with another status.
    store.remove(subscription_id)
    return "subscription deleted"
