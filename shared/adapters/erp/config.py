"""Settings of the Business Central client; the product's settings module builds one.

Defaults follow Business Central online's documented limits (6,000 requests per 5-minute
window, 5 requests processed at once, pages up to 20,000) so a default client is gentle.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

CLOUD_BASE_URL = "https://api.businesscentral.dynamics.com"
LOCAL_BASE_URL = "http://127.0.0.1:8787"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Business Central answers 413 above this page size.
MAX_PAGE_SIZE = 20_000


class AuthMode(StrEnum):
    """How the client authenticates: nothing (simulator), a fixed token, or Entra ID."""

    NONE = "none"
    STATIC = "static"
    CLIENT_CREDENTIALS = "client_credentials"


class BookingPrincipal(BaseModel):
    """Credentials of one more Entra app (service principal) that books orders.

    Business Central counts its limits per user or app: each principal has its own 5
    requests in flight and 6,000 requests per 5 minutes, so bookings spread over several
    go further. Same ``auth_mode`` as the default principal.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    static_token: SecretStr | None = None


class ErpConfig(BaseModel):
    """Everything the ERP client needs; immutable so one instance can be shared."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = CLOUD_BASE_URL
    tenant: str = Field(min_length=1)
    environment: str = Field(default="production", min_length=1)
    company_id: UUID
    api_publisher: str = "contoso"
    api_group: str = "commerceSync"
    api_version: str = "v1.0"

    auth_mode: AuthMode = AuthMode.NONE
    static_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # More principals that share the booking of orders (none: the default one alone).
    booking_principals: tuple[BookingPrincipal, ...] = ()
    authority_host: str = "https://login.microsoftonline.com"
    scope: str = "https://api.businesscentral.dynamics.com/.default"
    # Refresh this long before expiry so no request carries a token that dies in flight.
    token_refresh_margin_seconds: float = Field(default=300.0, ge=0)

    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=10.0, gt=0)
    # Hard cap on one attempt; HTTP triggers must answer within 230 s, so stay far below.
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # No retry or throttle wait starts once a call has run this long.
    call_deadline_seconds: float = Field(default=60.0, gt=0, le=200)

    max_concurrent: int = Field(default=5, ge=1)
    requests_per_window: int = Field(default=6000, ge=1)
    window_seconds: float = Field(default=300.0, gt=0)

    retry_max_attempts: int = Field(default=4, ge=1)
    retry_base_backoff_seconds: float = Field(default=0.5, ge=0)
    retry_max_backoff_seconds: float = Field(default=8.0, ge=0)
    throttle_max_retries: int = Field(default=8, ge=0)
    default_retry_after_seconds: float = Field(default=5.0, ge=0)
    # A live caller is better served by ErpThrottled than by waiting minutes.
    max_retry_after_seconds: float = Field(default=60.0, ge=0)

    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_open_seconds: float = Field(default=30.0, gt=0)

    page_size: int = Field(default=1000, ge=1, le=MAX_PAGE_SIZE)
    watermark_overlap_seconds: float = Field(default=30.0, ge=0)

    # The longest Business Central can take to end a request it accepted: it queues beyond 5
    # concurrent requests per principal (up to 8 minutes, then 503), ends an operation after
    # 8 minutes (408) and any request after 10 (504). A create we stopped waiting for may
    # still commit until then, so no lookup before it proves the order absent.
    answer_limit_seconds: float = Field(default=600.0, gt=0)

    # After an ambiguous order create: how often, and how far apart, to look for the order.
    ambiguous_lookup_attempts: int = Field(default=3, ge=1)
    ambiguous_lookup_delay_seconds: float = Field(default=2.0, ge=0)

    @field_validator("base_url", "authority_host")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _auth_settings_complete(self) -> ErpConfig:
        if self.auth_mode is AuthMode.STATIC and not self.static_token:
            raise ValueError("auth_mode 'static' needs static_token")
        if self.auth_mode is AuthMode.CLIENT_CREDENTIALS and not (
            self.client_id and self.client_secret
        ):
            raise ValueError("auth_mode 'client_credentials' needs client_id and client_secret")
        self._booking_principals_complete()
        host = urlsplit(self.base_url).hostname or ""
        if (
            self.auth_mode is not AuthMode.NONE
            and urlsplit(self.base_url).scheme != "https"
            and host not in _LOOPBACK_HOSTS
        ):
            raise ValueError("a bearer token is only sent over https (or to loopback)")
        if self.retry_max_backoff_seconds < self.retry_base_backoff_seconds:
            raise ValueError("retry_max_backoff_seconds must be >= retry_base_backoff_seconds")
        return self

    def _booking_principals_complete(self) -> None:
        if not self.booking_principals:
            return
        if self.auth_mode is AuthMode.NONE:
            raise ValueError(
                "booking principals need auth_mode 'static' or 'client_credentials': "
                "the ERP tells principals apart by their token"
            )
        names: list[str] = [self._principal_name(self)]
        for principal in self.booking_principals:
            if self.auth_mode is AuthMode.STATIC and not principal.static_token:
                raise ValueError("each booking principal needs a static_token")
            if self.auth_mode is AuthMode.CLIENT_CREDENTIALS and not (
                principal.client_id and principal.client_secret
            ):
                raise ValueError("each booking principal needs client_id and client_secret")
            names.append(self._principal_name(principal))
        if len(set(names)) != len(names):
            # The same principal twice would count one budget as two.
            raise ValueError("booking principals must differ from each other and the default")

    def _principal_name(self, principal: ErpConfig | BookingPrincipal) -> str:
        if self.auth_mode is AuthMode.STATIC:
            token = principal.static_token
            return token.get_secret_value() if token else ""
        return principal.client_id or ""

    def principal_labels(self) -> tuple[str, ...]:
        """A non-secret, stable name for the default principal and each booking principal, in
        order: the client id with Entra ID (an app id, not a secret), else the position
        (``default``, ``principal-1``, ...), never a token. Usage records and the operations
        views tell the principals apart by it."""
        entra = self.auth_mode is AuthMode.CLIENT_CREDENTIALS
        labels = [(self.client_id if entra else None) or "default"]
        for number, principal in enumerate(self.booking_principals, start=1):
            labels.append((principal.client_id if entra else None) or f"principal-{number}")
        return tuple(labels)

    def for_principal(self, principal: BookingPrincipal) -> ErpConfig:
        """This configuration with ``principal``'s credentials in place of the default's."""
        return self.model_copy(
            update={
                "client_id": principal.client_id,
                "client_secret": principal.client_secret,
                "static_token": principal.static_token,
                "booking_principals": (),
            }
        )
