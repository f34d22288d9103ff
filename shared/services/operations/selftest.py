"""A synthetic transaction through every trigger kind: HTTP -> Service Bus -> handler -> table.

Operators start a probe after a deployment or an incident and read its result back; the same
path is what the end-to-end tests drive. A probe can ask to fail its first N deliveries, which
proves redelivery and dead-lettering work in this environment without touching business data.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.bus import MessageBus
from shared.adapters.ports import TableStorage
from shared.adapters.tables import EntityExists
from shared.services.http_contract import WireModel

QUEUE = "selftest"
RESULTS_TABLE = "SelfTestProbes"
HEARTBEAT_TABLE = "Heartbeats"


class ProbeRequest(BaseModel):
    """What an operator sends to start a probe."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    probe_id: str = Field(
        alias="probeId", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$"
    )
    fail_deliveries: int = Field(0, alias="failDeliveries", ge=0, le=100)


class ProbePath(BaseModel):
    """The ``{probeId}`` of ``GET /api/ops/selftest/{probeId}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    probe_id: str = Field(
        alias="probeId", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$"
    )


class ProbeMessage(ProbeRequest):
    """The message body on the ``selftest`` queue."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    sent_at: datetime = Field(alias="sentAt")


class ProbeDeliveryFailed(RuntimeError):
    """Raised on purpose for the first ``failDeliveries`` deliveries of a probe."""


async def start_probe(bus: MessageBus, request: ProbeRequest, correlation_id: str) -> ProbeMessage:
    """Send the probe message; MessageId = probe id so a re-send is a duplicate."""
    message = ProbeMessage(
        probe_id=request.probe_id,
        fail_deliveries=request.fail_deliveries,
        sent_at=datetime.now(UTC),
    )
    await bus.send_json(
        QUEUE,
        message.model_dump(mode="json", by_alias=True),
        message_id=request.probe_id,
        correlation_id=correlation_id,
    )
    return message


async def record_probe(
    tables: TableStorage, message: ProbeMessage, delivery_count: int, correlation_id: str | None
) -> bool:
    """Record a delivered probe once. Safe to run twice: the row is created, never overwritten.

    Returns False when the probe had already been recorded (a duplicate delivery).
    ``delivery_count`` is 1 on the first delivery.
    """
    if delivery_count <= message.fail_deliveries:
        raise ProbeDeliveryFailed(
            f"probe {message.probe_id}: failing delivery {delivery_count} on request"
        )
    entity = {
        "PartitionKey": message.probe_id,
        "RowKey": "result",
        "deliveryCount": delivery_count,
        "sentAt": message.sent_at,
        "recordedAt": datetime.now(UTC),
        "correlationId": correlation_id or "",
    }
    try:
        await tables.create(RESULTS_TABLE, entity)
    except EntityExists:
        return False
    return True


class ProbeResult(WireModel):
    """200 of ``GET /api/ops/selftest/{probeId}``: the probe made it through the bus."""

    probe_id: str
    delivery_count: int = Field(ge=1)
    sent_at: datetime
    recorded_at: datetime
    correlation_id: str


async def probe_result(tables: TableStorage, probe_id: str) -> dict[str, object] | None:
    row = await tables.get(RESULTS_TABLE, probe_id, "result")
    if row is None:
        return None
    return {
        "probeId": probe_id,
        "deliveryCount": row.entity["deliveryCount"],
        "sentAt": row.entity["sentAt"],
        "recordedAt": row.entity["recordedAt"],
        "correlationId": row.entity["correlationId"],
    }


async def beat(tables: TableStorage, timer_name: str, past_due: bool) -> None:
    """Record that a timer ran (one row per timer, last writer wins: it is only a timestamp)."""
    await tables.upsert(
        HEARTBEAT_TABLE,
        {
            "PartitionKey": "timer",
            "RowKey": timer_name,
            "lastRunAt": datetime.now(UTC),
            "pastDue": past_due,
        },
    )


async def last_beat(tables: TableStorage, timer_name: str) -> datetime | None:
    row = await tables.get(HEARTBEAT_TABLE, "timer", timer_name)
    return None if row is None else row.entity["lastRunAt"]
