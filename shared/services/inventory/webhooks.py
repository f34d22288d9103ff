"""Business Central change notifications: receive fast, then read the changed records back.

The receiving side (HTTP) only checks the ``clientState`` and queues each notification on
``erp-notifications``; it answers in milliseconds, so Business Central never times out and
retries. A notification is only a signal, so the processor (Service Bus) reads the record
back from the ERP and turns stock rows into ERP snapshots on ``inventory-events`` (the one
path every stock change takes); changes to items or price list lines start a price delta.

Why processing a notification twice is harmless: the read-back is absolute (the ERP's current
figures, applied as a correction that refuses to overwrite newer events), and a price delta
run is idempotent and guarded by its lease.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import unquote
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.errors import ErpNotFound
from shared.adapters.erp.models import ItemAvailability
from shared.adapters.erp.odata import Api, guid_key, string_key
from shared.adapters.ports import MessageSender, TableStorage
from shared.adapters.stores.lease import LeaseHeld
from shared.services.http_contract import WireModel
from shared.services.inventory.messages import (
    INVENTORY_QUEUE,
    ErpStockSnapshot,
    snapshot_of_row,
)
from shared.services.pricing import publisher as price_publisher

NOTIFICATIONS_QUEUE = "erp-notifications"
AVAILABILITY_SET = "itemAvailabilityByLocation"
PRICE_SETS = frozenset({"items", "priceListLines", "itemUnitsOfMeasure"})
_MAX_NOTIFICATIONS = 1000
MAX_VALIDATION_TOKEN_LENGTH = 4096
_log = logging.getLogger(__name__)


class ErpNotification(BaseModel):
    """One entry of Business Central's notification payload (a signal, not the record)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    subscription_id: str = Field(alias="subscriptionId", min_length=1, max_length=200)
    client_state: str | None = Field(default=None, alias="clientState", max_length=2048)
    expiration_date_time: datetime | None = Field(default=None, alias="expirationDateTime")
    resource: str = Field(min_length=1, max_length=2000)
    change_type: Literal["created", "updated", "deleted", "collection"] = Field(alias="changeType")
    last_modified_date_time: AwareDatetime = Field(alias="lastModifiedDateTime")

    @field_validator("last_modified_date_time", "expiration_date_time", mode="before")
    @classmethod
    def _offset_optional(cls, value: object) -> object:
        # A refusal would make BC delete the subscription; BC's times are UTC anyway.
        parsed = _as_datetime(value)
        if parsed is not None and parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return value

    @property
    def message_id(self) -> str:
        """Stable per notification, so a retried POST is dropped by duplicate detection."""
        digest = hashlib.sha256(
            "\x1f".join(
                [
                    self.subscription_id,
                    self.resource,
                    self.change_type,
                    self.last_modified_date_time.isoformat(),
                ]
            ).encode("utf-8")
        ).hexdigest()
        return f"erpn-{digest[:40]}"

    def to_message(self) -> dict[str, object]:
        # The client state is a shared secret: it stops at the door.
        return self.model_dump(
            mode="json", by_alias=True, exclude={"client_state"}, exclude_none=True
        )


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def has_naive_time(raw: object) -> bool:
    """True when a raw notification's ``lastModifiedDateTime`` carries no offset."""
    if not isinstance(raw, dict):
        return False
    parsed = _as_datetime(raw.get("lastModifiedDateTime"))
    return parsed is not None and parsed.tzinfo is None


class ErpNotificationBatch(BaseModel):
    """The POST body: ``{"value": [...]}``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    value: list[ErpNotification] = Field(min_length=1, max_length=_MAX_NOTIFICATIONS)


class ValidationHandshake(BaseModel):
    """``?validationToken=``: Business Central proving the URL; the token is echoed as text."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    validation_token: str | None = Field(
        None, alias="validationToken", min_length=1, max_length=MAX_VALIDATION_TOKEN_LENGTH
    )


class NotificationsQueued(WireModel):
    """202 of ``POST /api/erp/notifications``: how many notifications were queued."""

    queued: int = Field(ge=0)


class ClientStateMismatch(PermissionError):
    """A notification for one of our subscriptions did not carry its ``clientState``."""


IsOurs = Callable[[str], Awaitable[bool]]


