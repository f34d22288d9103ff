"""Business Central OData addressing: entity URLs, key segments, literals and query strings.

Item and customer numbers can contain ``/ # ? \\ '`` and non-ASCII characters, so every
literal is quoted the OData way (single quotes doubled) and then percent-encoded; nothing
user-supplied reaches a URL unescaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import quote, urlsplit
from uuid import UUID

from shared.adapters.erp.config import ErpConfig


class Api(StrEnum):
    """Which API an entity set belongs to: Microsoft's v2.0 or the partner's custom pages."""

    STANDARD = "standard"
    CUSTOM = "custom"


def odata_string_literal(value: str) -> str:
    """Quote ``value`` as an OData string literal: ``O'Neil`` -> ``'O''Neil'``."""
    return "'" + value.replace("'", "''") + "'"


def odata_datetime_literal(moment: datetime) -> str:
    """An Edm.DateTimeOffset literal in UTC with milliseconds: ``2025-03-01T11:59:40.000Z``.

    Floored to the millisecond (earlier is safe for a watermark) and fixed width, the form
    BC itself writes, so it also compares right where timestamps are compared as text.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("watermarks must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def eq_filter(field: str, value: str) -> str:
    """``field eq 'value'`` with the value escaped."""
    return f"{field} eq {odata_string_literal(value)}"


def modified_since_filter(watermark: datetime, overlap_seconds: float) -> str:
    """Rows changed after the watermark, reaching back by the overlap.

    BC stamps ``lastModifiedDateTime`` when a transaction starts, so a row committed later
    can carry an older time than the watermark; the overlap catches it (and the consumer
    sees some rows twice).
    """
    since = watermark - timedelta(seconds=overlap_seconds)
    return f"lastModifiedDateTime gt {odata_datetime_literal(since)}"


def and_filters(*clauses: str | None) -> str | None:
    """Join the present clauses with ``and``; ``None`` when there are none."""
    present = [c for c in clauses if c]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return " and ".join(f"({c})" for c in present)


def query_string(params: Mapping[str, str | int | None]) -> str:
    """``$filter=...&$top=...`` with values percent-encoded (spaces as %20, not +)."""
    parts = [
        f"{key}={quote(str(value), safe='')}" for key, value in params.items() if value is not None
    ]
    return "&".join(parts)


def string_key(value: str) -> str:
    """A key segment for a string key: ``('AB%2F12%233')``."""
    return "(" + quote(odata_string_literal(value), safe="'") + ")"


def guid_key(value: UUID | str) -> str:
    """A key segment for a GUID key; BC's v2.0 GUID keys are unquoted."""
    return f"({UUID(str(value))})"


class ErpUrls:
    """Builds the absolute URLs of one company's standard and custom entity sets."""

    def __init__(self, config: ErpConfig) -> None:
        tenant, environment = quote(config.tenant, safe=""), quote(config.environment, safe="")
        root = f"{config.base_url}/v2.0/{tenant}/{environment}"
        company = f"companies({config.company_id})"
        self._standard_api = f"{root}/api/v2.0"
        self._standard = f"{self._standard_api}/{company}"
        custom_api = (
            f"{root}/api/{quote(config.api_publisher, safe='')}/"
            f"{quote(config.api_group, safe='')}/{quote(config.api_version, safe='')}"
        )
        self._custom = f"{custom_api}/{company}"
        # Each API has its own subscriptions endpoint: BC refuses a custom page's resource
        # at api/v2.0/subscriptions, and the reverse.
        self._api_roots = {Api.STANDARD: self._standard_api, Api.CUSTOM: custom_api}
        # Subscription resources are paths below the environment, without the host.
        self._resources = {
            Api.STANDARD: f"api/v2.0/{company}",
            Api.CUSTOM: custom_api.removeprefix(root + "/") + f"/{company}",
        }
        origin = urlsplit(config.base_url)
        self.origin = (origin.scheme, origin.netloc.lower())

    def companies(self) -> str:
        """The company list, which sits above any company."""
        return f"{self._standard_api}/companies"

    def subscriptions(self, api: Api = Api.STANDARD) -> str:
        """Webhook subscriptions live at the root of the API that serves the resource
        (``api/v2.0/subscriptions`` or ``api/{publisher}/{group}/{version}/subscriptions``)."""
        return f"{self._api_roots[api]}/subscriptions"

    def entity_set(self, name: str, api: Api = Api.STANDARD, *, key: str = "") -> str:
        """``.../companies(id)/{name}{key}`` on the chosen API."""
        base = self._standard if api is Api.STANDARD else self._custom
        return f"{base}/{name}{key}"

    def with_query(self, url: str, params: Mapping[str, str | int | None]) -> str:
        """Append an encoded query string to ``url``."""
        query = query_string(params)
        return f"{url}?{query}" if query else url

    def subscription_resource(self, entity_set: str, api: Api = Api.STANDARD) -> str:
        """The ``resource`` a webhook subscription names: ``api/v2.0/companies(id)/items``, or
        ``api/{publisher}/{group}/{version}/companies(id)/{set}`` for a custom API page."""
        return f"{self._resources[api]}/{entity_set}"

    def is_same_origin(self, url: str) -> bool:
        """True when ``url`` points at the configured ERP, so a nextLink cannot leak the token."""
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc.lower()) == self.origin
