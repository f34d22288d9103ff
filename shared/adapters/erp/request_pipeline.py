"""Every ERP request goes through here: limits, breaker, retries, headers, error mapping.

Retry rules, by what a repeat could do:
- 429 (and a 503 carrying Retry-After): BC did not process it; wait as told, then resend.
- timeouts, connection errors, 5xx: resend only idempotent requests (GET; PATCH/DELETE with
  If-Match), with full-jitter backoff. A POST that may have reached BC is never resent: it
  raises ``ErpAmbiguousResult`` and the caller looks the record up first.
- a connection that was never established (connect error/timeout, pool timeout) sent
  nothing, so any request may be resent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from shared.adapters.erp.auth import TokenProvider
from shared.adapters.erp.backoff import full_jitter_delay, parse_retry_after
from shared.adapters.erp.breaker import BreakerState, CircuitBreaker
from shared.adapters.erp.clock import Clock
from shared.adapters.erp.config import ErpConfig
from shared.adapters.erp.errors import (
    ErpAmbiguousResult,
    ErpAuthFailed,
    ErpConflict,
    ErpError,
    ErpNotFound,
    ErpRejected,
    ErpThrottled,
    ErpUnavailable,
)
from shared.adapters.erp.jsonio import JsonDecodeFailed, decode_json, encode_json
from shared.adapters.erp.shared_limits import SharedLimits
from shared.adapters.erp.throttling import RequestBudget, SlotWaitTooLong
from shared.observability import metrics
from shared.observability.correlation import new_correlation_id
from shared.observability.propagation import trace_headers
from shared.observability.spans import erp_client_span, record_erp_status

Method = Literal["GET", "POST", "PATCH", "DELETE"]

# These fail before a single byte of the request left this process.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_TRANSPORT_FAILURES = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    TimeoutError,
)


class _SlotNotInTime(Exception):
    def __init__(self, wait_seconds: float | None) -> None:
        super().__init__("no request slot before the deadline")
        self.wait_seconds = wait_seconds


@dataclass(frozen=True)
class ErpCounters:
    """A snapshot for health and audit: how hard the client is working and how it fares."""

    requests_sent: int
    throttled_responses: int
    retries: int
    failures: int
    ambiguous_results: int
    budget_waits: int
    budget_used: int
    breaker_openings: int
    breaker_state: BreakerState
    in_flight: int


class RequestPipeline:
    """Sends one logical ERP call, attempting it as often as is safe."""

    def __init__(
        self,
        config: ErpConfig,
        http: httpx.AsyncClient,
        tokens: TokenProvider,
        clock: Clock,
        random: Callable[[], float],
        correlation_id_provider: Callable[[], str | None],
        shared_limits: SharedLimits | None = None,
    ) -> None:
        self._config = config
        # The principal's slots and budget across instances (None: this process alone).
        self._shared = shared_limits
        self._http = http
        self._tokens = tokens
        self._clock = clock
        self._random = random
        self._correlation_id_provider = correlation_id_provider
        self._concurrency = asyncio.Semaphore(config.max_concurrent)
        self._budget = RequestBudget(config.requests_per_window, config.window_seconds, clock)
        self.breaker = CircuitBreaker(
            config.breaker_failure_threshold, config.breaker_open_seconds, clock
        )
        self._requests_sent = 0
        self._throttled = 0
        self._retries = 0
        self._failures = 0
        self._ambiguous = 0
        self._in_flight = 0
        self._waiting = 0  # requests waiting for a slot or budget

    def counters(self) -> ErpCounters:
        """Current counters; cheap, no I/O."""
        return ErpCounters(
            requests_sent=self._requests_sent,
            throttled_responses=self._throttled,
            retries=self._retries,
            failures=self._failures,
            ambiguous_results=self._ambiguous,
            budget_waits=self._budget.waits,
            budget_used=self._budget.used,
            breaker_openings=self.breaker.openings,
            breaker_state=self.breaker.state,
            in_flight=self._in_flight,
        )

    @property
    def load(self) -> tuple[int, int]:
        """Requests in flight or waiting for a slot, and slots of the window's budget used:
        which principal has the most room (no I/O)."""
        return self._in_flight + self._waiting, self._budget.used

    async def send(
        self,
        method: Method,
        url: str,
        *,
        entity_set: str,
        body: Mapping[str, Any] | None = None,
        etag: str | None = None,
        read_only: bool = False,
        page_size: int | None = None,
        correlation_id: str | None = None,
    ) -> httpx.Response:
        """Send until a definite answer; return a 2xx response or raise an ``ErpError``."""
        cid = correlation_id or self._correlation_id_provider() or new_correlation_id()
        idempotent = method == "GET" or (method in ("PATCH", "DELETE") and etag is not None)
        headers = _headers(cid, read_only and method == "GET", page_size, etag, body is not None)
        content = encode_json(body) if body is not None else None
        deadline = self._clock.monotonic() + self._config.call_deadline_seconds
        failures = 0
        throttles = 0
        token_refreshed = False
        attempt = 0

        while True:
            try:
                is_probe = self.breaker.admit()
            except ErpUnavailable as exc:
                raise ErpUnavailable(
                    exc.message, entity_set=entity_set, correlation_id=cid
                ) from None
            try:
                attempt += 1
                response = await self._attempt(
                    method, url, headers, content, deadline, entity_set, attempt
                )
            except _SlotNotInTime as exc:
                if is_probe:
                    self.breaker.release_probe()
                raise ErpThrottled(
                    f"{method} {entity_set}: no request slot free before the call deadline",
                    retry_after_seconds=exc.wait_seconds,
                    status_code=None,
                    entity_set=entity_set,
                    correlation_id=cid,
                ) from None
            except _TRANSPORT_FAILURES as exc:
                self.breaker.record_failure()
                self._failures += 1
                failures += 1
                reason = type(exc).__name__
                if idempotent or isinstance(exc, _NOT_SENT):
                    delay = self._backoff(failures)
                    if failures < self._config.retry_max_attempts and self._fits(deadline, delay):
                        await self._wait_before_retry(delay)
                        continue
                    raise ErpUnavailable(
                        f"{method} {entity_set} failed after {failures} attempt(s): {reason}",
                        entity_set=entity_set,
                        correlation_id=cid,
                    ) from exc
                self._ambiguous += 1
                raise ErpAmbiguousResult(
                    f"{method} {entity_set}: outcome unknown after {reason}",
                    entity_set=entity_set,
                    correlation_id=cid,
                ) from exc
            except BaseException:
                if is_probe:
                    self.breaker.release_probe()
                raise

            status = response.status_code
            if status < 400:
                self.breaker.record_success()
                return response

            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
            if status == 429:
                self.breaker.record_success()
                self._throttled += 1
                throttles += 1
                wait = (
                    retry_after
                    if retry_after is not None
                    else self._default_throttle_wait(throttles)
                )
                if (
                    throttles > self._config.throttle_max_retries
                    or wait > self._config.max_retry_after_seconds
                    or not self._fits(deadline, wait)
                ):
                    raise ErpThrottled(
                        f"{method} {entity_set} still throttled after {throttles} response(s)",
                        retry_after_seconds=wait,
                        entity_set=entity_set,
                        correlation_id=cid,
                    )
                self._budget.pause_for(wait)
                self._retries += 1
                continue

            if status >= 500 or status == 408:
                self.breaker.record_failure()
                self._failures += 1
                failures += 1
                if not idempotent:
                    self._ambiguous += 1
                    raise ErpAmbiguousResult(
                        f"{method} {entity_set}: outcome unknown after HTTP {status}",
                        status_code=status,
                        entity_set=entity_set,
                        correlation_id=cid,
                    )
                delay = retry_after if retry_after is not None else self._backoff(failures)
                if (
                    failures < self._config.retry_max_attempts
                    and delay <= self._config.max_retry_after_seconds
                    and self._fits(deadline, delay)
                ):
                    if retry_after is not None:
                        # An overloaded BC asks the whole principal to back off, not one call.
                        self._budget.pause_for(delay)
                        self._retries += 1
                    else:
                        await self._wait_before_retry(delay)
                    continue
                raise ErpUnavailable(
                    f"{method} {entity_set} failed after {failures} attempt(s): HTTP {status}",
                    status_code=status,
                    entity_set=entity_set,
                    correlation_id=cid,
                )

            # Any other 4xx: the ERP is up and answered definitively.
            self.breaker.record_success()
            if status == 401 and not token_refreshed:
                token_refreshed = True
                self._tokens.invalidate()
                continue
            raise _client_error(method, status, response, entity_set, cid)

    async def _attempt(
        self,
        method: Method,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        deadline: float,
        entity_set: str,
        attempt: int,
    ) -> httpx.Response:
        token = await self._tokens.get_token()
        if token:
            headers = {**headers, "Authorization": f"Bearer {token}"}
        self._waiting += 1
        try:
            await self._take_slot(deadline)
        finally:
            self._waiting -= 1
        self._in_flight += 1
        try:
            self._requests_sent += 1
            return await self._traced_request(method, url, headers, content, entity_set, attempt)
        finally:
            self._in_flight -= 1
            if self._shared is not None:
                self._shared.release()
            self._budget.release()
            self._concurrency.release()

    async def _traced_request(
        self,
        method: Method,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        entity_set: str,
        attempt: int,
    ) -> httpx.Response:
        """One HTTP exchange in its CLIENT span, with ``traceparent`` for the ERP's logs."""
        cid = headers["x-correlation-id"]
        with erp_client_span(method, entity_set, attempt, cid) as span:
            headers = {**headers, **trace_headers()}
            try:
                # A hard cap per attempt on top of httpx's per-phase timeouts.
                async with asyncio.timeout(self._config.request_timeout_seconds):
                    response = await self._http.request(
                        method, url, headers=headers, content=content
                    )
            except asyncio.CancelledError:
                metrics.erp_call(method, "cancelled")
                raise
            except Exception:
                metrics.erp_call(method, "transport-error")
                raise
            record_erp_status(span, response.status_code)
            metrics.erp_call(method, _outcome(response.status_code))
            if response.status_code == 429:
                metrics.erp_throttled(entity_set)
            return response

    async def _take_slot(self, deadline: float) -> None:
        """A concurrency slot, then a budget slot, both before the call's deadline."""
        remaining = deadline - self._clock.monotonic()
        try:
            # Backstop for waits of unknown length (requests ahead of us still running).
            async with asyncio.timeout(max(0.0, remaining)):
                await self._concurrency.acquire()
                try:
                    await self._budget.acquire(deadline)
                except BaseException:
                    self._concurrency.release()
                    raise
                if self._shared is not None:
                    try:
                        await self._shared.acquire(deadline)
                    except BaseException:
                        self._budget.release()
                        self._concurrency.release()
                        raise
        except SlotWaitTooLong as exc:
            raise _SlotNotInTime(exc.wait_seconds) from None
        except TimeoutError:
            raise _SlotNotInTime(None) from None

    def _backoff(self, failures: int) -> float:
        return full_jitter_delay(
            failures,
            self._config.retry_base_backoff_seconds,
            self._config.retry_max_backoff_seconds,
            self._random,
        )

    def _default_throttle_wait(self, throttles: int) -> float:
        # No Retry-After: grow the wait so a throttled principal is not hammered.
        return min(
            self._config.max_retry_after_seconds,
            self._config.default_retry_after_seconds * (2.0 ** (throttles - 1)),
        )

    def _fits(self, deadline: float, delay: float) -> bool:
        return self._clock.monotonic() + delay < deadline

    async def _wait_before_retry(self, delay: float) -> None:
        self._retries += 1
        await self._clock.sleep(delay)


