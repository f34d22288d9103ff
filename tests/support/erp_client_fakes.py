"""Shared fakes for the ERP client unit tests (no tests here): a fake clock and builders."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from shared.adapters.erp import ErpClient, ErpConfig

COMPANY_ID = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")
BASE = "http://127.0.0.1:8787"
STANDARD = f"{BASE}/v2.0/tenant1/production/api/v2.0/companies({COMPANY_ID})"
CUSTOM = f"{BASE}/v2.0/tenant1/production/api/contoso/commerceSync/v1.0/companies({COMPANY_ID})"

Handler = Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]


class FakeClock:
    """Time that only moves when someone sleeps (or the test advances it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self._start = start
        self.t = start
        self.wall_start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.wall_start + timedelta(seconds=self.t - self._start)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_config(**overrides: Any) -> ErpConfig:
    values: dict[str, Any] = {
        "base_url": BASE,
        "tenant": "tenant1",
        "environment": "production",
        "company_id": COMPANY_ID,
    }
    values.update(overrides)
    return ErpConfig(**values)


def make_client(
    handler: Handler,
    *,
    clock: FakeClock | None = None,
    random: Callable[[], float] = lambda: 0.5,
    **overrides: Any,
) -> ErpClient:
    return ErpClient(
        make_config(**overrides),
        transport=httpx.MockTransport(handler),
        clock=clock or FakeClock(),
        random=random,
    )


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


def item_row(number: str, price: str = "10.00", **extra: Any) -> dict[str, Any]:
    """An item as BC serialises it (numbers as JSON numbers, written raw below)."""
    row: dict[str, Any] = {
        "@odata.etag": f'W/"etag-{number}"',
        "id": str(UUID(int=abs(hash(number)) % (1 << 64))),
        "number": number,
        "displayName": f"Item {number}",
        "unitPrice": float(price),
        "lastModifiedDateTime": "2025-01-01T10:00:00Z",
    }
    row.update(extra)
    return row


def order_row(external: str, number: str = "S-ORD101001") -> dict[str, Any]:
    return {
        "@odata.etag": 'W/"order-etag"',
        "id": "5b8f0c1e-0000-4000-8000-000000000001",
        "number": number,
        "externalDocumentNumber": external,
        "customerNumber": "C00010",
        "status": "Draft",
        "lastModifiedDateTime": "2025-01-01T10:00:00Z",
    }