@dataclass
class Sorted:
    """A batch split by what the receiver does with each notification."""

    accepted: list[ErpNotification] = field(default_factory=list)
    # Another environment's subscription pointing at our URL: answered 202 and dropped.
    foreign: list[ErpNotification] = field(default_factory=list)
    # Ours by clientState but not (yet) in the registry: queued, and counted.
    unregistered: int = 0


def _state_matches(notification: ErpNotification, wanted: bytes) -> bool:
    given = (notification.client_state or "").encode("utf-8")
    return hmac.compare_digest(given, wanted)


async def sort_notifications(batch: ErpNotificationBatch, expected: str, is_ours: IsOurs) -> Sorted:
    """Split a batch; ``ClientStateMismatch`` only when a subscription we hold carries a
    wrong clientState (the one case worth BC deleting the subscription for).

    Business Central deletes a subscription on any 4xx other than 408/429, so a notification
    we cannot place (an unknown subscription, another environment's secret) is not refused.
    """
    wanted = expected.encode("utf-8")
    result = Sorted()
    known: dict[str, bool] = {}
    for notification in batch.value:
        sid = notification.subscription_id
        if sid not in known:
            known[sid] = await is_ours(sid)
        if _state_matches(notification, wanted):
            result.accepted.append(notification)
            result.unregistered += 0 if known[sid] else 1
        elif known[sid]:
            raise ClientStateMismatch(
                f"notification for our subscription {sid} has a wrong clientState"
            )
        else:
            result.foreign.append(notification)
    return result


def check_client_state(batch: ErpNotificationBatch, expected: str) -> None:
    """Every notification must carry the configured client state (compared in constant time)."""
    wanted = expected.encode("utf-8")
    for notification in batch.value:
        if not _state_matches(notification, wanted):
            raise ClientStateMismatch(
                f"notification for subscription {notification.subscription_id} has a wrong "
                "clientState"
            )


async def enqueue_notifications(
    bus: MessageSender, notifications: ErpNotificationBatch | Sequence[ErpNotification]
) -> int:
    """Queue each notification for the processor; ``BusSendFailed`` if one was not accepted."""
    if isinstance(notifications, ErpNotificationBatch):
        notifications = notifications.value
    for notification in notifications:
        await bus.send_json(
            NOTIFICATIONS_QUEUE,
            notification.to_message(),
            message_id=notification.message_id,
            subject=notification.change_type,
        )
    return len(notifications)


_ENTITY_SET = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class ResourceRef:
    """The entity set, the key (single-record notifications) and, for a "collection"
    notification, the time its filter reads from."""

    entity_set: str
    key: str | None
    modified_after: datetime | None = None


# BC's collection form: ``...{set}?$filter=lastModifiedDateTime%20gt%20{first change - 50 ms}``.
_COLLECTION_FILTER = re.compile(
    r"^\$filter=lastModifiedDateTime\s+gt\s+(?P<time>[0-9T:.\-+Z]+)\s*$", re.IGNORECASE
)


def _filter_time(query: str) -> datetime | Literal[False] | None:
    """The time of a collection filter; None without a query; False if it is not that form."""
    if not query:
        return None
    match = _COLLECTION_FILTER.match(unquote(query.replace("+", " ")).strip())
    if match is None:
        return False
    moment = _as_datetime(match.group("time"))
    if moment is None:
        return False
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _final_key_start(text: str) -> int | None:
    """Where the key segment that closes ``text`` opens, skipping quoted literals.

    String keys are OData literals that may hold ``/ ( ) '`` themselves (``'AB/12#3'``), so
    the path cannot simply be split on slashes.
    """
    depth, in_quote, last_open, index = 0, False, None, 0
    while index < len(text):
        char = text[index]
        if in_quote:
            if char == "'" and text[index + 1 : index + 2] == "'":
                index += 1  # a doubled quote inside the literal
            elif char == "'":
                in_quote = False
        elif char == "'":
            in_quote = True
        elif char == "(":
            if depth == 0:
                last_open = index
            depth += 1
        elif char == ")":
            depth -= 1
        index += 1
    if in_quote or depth != 0 or not text.endswith(")"):
        return None
    return last_open


