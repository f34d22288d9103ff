"""Every setting the app reads, loaded and validated in one place.

Names are the app-setting names Azure and Core Tools use (``AzureWebJobsStorage``,
``ServiceBusConnection`` and their identity-based ``__`` forms), so the same names work in
``local.settings.json``, in the Bicep app settings and in the environment. The defaults point at
the local stack, so a developer runs the product with no settings file at all.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.config.channels import DEMO_CHANNELS, Channels, parse_channels
from shared.config.policy import PolicyError, load_policy

LOCAL_STORAGE = "UseDevelopmentStorage=true"
LOCAL_SERVICE_BUS = (
    "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
)
DEMO_CHANNEL_SECRETS = '{"web": "local-web-secret", "b2b-eu": "local-b2b-eu-secret"}'
LOCAL_ERP_COMPANY_ID = "7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20"
LOCAL_WEBHOOK_CLIENT_STATE = "local-erp-webhook-client-state"


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name)


MAX_BOOKING_PRINCIPALS = 8


class BookingPrincipalSetting(BaseModel):
    """One more Entra app that books orders: client credentials, or a static token locally."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    client_id: str | None = Field(None, alias="clientId", min_length=1)
    client_secret: SecretStr | None = Field(None, alias="clientSecret")
    token: SecretStr | None = None


_BOOKING_PRINCIPALS = TypeAdapter(list[BookingPrincipalSetting])


