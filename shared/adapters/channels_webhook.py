"""The storefront catalog webhook: signed, batched JSON upserts and deletes over HTTPS.

Each attempt is serialised and signed afresh (``signing.sign`` over the exact bytes sent):
the receiver refuses a (timestamp, body) pair it has already seen, so a retry must never
reuse one. The body carries a request id, which keeps two requests within the same second
distinct. Retries: 429 waits as long as ``Retry-After`` says (up to a bound), 5xx and
network failures back off exponentially; a channel still failing after the attempts raises
``ChannelUnavailable`` and the sync tries again next run.
"""

from __future__ import annotations

import asyncio
import json
import random as _random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.adapters.channels import (
    BatchInvalid,
    BatchTooLarge,
    CatalogBatch,
    ChannelContractError,
    ChannelCounters,
    ChannelRefused,
    ChannelUnavailable,
    OperationKind,
    OperationResult,
)
from shared.domain.content.signing import sign

_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class WebhookPolicy:
    """How hard one batch is tried before the channel counts as down for this run."""

    max_attempts: int = 4
    base_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0
    # A Retry-After longer than this is not waited for: the run moves on, the next one retries.
    max_retry_after_seconds: float = 30.0


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sku: str
    operation: Literal["upsert", "delete"]
    status: Literal["applied", "unchanged", "rejected"]
    error: str | None = None


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    batch_id: str = Field(alias="batchId")
    results: list[_Result]


class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error: str = ""
    detail: str = ""
    violations: list[dict[str, Any]] = Field(default_factory=list)


def utc_now() -> datetime:
    return datetime.now(UTC)


