"""The catalog webhook adapter against a scripted storefront (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.adapters.channels import (
    BatchInvalid,
    BatchTooLarge,
    CatalogBatch,
    CatalogDelete,
    CatalogUpsert,
    ChannelContractError,
    ChannelRefused,
    ChannelUnavailable,
)
from shared.adapters.channels_webhook import (
    CatalogWebhookChannel,
    WebhookPolicy,
    catalog_webhook_channels,
    webhook_url,
)
from shared.domain.content.signing import verify

SECRET = b"web-secret"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BATCH = CatalogBatch(
    "content-1",
    [CatalogUpsert("A", "sha256:a", {"sku": "A", "name": "Chair"})],
    [CatalogDelete("B", "sha256:b")],
)
Responder = Callable[[httpx.Request], httpx.Response]


def _ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    results = [
        {"sku": u["sku"], "operation": "upsert", "status": "applied"} for u in body["upserts"]
    ]
    results += [
        {"sku": d["sku"], "operation": "delete", "status": "unchanged"} for d in body["deletes"]
    ]
    return httpx.Response(200, json={"batchId": body["batchId"], "results": results})


class Storefront:
    """Answers from a script, one responder per request, and keeps every request."""

    def __init__(self, *responders: Responder) -> None:
        self.script = list(responders)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        responder = self.script.pop(0) if self.script else _ok
        return responder(request)


def _channel(
    storefront: Storefront, sleeps: list[float], policy: WebhookPolicy | None = None
) -> CatalogWebhookChannel:
    clock = iter(NOW + timedelta(seconds=n) for n in range(1000))

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return CatalogWebhookChannel(
        "web",
        "https://shop.example/channels/web/catalog/batch",
        SECRET,
        httpx.AsyncClient(transport=httpx.MockTransport(storefront)),
        policy or WebhookPolicy(max_attempts=4, base_backoff_seconds=0.5),
        clock=lambda: next(clock),
        sleep=sleep,
        random=lambda: 1.0,
    )


def _status(code: int, body: dict[str, Any] | None = None, **headers: str) -> Responder:
    return lambda request: httpx.Response(code, json=body or {"error": "x"}, headers=headers)


async def test_a_batch_is_signed_over_the_exact_bytes_sent_and_answered_per_sku() -> None:
    storefront = Storefront()
    results = await _channel(storefront, []).push(BATCH)
    request = storefront.requests[0]
    verify(request.content, dict(request.headers), SECRET, NOW, timedelta(minutes=5))
    assert request.headers["x-channel"] == "web"
    body = json.loads(request.content)
    assert body["upserts"][0] == {
        "sku": "A",
        "contentHash": "sha256:a",
        "product": {"sku": "A", "name": "Chair"},
    }
    assert body["deletes"] == [{"sku": "B", "contentHash": "sha256:b"}]
    assert [(r.sku, r.operation, r.status, r.acknowledged) for r in results] == [
        ("A", "upsert", "applied", True),
        ("B", "delete", "unchanged", True),
    ]


async def test_every_retry_is_signed_anew_with_different_bytes() -> None:
    storefront = Storefront(_status(503), _status(409, {"error": "replayed"}))
    sleeps: list[float] = []
    await _channel(storefront, sleeps).push(BATCH)
    assert len(storefront.requests) == 3
    signatures = {r.headers["x-signature"] for r in storefront.requests}
    bodies = {r.content for r in storefront.requests}
    assert len(signatures) == 3 and len(bodies) == 3
    assert sleeps == [0.5]  # backoff after the 503 only; a replay answer is retried at once


async def test_429_waits_as_told_within_the_bound() -> None:
    storefront = Storefront(_status(429, **{"Retry-After": "2"}))
    sleeps: list[float] = []
    results = await _channel(storefront, sleeps).push(BATCH)
    assert sleeps == [2.0] and len(results) == 2


async def test_429_asking_for_too_long_gives_up_for_this_run() -> None:
    storefront = Storefront(_status(429, **{"Retry-After": "600"}))
    sleeps: list[float] = []
    channel = _channel(storefront, sleeps, WebhookPolicy(max_retry_after_seconds=30))
    with pytest.raises(ChannelUnavailable) as caught:
        await channel.push(BATCH)
    assert caught.value.status_code == 429 and sleeps == []


async def test_a_channel_that_stays_down_is_unavailable_after_bounded_backoff() -> None:
    storefront = Storefront(*[_status(503)] * 10)
    sleeps: list[float] = []
    channel = _channel(storefront, sleeps)
    with pytest.raises(ChannelUnavailable):
        await channel.push(BATCH)
    assert len(storefront.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert channel.counters.by_status == {"503": 4}


async def test_network_failures_are_retried() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    storefront = Storefront(refuse, refuse)
    channel = _channel(storefront, [])
    results = await channel.push(BATCH)
    assert len(results) == 2
    assert channel.counters.by_status == {"network": 2, "200": 1}


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_configuration_errors_refuse_the_channel_without_retrying(status: int) -> None:
    storefront = Storefront(_status(status, {"error": "signature-invalid", "detail": "nope"}))
    with pytest.raises(ChannelRefused) as caught:
        await _channel(storefront, []).push(BATCH)
    assert caught.value.status_code == status and "signature-invalid" in str(caught.value)
    assert len(storefront.requests) == 1


async def test_413_asks_for_a_smaller_batch() -> None:
    with pytest.raises(BatchTooLarge):
        await _channel(Storefront(_status(413, {"error": "too-many-operations"})), []).push(BATCH)


async def test_422_names_the_operations_that_broke_the_contract() -> None:
    violations = [
        {"loc": ["upserts", 0, "sku"], "msg": "too long", "type": "string_too_long"},
        {"loc": ["batchId"], "msg": "required", "type": "missing"},
    ]
    storefront = Storefront(_status(422, {"error": "invalid-batch", "violations": violations}))
    with pytest.raises(BatchInvalid) as caught:
        await _channel(storefront, []).push(BATCH)
    assert caught.value.operation_errors == {("upsert", 0): "sku: too long"}


async def test_an_unreadable_answer_is_a_contract_error() -> None:
    storefront = Storefront(lambda request: httpx.Response(200, text="<html>ok</html>"))
    with pytest.raises(ChannelContractError):
        await _channel(storefront, []).push(BATCH)


async def test_an_operation_without_a_result_is_not_acknowledged() -> None:
    def half(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "batchId": "x",
                "results": [
                    {"sku": "A", "operation": "upsert", "status": "rejected", "error": "bad"}
                ],
            },
        )

    results = await _channel(Storefront(half), []).push(BATCH)
    assert [(r.status, r.acknowledged) for r in results] == [
        ("rejected", False),
        ("missing", False),
    ]


def test_webhook_urls_and_adapters_from_configuration() -> None:
    assert webhook_url("http://127.0.0.1:8788/", "/channels/web/catalog/batch") == (
        "http://127.0.0.1:8788/channels/web/catalog/batch"
    )
    assert webhook_url("http://x", "https://shop.example/hook") == "https://shop.example/hook"
    adapters = catalog_webhook_channels(
        {"web": "/channels/web/catalog/batch", "pos": ""},
        lambda name: name.encode(),
        "http://127.0.0.1:8788",
        httpx.AsyncClient(),
    )
    assert list(adapters) == ["web"]
    assert adapters["web"].url == "http://127.0.0.1:8788/channels/web/catalog/batch"