def _outcome(status: int) -> str:
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server-error"
    if status >= 400:
        return "client-error"
    return "ok"


def _headers(
    correlation_id: str, read_only: bool, page_size: int | None, etag: str | None, has_body: bool
) -> dict[str, str]:
    headers = {
        "Accept": "application/json",
        "x-correlation-id": correlation_id,
        # BC logs request-id in its telemetry, so one id joins both sides.
        "request-id": correlation_id,
    }
    if read_only:
        headers["Data-Access-Intent"] = "ReadOnly"
    if page_size is not None:
        headers["Prefer"] = f"odata.maxpagesize={page_size}"
    if etag is not None:
        headers["If-Match"] = etag
    if has_body:
        headers["Content-Type"] = "application/json"
    return headers


def _client_error(
    method: str, status: int, response: httpx.Response, entity_set: str, cid: str
) -> ErpError:
    code, message = _bc_error(response)
    text = f"{method} {entity_set}: HTTP {status}" + (f" {code}: {message}" if code else "")
    if status == 404:
        return ErpNotFound(text, status_code=status, entity_set=entity_set, correlation_id=cid)
    if status in (409, 412):
        return ErpConflict(text, status_code=status, entity_set=entity_set, correlation_id=cid)
    if status in (401, 403):
        return ErpAuthFailed(text, status_code=status, entity_set=entity_set, correlation_id=cid)
    return ErpRejected(
        text,
        code=code,
        erp_message=message,
        status_code=status,
        entity_set=entity_set,
        correlation_id=cid,
    )


def _bc_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """BC's OData error body is ``{"error": {"code": ..., "message": ...}}``."""
    try:
        body = decode_json(response.content)
    except JsonDecodeFailed:
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (
        str(code) if code is not None else None,
        str(message) if message is not None else None,
    )