class Settings(BaseSettings):
    """The app settings; field aliases are the setting names. Read with ``get_settings()``."""

    # No env_nested_delimiter: identity-based names contain "__" themselves.
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", populate_by_name=True)

    app_env: Literal["local", "cloud"] = Field("local", validation_alias=_alias("APP_ENV"))

    # Storage: a connection string locally, the account name (managed identity) in Azure.
    storage_connection: str | None = Field(
        LOCAL_STORAGE, validation_alias=_alias("AzureWebJobsStorage")
    )
    storage_account_name: str | None = Field(
        None, validation_alias=_alias("AzureWebJobsStorage__accountName")
    )
    table_prefix: str = Field(
        "", pattern=r"^[A-Za-z]?[A-Za-z0-9]{0,20}$", validation_alias=_alias("TABLE_PREFIX")
    )

    # Service Bus: a connection string locally, the namespace (managed identity) in Azure.
    service_bus_connection: str | None = Field(
        LOCAL_SERVICE_BUS, validation_alias=_alias("ServiceBusConnection")
    )
    service_bus_namespace: str | None = Field(
        None, validation_alias=_alias("ServiceBusConnection__fullyQualifiedNamespace")
    )

    # Business Central.
    erp_base_url: str = Field(
        "http://127.0.0.1:8787", pattern=r"^https?://", validation_alias=_alias("ERP_BASE_URL")
    )
    erp_tenant: str = Field("local", min_length=1, validation_alias=_alias("ERP_TENANT"))
    erp_environment: str = Field(
        "sandbox", min_length=1, validation_alias=_alias("ERP_ENVIRONMENT")
    )
    erp_company_id: str = Field(
        LOCAL_ERP_COMPANY_ID,
        pattern=r"^[0-9a-fA-F-]{36}$",
        validation_alias=_alias("ERP_COMPANY_ID"),
    )
    erp_api_publisher: str = Field("contoso", validation_alias=_alias("ERP_API_PUBLISHER"))
    erp_api_group: str = Field("commerceSync", validation_alias=_alias("ERP_API_GROUP"))
    erp_api_version: str = Field("v1.0", validation_alias=_alias("ERP_API_VERSION"))
    erp_auth_mode: Literal["none", "static", "client_credentials"] = Field(
        "none", validation_alias=_alias("ERP_AUTH_MODE")
    )
    erp_client_id: str | None = Field(None, validation_alias=_alias("ERP_CLIENT_ID"))
    erp_client_secret: SecretStr | None = Field(None, validation_alias=_alias("ERP_CLIENT_SECRET"))
    erp_static_token: SecretStr | None = Field(None, validation_alias=_alias("ERP_STATIC_TOKEN"))
    # More Entra apps (service principals) that share the booking of orders, since Business
    # Central's limits are per principal: a JSON list of {"clientId", "clientSecret"} (or
    # {"token"} with ERP_AUTH_MODE=static), in Azure a Key Vault reference; "" = none.
    erp_booking_principals: SecretStr | None = Field(
        None, validation_alias=_alias("ERP_BOOKING_PRINCIPALS")
    )
    erp_timeout_seconds: float = Field(
        10.0, gt=0, le=120, validation_alias=_alias("ERP_TIMEOUT_SECONDS")
    )

    # The sync policy override: JSON deep-merged over shared/config/sync_policy.json (see
    # shared/config/policy.py). Timer schedules and staleness bounds come from the policy.
    sync_policy: str = Field("", validation_alias=_alias("SYNC_POLICY"))

    @field_validator("sync_policy")
    @classmethod
    def _policy_loads(cls, value: str) -> str:
        try:
            load_policy(value)
        except PolicyError as error:
            raise ValueError(str(error)) from None
        return value

    # Pricing.
    local_currency: str = Field(
        "USD", pattern=r"^[A-Z]{3}$", validation_alias=_alias("LOCAL_CURRENCY")
    )
    sold_currencies: str = Field(
        "USD,EUR", pattern=r"^[A-Z]{3}(,[A-Z]{3})*$", validation_alias=_alias("SOLD_CURRENCIES")
    )
    # Business Central's rule: a Campaign line applies only to the campaign's targets (from
    # the customerPricingProfiles page). "open-to-all" is for an ERP that does not model
    # campaign membership.
    campaign_policy: Literal["open-to-all", "active-for-customer"] = Field(
        "active-for-customer", validation_alias=_alias("PRICING_CAMPAIGN_POLICY")
    )

    # Credit check and order intake / booking.
    credit_overdue_tolerance: Decimal = Field(
        Decimal(0),
        ge=0,
        allow_inf_nan=False,
        validation_alias=_alias("CREDIT_OVERDUE_TOLERANCE"),
    )
    credit_erp_timeout_seconds: float = Field(
        5.0, gt=0, le=60, validation_alias=_alias("CREDIT_ERP_TIMEOUT_SECONDS")
    )
    order_idempotency_retention_hours: int = Field(
        24, ge=1, le=24 * 30, validation_alias=_alias("ORDER_IDEMPOTENCY_RETENTION_HOURS")
    )
    order_intake_timeout_seconds: int = Field(
        90, ge=10, le=600, validation_alias=_alias("ORDER_INTAKE_TIMEOUT_SECONDS")
    )
    order_booking_max_attempts: int = Field(
        8, ge=1, le=50, validation_alias=_alias("ORDER_BOOKING_MAX_ATTEMPTS")
    )
    order_booking_retry_base_seconds: float = Field(
        15.0, gt=0, le=3600, validation_alias=_alias("ORDER_BOOKING_RETRY_BASE_SECONDS")
    )
    order_booking_retry_max_seconds: float = Field(
        600.0, gt=0, le=86_400, validation_alias=_alias("ORDER_BOOKING_RETRY_MAX_SECONDS")
    )
    order_booking_claim_seconds: int = Field(
        180, ge=5, le=3600, validation_alias=_alias("ORDER_BOOKING_CLAIM_SECONDS")
    )

    @model_validator(mode="after")
    def _booking_backoff_ordered(self) -> Settings:
        if self.order_booking_retry_max_seconds < self.order_booking_retry_base_seconds:
            raise ValueError(
                "ORDER_BOOKING_RETRY_MAX_SECONDS must be >= ORDER_BOOKING_RETRY_BASE_SECONDS"
            )
        return self

    # Storefront channels (JSON, see shared/config/channels.py) and their webhook signing secrets.
    channels_json: str = Field(DEMO_CHANNELS, validation_alias=_alias("CHANNELS"))
    channel_secrets: SecretStr = Field(
        SecretStr(DEMO_CHANNEL_SECRETS), validation_alias=_alias("CHANNEL_SECRETS")
    )
    storefront_base_url: str = Field(
        "http://127.0.0.1:8788",
        pattern=r"^https?://",
        validation_alias=_alias("STOREFRONT_BASE_URL"),
    )
    storefront_timeout_seconds: float = Field(
        30.0, gt=0, le=120, validation_alias=_alias("STOREFRONT_TIMEOUT_SECONDS")
    )
    # A storefront asking to wait longer than this (429 Retry-After) is retried next run.
    storefront_max_retry_after_seconds: float = Field(
        30.0, ge=0, le=300, validation_alias=_alias("STOREFRONT_MAX_RETRY_AFTER_SECONDS")
    )

    # Content sync (ERP items and content -> storefront channels).
    # A run stops cleanly after this and the next run continues; well under functionTimeout.
    content_run_budget_seconds: int = Field(
        300, ge=10, le=480, validation_alias=_alias("CONTENT_RUN_BUDGET_SECONDS")
    )
    content_erp_page_size: int = Field(
        5000, ge=1, le=20_000, validation_alias=_alias("CONTENT_ERP_PAGE_SIZE")
    )
    # Item numbers per `in (...)` filter when reading the other half of a product by number.
    content_erp_lookup_size: int = Field(
        100, ge=1, le=500, validation_alias=_alias("CONTENT_ERP_LOOKUP_SIZE")
    )
    content_batch_size: int = Field(
        500, ge=1, le=1000, validation_alias=_alias("CONTENT_BATCH_SIZE")
    )

    # Stock: inventory events, availability, threshold alerts, reconciliation.
    stock_low_stock_level: Decimal = Field(
        Decimal(5), ge=0, allow_inf_nan=False, validation_alias=_alias("STOCK_LOW_STOCK_LEVEL")
    )
    stock_safety_stock: Decimal = Field(
        Decimal(0), ge=0, allow_inf_nan=False, validation_alias=_alias("STOCK_SAFETY_STOCK")
    )
    stock_hold_timeout_seconds: int = Field(
        120, ge=0, le=86_400, validation_alias=_alias("STOCK_HOLD_TIMEOUT_SECONDS")
    )
    availability_max_skus: int = Field(
        100, ge=1, le=1000, validation_alias=_alias("AVAILABILITY_MAX_SKUS")
    )

    # Business Central webhooks (change notifications).
    erp_webhook_url: str = Field(
        "http://127.0.0.1:7071/api/erp/notifications",
        pattern=r"^https?://",
        validation_alias=_alias("ERP_WEBHOOK_URL"),
    )
    erp_webhook_client_state: SecretStr = Field(
        SecretStr(LOCAL_WEBHOOK_CLIENT_STATE),
        validation_alias=_alias("ERP_WEBHOOK_CLIENT_STATE"),
    )
    erp_webhook_resources: str = Field(
        "itemAvailabilityByLocation,items,priceListLines,salesOrders,salesShipments,"
        "salesInvoices,salesCreditMemos,salesShipmentTracking",
        pattern=r"^[A-Za-z]+(,[A-Za-z]+)*$",
        validation_alias=_alias("ERP_WEBHOOK_RESOURCES"),
    )

    # Telemetry (shared/observability): off without a connection string. In Azure the Python
    # worker configures the Azure Monitor distro itself when the second setting is true.
    applicationinsights_connection_string: str = Field(
        "", validation_alias=_alias("APPLICATIONINSIGHTS_CONNECTION_STRING")
    )
    worker_configures_telemetry: bool = Field(
        False, validation_alias=_alias("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY")
    )

    @field_validator("erp_webhook_client_state")
    @classmethod
    def _client_state_fits(cls, value: SecretStr) -> SecretStr:
        # Business Central keeps at most 2048 characters of clientState.
        if not 16 <= len(value.get_secret_value()) <= 2048:
            raise ValueError("must be 16 to 2048 characters long")
        return value

    @property
    def erp_webhook_resource_list(self) -> tuple[str, ...]:
        """The entity sets to subscribe to, in the configured order, without repeats."""
        return tuple(dict.fromkeys(self.erp_webhook_resources.split(",")))

    @field_validator("channels_json")
    @classmethod
    def _channels_parse(cls, value: str) -> str:
        parse_channels(value)
        return value

    @field_validator("channel_secrets")
    @classmethod
    def _secrets_parse(cls, value: SecretStr) -> SecretStr:
        secrets = json.loads(value.get_secret_value())
        if not isinstance(secrets, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in secrets.items()
        ):
            raise ValueError('must be a JSON object {"channel": "secret", ...}')
        return value

    @property
    def channels(self) -> Channels:
        return parse_channels(self.channels_json)

    def channel_secret(self, channel: str) -> bytes:
        """The signing secret of a channel (KeyError if it has none)."""
        secrets: dict[str, str] = json.loads(self.channel_secrets.get_secret_value())
        return secrets[channel].encode("utf-8")

    @property
    def sold_currency_set(self) -> frozenset[str]:
        return frozenset(self.sold_currencies.split(",")) | {self.local_currency}

    @field_validator(
        "storage_connection",
        "storage_account_name",
        "service_bus_connection",
        "service_bus_namespace",
        "erp_client_id",
        "erp_client_secret",
        "erp_static_token",
        "erp_booking_principals",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # Settings files and app settings hold "" for "not used here".
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def booking_principals(self) -> tuple[BookingPrincipalSetting, ...]:
        """The extra booking principals (validated when the settings were loaded)."""
        if self.erp_booking_principals is None:
            return ()
        raw = self.erp_booking_principals.get_secret_value()
        return tuple(_BOOKING_PRINCIPALS.validate_json(raw))

    @model_validator(mode="after")
    def _booking_principals_valid(self) -> Settings:
        try:
            principals = self.booking_principals
        except ValidationError:
            # Never echo the value: it holds secrets.
            raise ValueError(
                'ERP_BOOKING_PRINCIPALS must be a JSON list of {"clientId", "clientSecret"}'
                ' or {"token"} objects'
            ) from None
        if len(principals) > MAX_BOOKING_PRINCIPALS:
            raise ValueError(f"ERP_BOOKING_PRINCIPALS: at most {MAX_BOOKING_PRINCIPALS}")
        if principals and self.erp_auth_mode == "none":
            raise ValueError(
                "ERP_BOOKING_PRINCIPALS needs ERP_AUTH_MODE static or client_credentials"
            )
        for principal in principals:
            if self.erp_auth_mode == "static" and principal.token is None:
                raise ValueError(
                    'ERP_BOOKING_PRINCIPALS: each needs "token" (ERP_AUTH_MODE=static)'
                )
            if self.erp_auth_mode == "client_credentials" and not (
                principal.client_id and principal.client_secret
            ):
                raise ValueError('ERP_BOOKING_PRINCIPALS: each needs "clientId" and "clientSecret"')
        return self

    @model_validator(mode="after")
    def _connections_present(self) -> Settings:
        if not (self.storage_connection or self.storage_account_name):
            raise ValueError(
                "set AzureWebJobsStorage (connection string) or "
                "AzureWebJobsStorage__accountName (managed identity)"
            )
        if not (self.service_bus_connection or self.service_bus_namespace):
            raise ValueError(
                "set ServiceBusConnection (connection string) or "
                "ServiceBusConnection__fullyQualifiedNamespace (managed identity)"
            )
        if self.erp_auth_mode == "client_credentials" and not (
            self.erp_client_id and self.erp_client_secret
        ):
            raise ValueError(
                "ERP_AUTH_MODE=client_credentials needs ERP_CLIENT_ID and ERP_CLIENT_SECRET"
            )
        if self.app_env == "cloud" and self.erp_base_url.startswith("http://"):
            raise ValueError("ERP_BASE_URL must use https when APP_ENV=cloud")
        if self.app_env == "cloud" and (
            self.channel_secrets.get_secret_value() == DEMO_CHANNEL_SECRETS
        ):
            raise ValueError(
                "CHANNEL_SECRETS must not be the local demo secrets when APP_ENV=cloud"
            )
        missing = set(self.channels) - set(json.loads(self.channel_secrets.get_secret_value()))
        if missing:
            raise ValueError(f"CHANNEL_SECRETS has no secret for channel(s) {sorted(missing)}")
        return self

    @model_validator(mode="after")
    def _webhook_safe_in_cloud(self) -> Settings:
        # Defined after the checks above so their messages come first for a bad cloud config.
        if self.app_env != "cloud":
            return self
        if self.erp_webhook_client_state.get_secret_value() == LOCAL_WEBHOOK_CLIENT_STATE:
            raise ValueError("ERP_WEBHOOK_CLIENT_STATE must not be the local default in the cloud")
        if not self.erp_webhook_url.startswith("https://"):
            raise ValueError("ERP_WEBHOOK_URL must use https when APP_ENV=cloud")
        return self


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        problems.append(f"{name}: {item['msg']}")
    return "invalid app settings: " + "; ".join(problems)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise ``SettingsError`` naming the bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (Functions reuse the process across invocations)."""
    return load_settings()
