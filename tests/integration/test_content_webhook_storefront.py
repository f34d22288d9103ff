"""The catalog webhook adapter against the storefront simulator: signatures, faults, retries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from devtools.storefront_sim.state import SimulatorOptions
from devtools.storefront_sim.testing import storefront_simulator
from shared.adapters.channels import (
    CatalogBatch,
    CatalogDelete,
    CatalogUpsert,
    ChannelRefused,
    ChannelUnavailable,
)
from shared.adapters.channels_webhook import CatalogWebhookChannel, WebhookPolicy

SECRET = b"local-web-secret"
FAST = WebhookPolicy(max_attempts=3, base_backoff_seconds=0.01, max_backoff_seconds=0.02)


@pytest.fixture
def storefront() -> Iterator[str]:
    with storefront_simulator(SimulatorOptions(channels={"web": (SECRET,)})) as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def _channel(
    storefront: str, http: httpx.AsyncClient, secret: bytes = SECRET, **policy: float
) -> CatalogWebhookChannel:
    chosen = WebhookPolicy(**{**FAST.__dict__, **policy})
    return CatalogWebhookChannel(
        "web", f"{storefront}/channels/web/catalog/batch", secret, http, chosen
    )


def _batch(batch_id: str, *skus: str, name: str = "Chair") -> CatalogBatch:
    return CatalogBatch(
        batch_id,
        [CatalogUpsert(sku, f"sha256:{sku}-{name}", {"sku": sku, "name": name}) for sku in skus],
    )


def _stats(storefront: str) -> dict[str, int]:
    body = httpx.get(f"{storefront}/_sim/stats", timeout=10).json()
    return dict(body["channels"].get("web", {}).get("byStatus", {}))


async def test_the_storefront_verifies_our_signature_and_applies_the_batch(
    storefront: str, http: httpx.AsyncClient
) -> None:
    results = await _channel(storefront, http).push(_batch("b1", "AB/12#3", "ÅSA 2/B"))
    assert [(r.sku, r.status) for r in results] == [("AB/12#3", "applied"), ("ÅSA 2/B", "applied")]
    received = httpx.get(f"{storefront}/_sim/received", timeout=10).json()["items"]
    assert [(i["sku"], i["contentHash"]) for i in received] == [
        ("AB/12#3", "sha256:AB/12#3-Chair"),
        ("ÅSA 2/B", "sha256:ÅSA 2/B-Chair"),
    ]


async def test_the_same_batch_twice_is_signed_twice_and_answered_unchanged(
    storefront: str, http: httpx.AsyncClient
) -> None:
    channel = _channel(storefront, http)
    await channel.push(_batch("b1", "A"))
    again = await channel.push(_batch("b1", "A"))  # same second, same content: no replay 409
    assert [r.status for r in again] == ["unchanged"]
    assert _stats(storefront) == {"200": 2}


async def test_deletes_are_idempotent(storefront: str, http: httpx.AsyncClient) -> None:
    channel = _channel(storefront, http)
    await channel.push(_batch("b1", "A"))
    delete = CatalogBatch("b2", deletes=[CatalogDelete("A", "sha256:A-Chair")])
    assert [r.status for r in await channel.push(delete)] == ["applied"]
    assert [r.status for r in await channel.push(delete)] == ["unchanged"]


async def test_a_wrong_secret_is_refused_once_not_retried(
    storefront: str, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ChannelRefused) as caught:
        await _channel(storefront, http, secret=b"not-the-secret").push(_batch("b1", "A"))
    assert caught.value.status_code == 401 and "signature-invalid" in str(caught.value)
    assert _stats(storefront) == {"401": 1}


async def test_a_per_product_rejection_leaves_the_rest_applied(
    storefront: str, http: httpx.AsyncClient
) -> None:
    batch = CatalogBatch(
        "b1",
        [
            CatalogUpsert("A", "sha256:a", {"name": "Chair"}),
            CatalogUpsert("B", "sha256:b", {"name": ""}),
        ],
    )
    results = await _channel(storefront, http).push(batch)
    assert [(r.sku, r.status) for r in results] == [("A", "applied"), ("B", "rejected")]
    assert results[1].error and "name" in results[1].error


async def test_an_outage_is_retried_with_backoff_then_reported(
    storefront: str, http: httpx.AsyncClient
) -> None:
    httpx.post(f"{storefront}/_sim/faults", json={"outage": True}, timeout=10)
    channel = _channel(storefront, http)
    with pytest.raises(ChannelUnavailable):
        await channel.push(_batch("b1", "A"))
    assert _stats(storefront) == {"503": 3}
    httpx.post(f"{storefront}/_sim/faults", json={}, timeout=10)
    assert [r.status for r in await channel.push(_batch("b1", "A"))] == ["applied"]


async def test_throttling_beyond_the_allowed_wait_is_left_for_the_next_run(
    storefront: str, http: httpx.AsyncClient
) -> None:
    httpx.post(f"{storefront}/_sim/faults", json={"throttle": True}, timeout=10)
    with pytest.raises(ChannelUnavailable) as caught:
        await _channel(storefront, http, max_retry_after_seconds=0).push(_batch("b1", "A"))
    assert caught.value.status_code == 429
    assert _stats(storefront) == {"429": 1}
