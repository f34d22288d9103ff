"""Bearer tokens for Business Central: none (simulator), static, or Entra ID client credentials.

The client-credentials token is cached until shortly before it expires and refreshed by one
caller at a time, so a burst of requests after expiry costs one token request, not fifty.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.adapters.erp.clock import Clock
from shared.adapters.erp.config import AuthMode, ErpConfig
from shared.adapters.erp.errors import ErpAuthFailed, ErpUnavailable
from shared.adapters.erp.jsonio import JsonDecodeFailed, decode_json


class TokenProvider(Protocol):
    """Supplies the bearer token for the next request (``None``: send no Authorization)."""

    async def get_token(self) -> str | None: ...

    def invalidate(self) -> None:
        """Forget a cached token that the ERP refused."""


class NoAuth:
    """For the local simulator."""

    async def get_token(self) -> str | None:
        return None

    def invalidate(self) -> None:
        return None


class StaticToken:
    """A fixed token, e.g. from a developer's shell."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self) -> str | None:
        return self._token

    def invalidate(self) -> None:
        # Nothing to refresh: a refused static token stays refused.
        return None


class _TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1)
    expires_in: int = Field(ge=0)
    token_type: str = "Bearer"


class ClientCredentialsToken:
    """OAuth2 client credentials against Entra ID (``{authority}/{tenant}/oauth2/v2.0/token``)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        authority_host: str,
        tenant: str,
        client_id: str,
        client_secret: str,
        scope: str,
        clock: Clock,
        refresh_margin_seconds: float = 300.0,
    ) -> None:
        self._http = http
        self._url = f"{authority_host.rstrip('/')}/{tenant}/oauth2/v2.0/token"
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }
        self._clock = clock
        self._margin = refresh_margin_seconds
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def get_token(self) -> str | None:
        if self._is_fresh():
            return self._token
        async with self._lock:
            # Another caller may have refreshed while this one waited for the lock.
            if self._is_fresh():
                return self._token
            return await self._fetch()

    def invalidate(self) -> None:
        self._token = None
        self._refresh_at = 0.0

    def _is_fresh(self) -> bool:
        return self._token is not None and self._clock.monotonic() < self._refresh_at

    async def _fetch(self) -> str:
        started = self._clock.monotonic()
        self.fetch_count += 1
        try:
            response = await self._http.post(self._url, data=self._form)
        except httpx.TransportError as exc:
            raise ErpUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ErpUnavailable(
                f"token endpoint answered {response.status_code}",
                status_code=response.status_code,
            )
        if response.status_code != 200:
            raise ErpAuthFailed(
                f"token request refused ({response.status_code}): {_error_text(response)}",
                status_code=response.status_code,
            )
        try:
            token = _TokenResponse.model_validate(decode_json(response.content))
        except (ValidationError, JsonDecodeFailed) as exc:
            raise ErpAuthFailed("token endpoint answered an unexpected shape") from exc
        self._token = token.access_token
        # Lifetime counted from the request start: a slow answer must not stretch it.
        # Short-lived tokens (tests, odd tenants) still get half their life before a refresh.
        lifetime = token.expires_in - min(self._margin, token.expires_in / 2)
        self._refresh_at = started + lifetime
        return token.access_token


def _error_text(response: httpx.Response) -> str:
    try:
        body = decode_json(response.content)
    except JsonDecodeFailed:
        return "no details"
    if isinstance(body, dict):
        # Entra ID's error_description can echo the request; the short code is enough here.
        return str(body.get("error", "no details"))
    return "no details"


def token_provider_for(config: ErpConfig, http: httpx.AsyncClient, clock: Clock) -> TokenProvider:
    """The provider that ``config.auth_mode`` asks for."""
    if config.auth_mode is AuthMode.STATIC:
        assert config.static_token is not None  # guaranteed by ErpConfig validation
        return StaticToken(config.static_token.get_secret_value())
    if config.auth_mode is AuthMode.CLIENT_CREDENTIALS:
        assert config.client_id is not None and config.client_secret is not None
        return ClientCredentialsToken(
            http,
            authority_host=config.authority_host,
            tenant=config.tenant,
            client_id=config.client_id,
            client_secret=config.client_secret.get_secret_value(),
            scope=config.scope,
            clock=clock,
            refresh_margin_seconds=config.token_refresh_margin_seconds,
        )
    return NoAuth()
