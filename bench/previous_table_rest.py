"""The lean Table client as it was before issue 20's second pass, kept for the benchmark only.

Conditional updates over aiohttp with the SDK's own (private) entity serialization: what
``bench/inventory_bench.py`` measures as the "previous" path beside today's
``shared/adapters/table_rest.py``. Not used by the product.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from azure.data.tables._serialize import _add_entity_properties
from yarl import URL

API_VERSION = "2019-02-02"
STORAGE_SCOPE = "https://storage.azure.com/.default"
# A token is renewed this long before it expires.
_TOKEN_MARGIN_SECONDS = 300


class RestStatusError(RuntimeError):
    """A status the caller maps (412, 404, 409) or a failure it reports."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"Table REST request failed: {status} {text[:300]}")
        self.status = status


class _AccessToken(Protocol):
    token: str
    expires_on: int


class AsyncTokenSource(Protocol):
    async def get_token(self, *scopes: str) -> _AccessToken: ...


def _key_literal(key: str) -> str:
    """An encoded key as an OData string literal inside the entity's URL path."""
    return quote("'" + key.replace("'", "''") + "'", safe="'")


class TableRestClient:
    """Conditional entity updates over the Table REST API (account key or bearer token)."""

    def __init__(
        self,
        endpoint: str,
        account: str,
        *,
        account_key: str | None = None,
        credential: AsyncTokenSource | None = None,
    ) -> None:
        if (account_key is None) == (credential is None):
            raise ValueError("give exactly one of account_key and credential")
        parsed = URL(endpoint.rstrip("/"))
        self._base = str(parsed)
        self._base_path = parsed.path.rstrip("/")
        self._account = account
        self._key = base64.b64decode(account_key) if account_key else None
        self._credential = credential
        self._token: tuple[str, float] | None = None
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_connection_string(cls, connection: str) -> TableRestClient | None:
        """The client for a connection string with an account key and a table endpoint."""
        parts = dict(
            part.split("=", 1) for part in connection.split(";") if "=" in part and part.strip()
        )
        account, key = parts.get("AccountName"), parts.get("AccountKey")
        if not account or not key:
            return None
        endpoint = parts.get("TableEndpoint")
        if not endpoint:
            protocol = parts.get("DefaultEndpointsProtocol", "https")
            suffix = parts.get("EndpointSuffix", "core.windows.net")
            endpoint = f"{protocol}://{account}.table.{suffix}"
        return cls(endpoint, account, account_key=key)

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Nothing from the environment (proxies, .netrc) is looked up per request.
            self._session = aiohttp.ClientSession(trust_env=False)
        return self._session

    async def _authorization(self, method: str, content_type: str, date: str, path: str) -> str:
        if self._key is not None:
            to_sign = f"{method}\n\n{content_type}\n{date}\n/{self._account}{path}"
            digest = hmac.new(self._key, to_sign.encode("utf-8"), hashlib.sha256).digest()
            return f"SharedKey {self._account}:{base64.b64encode(digest).decode()}"
        assert self._credential is not None
        if self._token is None or self._token[1] - _TOKEN_MARGIN_SECONDS <= time.time():
            token = await self._credential.get_token(STORAGE_SCOPE)
            self._token = (token.token, float(token.expires_on))
        return f"Bearer {self._token[0]}"

    async def update(
        self, table: str, entity: Mapping[str, Any], etag: str, *, merge: bool = False
    ) -> str:
        """Replace (or merge) the row if it still has ``etag``; returns the new ETag.

        ``entity`` carries encoded keys and the values the SDK accepts. Raises
        ``RestStatusError`` with the status on any answer but 204.
        """
        partition, row = str(entity["PartitionKey"]), str(entity["RowKey"])
        path = (
            f"{self._base_path}/{quote(table, safe='')}"
            f"(PartitionKey={_key_literal(partition)},RowKey={_key_literal(row)})"
        )
        body = json.dumps(_add_entity_properties(entity), separators=(",", ":"))
        date = formatdate(usegmt=True)
        content_type = "application/json"
        method = "MERGE" if merge else "PUT"
        headers = {
            "x-ms-date": date,
            "x-ms-version": API_VERSION,
            "DataServiceVersion": "3.0",
            "Accept": "application/json;odata=minimalmetadata",
            "Content-Type": content_type,
            "If-Match": etag,
            "Authorization": await self._authorization(method, content_type, date, path),
        }
        url = URL(self._base.removesuffix(self._base_path) + path, encoded=True)
        async with self._session_now().request(
            method, url, data=body.encode("utf-8"), headers=headers
        ) as response:
            if response.status != 204:
                raise RestStatusError(response.status, await response.text())
            await response.read()
            return str(response.headers.get("ETag", ""))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