class CatalogWebhookChannel:
    """One channel's catalog webhook (implements ``ChannelAdapter``)."""

    def __init__(
        self,
        name: str,
        url: str,
        secret: bytes,
        http: httpx.AsyncClient,
        policy: WebhookPolicy | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.name = name
        self.url = url
        self.counters = ChannelCounters()
        self._secret = secret
        self._http = http
        self._policy = policy or WebhookPolicy()
        self._clock = clock
        self._sleep = sleep
        self._random = random

    async def push(self, batch: CatalogBatch) -> list[OperationResult]:
        last_problem = "no attempt made"
        for attempt in range(1, self._policy.max_attempts + 1):
            body = _serialise(batch, attempt)
            headers = {
                **sign(body, self._secret, self._clock(), channel=self.name),
                "content-type": "application/json",
            }
            try:
                response = await self._http.post(self.url, content=body, headers=headers)
            except (httpx.TimeoutException, httpx.TransportError) as error:
                self.counters.count("network")
                last_problem = f"{type(error).__name__}: {error}"
                await self._back_off(attempt)
                continue
            self.counters.count(response.status_code)
            status = response.status_code
            if status == 200:
                return self._results(batch, response)
            problem = _error_body(response)
            last_problem = f"HTTP {status} {problem.error or ''} {problem.detail}".strip()
            if status == 409 and problem.error == "replayed":
                continue  # an earlier attempt arrived after all; the next one is signed anew
            if status == 429:
                wait = _retry_after_seconds(response, self._clock())
                if wait is None or wait > self._policy.max_retry_after_seconds:
                    raise ChannelUnavailable(
                        self.name, f"throttled, asked to wait {wait}s", status_code=429
                    )
                if attempt < self._policy.max_attempts:
                    await self._sleep(wait)
                continue
            if status in _TRANSIENT_STATUSES:
                await self._back_off(attempt)
                continue
            if status == 413:
                raise BatchTooLarge(self.name, last_problem, status_code=413)
            if status == 422:
                raise BatchInvalid(self.name, last_problem, _operation_errors(problem))
            raise ChannelRefused(self.name, last_problem, status_code=status)
        raise ChannelUnavailable(
            self.name, f"gave up after {self._policy.max_attempts} attempts: {last_problem}"
        )

    async def _back_off(self, attempt: int) -> None:
        if attempt >= self._policy.max_attempts:
            return
        ceiling = min(
            self._policy.max_backoff_seconds,
            self._policy.base_backoff_seconds * 2 ** (attempt - 1),
        )
        # Half fixed, half random: retries of many workers spread out but never collapse to 0.
        await self._sleep(ceiling * (0.5 + self._random() / 2))

    def _results(self, batch: CatalogBatch, response: httpx.Response) -> list[OperationResult]:
        try:
            answer = _Answer.model_validate_json(response.content)
        except ValidationError as error:
            raise ChannelContractError(
                self.name, f"unreadable batch answer: {error.error_count()} problem(s)"
            ) from None
        found: dict[tuple[str, str], _Result] = {}
        for result in answer.results:
            found.setdefault((result.operation, result.sku), result)
        results: list[OperationResult] = []
        sent: list[tuple[OperationKind, str]] = [("upsert", u.sku) for u in batch.upserts]
        sent += [("delete", d.sku) for d in batch.deletes]
        for operation, sku in sent:
            answered = found.get((operation, sku))
            if answered is None:
                results.append(
                    OperationResult(sku, operation, "missing", "the channel gave no result")
                )
            else:
                results.append(OperationResult(sku, operation, answered.status, answered.error))
        return results


def _serialise(batch: CatalogBatch, attempt: int) -> bytes:
    document = {
        "batchId": batch.batch_id,
        # Unique per request: two sends of one batch in the same second must not look like
        # a replay to the receiver (it keys its replay cache on timestamp and body).
        "requestId": uuid.uuid4().hex,
        "attempt": attempt,
        "upserts": [
            {"sku": u.sku, "contentHash": u.content_hash, "product": u.product}
            for u in batch.upserts
        ],
        "deletes": [{"sku": d.sku, "contentHash": d.content_hash} for d in batch.deletes],
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _error_body(response: httpx.Response) -> _ErrorBody:
    try:
        return _ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return _ErrorBody(detail=response.text[:200])


def _operation_errors(problem: _ErrorBody) -> dict[tuple[OperationKind, int], str]:
    """422 violations whose location names one operation: ``["upserts", 3, "sku"]``."""
    named: dict[tuple[OperationKind, int], str] = {}
    for violation in problem.violations:
        loc = violation.get("loc")
        if not isinstance(loc, list) or len(loc) < 2:
            continue
        kind = {"upserts": "upsert", "deletes": "delete"}.get(str(loc[0]))
        position = str(loc[1])
        if kind is None or not position.isdigit():
            continue
        key: tuple[OperationKind, int] = ("upsert" if kind == "upsert" else "delete", int(position))
        where = ".".join(str(part) for part in loc[2:]) or "operation"
        message = f"{where}: {violation.get('msg', 'invalid')}"
        named[key] = f"{named[key]}; {message}" if key in named else message
    return named


def _retry_after_seconds(response: httpx.Response, now: datetime) -> float | None:
    value = (response.headers.get("retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def webhook_url(base_url: str, catalog_webhook: str) -> str:
    """The channel's webhook: an absolute URL as given, else a path below the storefront base."""
    if catalog_webhook.startswith(("http://", "https://")):
        return catalog_webhook
    return base_url.rstrip("/") + "/" + catalog_webhook.lstrip("/")


def catalog_webhook_channels(
    webhooks: Mapping[str, str],
    secret_of: Callable[[str], bytes],
    base_url: str,
    http: httpx.AsyncClient,
    policy: WebhookPolicy | None = None,
) -> dict[str, CatalogWebhookChannel]:
    """One adapter per channel that has a webhook (channel name -> webhook path or URL)."""
    return {
        name: CatalogWebhookChannel(
            name, webhook_url(base_url, path), secret_of(name), http, policy
        )
        for name, path in webhooks.items()
        if path
    }