def parse_resource(resource: str) -> ResourceRef | None:
    """``api/v2.0/companies(id)/itemAvailabilityByLocation(guid)`` -> (set, key); a collection
    resource ``.../items?$filter=lastModifiedDateTime gt {time}`` -> (set, time); None if odd."""
    path, _, query = resource.strip().partition("?")
    since = _filter_time(query)
    if since is False:
        return None
    text = path.rstrip("/")
    if since is not None:
        entity_set = text.rsplit("/", 1)[-1]
        return ResourceRef(entity_set, None, since) if _ENTITY_SET.match(entity_set) else None
    key: str | None = None
    if text.endswith(")"):
        start = _final_key_start(text)
        if start is None:
            return None
        key = text[start + 1 : -1].strip()
        text = text[:start]
        if len(key) >= 2 and key[0] == key[-1] == "'":
            key = key[1:-1].replace("''", "'")
    entity_set = text.rsplit("/", 1)[-1]
    if not _ENTITY_SET.match(entity_set):
        return None
    return ResourceRef(entity_set, key or None)


def _key_segment(key: str) -> str:
    try:
        return guid_key(UUID(key))
    except ValueError:
        return string_key(key)


@dataclass
class NotificationOutcome:
    """What processing one notification did."""

    entity_set: str
    snapshots: list[ErpStockSnapshot] = field(default_factory=list)
    price_delta: Literal["ran", "skipped-lease-held", "not-needed"] = "not-needed"
    note: str = ""


async def read_back_availability(
    erp: ErpClient, notification: ErpNotification, ref: ResourceRef
) -> tuple[list[ErpStockSnapshot], str]:
    """The ERP's current stock rows the notification is about, as snapshots.

    The snapshot time is when the read was sent: whatever the ERP committed before it (a
    booking, a shipment) is inside the answer, which the reconcile rules rely on.
    """
    as_of = datetime.now(UTC)
    if notification.change_type == "collection" or ref.key is None:
        # Too many changes for one notification each: a delta read from the filter's time
        # (the first change); the notification's own time is the *last* change.
        since = ref.modified_after or notification.last_modified_date_time
        rows: Sequence[ItemAvailability] = [
            row async for row in erp.iter_item_availability(modified_since=since)
        ]
        note = f"delta read of {len(rows)} rows"
    elif notification.change_type == "deleted":
        # The row is gone and its key alone does not say which (sku, location) it was;
        # reconciliation compares the full list and corrects what this leaves behind.
        return [], "deleted row cannot be read back; left to reconciliation"
    else:
        try:
            row = await erp.get_entity(
                AVAILABILITY_SET, _key_segment(ref.key), ItemAvailability, api=Api.CUSTOM
            )
        except ErpNotFound:
            return [], "row no longer exists; left to reconciliation"
        rows = [row]
        note = "read back 1 row"
    return [snapshot_of_row(row, as_of, "notification") for row in rows], note


async def process_notification(
    erp: ErpClient,
    bus: MessageSender,
    tables: TableStorage,
    notification: ErpNotification,
) -> NotificationOutcome:
    """Read back what changed and route it; ERP or bus errors propagate (retry later)."""
    ref = parse_resource(notification.resource)
    if ref is None:
        _log.warning("ERP notification for an unrecognised resource %r", notification.resource)
        return NotificationOutcome("", note="unrecognised resource")
    outcome = NotificationOutcome(ref.entity_set)
    if ref.entity_set == AVAILABILITY_SET:
        outcome.snapshots, outcome.note = await read_back_availability(erp, notification, ref)
        for snapshot in outcome.snapshots:
            await bus.send_json(
                INVENTORY_QUEUE,
                snapshot.to_message(),
                message_id=snapshot.event_id,
                subject="erp-snapshot",
            )
    elif ref.entity_set in PRICE_SETS:
        try:
            await price_publisher.publish(erp, tables, "delta")
            outcome.price_delta = "ran"
        except LeaseHeld:
            # A run is in progress; the next scheduled delta (with its overlap) sees the change.
            outcome.price_delta = "skipped-lease-held"
    else:
        outcome.note = "no handler for this entity set"
    _log.info(
        "ERP notification %s %s: %s snapshots, price delta %s %s",
        notification.change_type,
        ref.entity_set,
        len(outcome.snapshots),
        outcome.price_delta,
        outcome.note,
    )
    return outcome
