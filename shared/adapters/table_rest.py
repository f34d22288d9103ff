"""A lean Table REST client: every entity operation the product uses, without the SDK pipeline.

The Azure Tables SDK spends about 1 ms of client CPU per request in its pipeline (a dozen
policies, model (de)serialization, tracing wrappers, and for entity-group transactions a
multipart body built and parsed with the ``email`` package), several times the cost of the
HTTP exchange itself. Stock events cost about one Table request each, so that pipeline was
most of the handler's CPU. This client speaks the same Table REST API (service version
2019-02-02, JSON with minimal metadata) over pooled keep-alive connections
(``http_keepalive``), signed with the account key (SharedKey: Azurite, connection strings)
or a bearer token from the managed identity (Azure): point reads, queries (with
continuation), insert, replace/merge (with or without ``If-Match``), delete and entity-group
transactions (``$batch``).

Entities are (de)serialized here, following Microsoft's "Payload format for Table service
operations": a JSON string, boolean or Int32 needs no annotation; Int64, Double, DateTime,
Guid and Binary values carry a ``<name>@odata.type`` annotation (Int64 as a decimal string,
Binary as base64, DateTime as ISO 8601 UTC). Reads return the same Python types the SDK's
reads did (Int64 as a plain int, DateTime as an aware UTC datetime).

Table creation stays on the SDK (once per table and process). Tested against Azurite by the
TableStore contract tests (every operation goes through this client there).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from enum import Enum
from typing import Any, Literal, Protocol
from urllib.parse import quote

from yarl import URL

from shared.adapters.http_keepalive import Answer, HttpFailure, KeepAliveClient, NotSent

API_VERSION = "2019-02-02"
STORAGE_SCOPE = "https://storage.azure.com/.default"
# A token is renewed this long before it expires.
_TOKEN_MARGIN_SECONDS = 300
_JSON = "application/json"
_ACCEPT = "application/json;odata=minimalmetadata"
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class RestStatusError(RuntimeError):
    """A status the caller maps (412, 404, 409) or a failure it reports."""

    def __init__(self, status: int, text: str, code: str = "") -> None:
        super().__init__(f"Table REST request failed: {status} {code} {text[:300]}".strip())
        self.status = status
        self.code = code


class _AccessToken(Protocol):
    token: str
    expires_on: int


class AsyncTokenSource(Protocol):
    async def get_token(self, *scopes: str) -> _AccessToken: ...


@dataclass(frozen=True)
class Int64:
    """An integer to store as Edm.Int64 whatever its size (a plain int goes as Int32)."""

    value: int


# ---- payload format ----


def _utc_text(value: datetime) -> str:
    # A naive time is taken as UTC (the product writes aware times; the SDK took naive ones
    # as the host's local time, which is UTC on Azure Functions).
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _typed(name: str, value: Any) -> tuple[str | None, Any]:
    """(Edm type or None, JSON value) of one property value."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return None, value
    if isinstance(value, Int64):
        if not _INT64_MIN <= value.value <= _INT64_MAX:
            raise ValueError(f"property {name!r}: {value.value} does not fit Edm.Int64")
        return "Edm.Int64", str(value.value)
    if isinstance(value, int):
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise ValueError(f"property {name!r}: {value} does not fit Edm.Int32; use Int64")
        return None, value
    if isinstance(value, str):
        return None, value
    if isinstance(value, float):
        if math.isnan(value):
            return "Edm.Double", "NaN"
        if math.isinf(value):
            return "Edm.Double", "Infinity" if value > 0 else "-Infinity"
        return "Edm.Double", value
    if isinstance(value, datetime):
        return "Edm.DateTime", _utc_text(value)
    if isinstance(value, uuid.UUID):
        return "Edm.Guid", str(value)
    if isinstance(value, bytes | bytearray):
        return "Edm.Binary", base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"property {name!r}: Table storage has no type for {type(value).__name__}")


def entity_payload(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object for an entity; None values are left out (Table storage has no null)."""
    payload: dict[str, Any] = {}
    for name, value in entity.items():
        if type(value) is str:  # most properties: no annotation, nothing to convert
            payload[name] = value
            continue
        if value is None:
            continue
        edm_type, payload[name] = _typed(name, value)
        if edm_type is not None:
            payload[f"{name}@odata.type"] = edm_type
    return payload


def _parse_time(text: str) -> datetime:
    """ISO 8601 UTC as the service writes it (up to 7 fraction digits, a trailing Z)."""
    stem = text.removesuffix("Z")
    whole, _, fraction = stem.partition(".")
    moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    if fraction:
        moment = moment.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    return moment


def _from_json(edm_type: str | None, value: Any) -> Any:
    if edm_type is None or edm_type in ("Edm.String", "Edm.Int32", "Edm.Boolean"):
        return value
    if edm_type == "Edm.Int64":
        return int(value)
    if edm_type == "Edm.Double":
        return float(value)
    if edm_type == "Edm.DateTime":
        return _parse_time(value)
    if edm_type == "Edm.Guid":
        return uuid.UUID(value)
    if edm_type == "Edm.Binary":
        return base64.b64decode(value)
    return value


def entity_from_payload(payload: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """(properties, ETag) of one entity as the service returned it (minimal metadata).

    ``Timestamp`` (the service's own last-modified time) is not a property of ours and is
    left out, like the SDK did.
    """
    entity: dict[str, Any] = {}
    typed: dict[str, str] = {}
    for name, value in payload.items():
        if "." in name:  # "odata.etag", "<name>@odata.type" (property names have no dot)
            if name.endswith("@odata.type"):
                typed[name[: -len("@odata.type")]] = value
            continue
        if name != "Timestamp":
            entity[name] = value
    for name, edm_type in typed.items():
        if name in entity:
            entity[name] = _from_json(edm_type, entity[name])
    return entity, str(payload.get("odata.etag", ""))


def odata_literal(value: Any) -> str:
    """A filter parameter as an OData literal (the query syntax of the Table service)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Int64):
        return f"{value.value}L"
    if isinstance(value, int):
        return str(value) if _INT32_MIN <= value <= _INT32_MAX else f"{value}L"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return f"datetime'{_utc_text(value)}'"
    if isinstance(value, uuid.UUID):
        return f"guid'{value}'"
    if isinstance(value, bytes | bytearray):
        return f"X'{bytes(value).hex()}'"
    return "'" + str(value).replace("'", "''") + "'"


_PARAMETER = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


def substitute(filter_text: str, parameters: Mapping[str, Any] | None) -> str:
    """``filter_text`` with each ``@name`` replaced by its parameter's literal."""
    if not parameters:
        return filter_text

    def literal(match: re.Match[str]) -> str:
        name = match.group(1)
        return odata_literal(parameters[name]) if name in parameters else match.group(0)

    return _PARAMETER.sub(literal, filter_text)


def _key_literal(key: str) -> str:
    """An encoded key as an OData string literal inside the entity's URL path."""
    return quote("'" + key.replace("'", "''") + "'", safe="'")


def _error_code(text: str) -> str:
    try:
        return str(json.loads(text)["odata.error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


# Answers worth another try (the SDK's default retry policy retried these too). A POST (an
# insert, an entity-group transaction) is retried only on the statuses azure-core retries it
# on, and on a failure to connect; an exchange that broke off after it was sent may have been
# applied, so it goes to the caller (azure-core's RetryPolicy: retry methods HEAD, GET, PUT,
# DELETE, OPTIONS, TRACE; POST and PATCH only on 500, 503, 504).
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_FOR_POST = frozenset({500, 503, 504})
_RETRY_DELAYS = (0.0, 1.6, 3.2)
_MAX_RETRY_AFTER = 10.0


def _retry_after(answer: Answer) -> float:
    try:
        return min(float(answer.headers.get("retry-after", "")), _MAX_RETRY_AFTER)
    except ValueError:
        return 0.0


# ---- authorization ----


def shared_key_string_to_sign(
    method: str, content_md5: str, content_type: str, date: str, account: str, path: str
) -> str:
    """The Table service's SharedKey string-to-sign (see ``tests/unit/test_table_rest.py``).

    ``path`` is the request URL's encoded path (with the account segment on path-style
    endpoints such as Azurite); query parameters other than ``comp`` are not signed, and
    this client sends none.
    """
    return f"{method}\n{content_md5}\n{content_type}\n{date}\n/{account}{path}"


def shared_key_lite_string_to_sign(date: str, account: str, path: str) -> str:
    """The Table service's SharedKeyLite string-to-sign (kept for the pinned format test)."""
    return f"{date}\n/{account}{path}"


# ---- the client ----

OperationKind = Literal["create", "upsert", "update", "delete"]


@dataclass(frozen=True)
class BatchOperation:
    """One operation of an entity-group transaction; keys already encoded."""

    kind: OperationKind
    entity: Mapping[str, Any]
    etag: str | None = None
    merge: bool = False


class TableRestClient:
    """Table entity operations over the Table REST API (account key or bearer token)."""

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
        self._base_path = parsed.path.rstrip("/")
        self._origin = str(parsed.origin())
        self._account = account
        self._key = base64.b64decode(account_key) if account_key else None
        self._credential = credential
        self._token: tuple[str, float] | None = None
        self._http: KeepAliveClient | None = None

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

    def _http_now(self) -> KeepAliveClient:
        if self._http is None:
            self._http = KeepAliveClient(self._origin)
        return self._http

    async def _authorization(self, method: str, content_type: str, date: str, path: str) -> str:
        if self._key is not None:
            to_sign = shared_key_string_to_sign(method, "", content_type, date, self._account, path)
            digest = hmac.new(self._key, to_sign.encode("utf-8"), hashlib.sha256).digest()
            return f"SharedKey {self._account}:{base64.b64encode(digest).decode()}"
        assert self._credential is not None
        if self._token is None or self._token[1] - _TOKEN_MARGIN_SECONDS <= time.time():
            token = await self._credential.get_token(STORAGE_SCOPE)
            self._token = (token.token, float(token.expires_on))
        return f"Bearer {self._token[0]}"

    def _table_path(self, table: str) -> str:
        return f"{self._base_path}/{quote(table, safe='')}"

    def _entity_path(self, table: str, partition: str, row: str) -> str:
        return (
            f"{self._table_path(table)}"
            f"(PartitionKey={_key_literal(partition)},RowKey={_key_literal(row)})"
        )

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        content_type: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One request, retried like the SDK's default policy did: a connection failure or a
        transient status (408, 429, 500, 502, 503, 504) is tried again, up to 3 times, at
        once and then after 1.6 and 3.2 s (or the service's ``Retry-After``); a POST only
        when it could not connect or on 500, 503 or 504 (see ``_TRANSIENT_FOR_POST``)."""
        target = path + (f"?{query}" if query else "")
        for attempt in range(len(_RETRY_DELAYS) + 1):
            date = formatdate(usegmt=True)
            sent = {
                "x-ms-date": date,
                "x-ms-version": API_VERSION,
                "DataServiceVersion": "3.0",
                "MaxDataServiceVersion": "3.0;NetFx",
                "Accept": _ACCEPT,
                "Authorization": await self._authorization(method, content_type, date, path),
                **(headers or {}),
            }
            if content_type:
                sent["Content-Type"] = content_type
            last = attempt == len(_RETRY_DELAYS)
            try:
                answer = await self._http_now().request(method, target, sent, body or b"")
            except (HttpFailure, OSError, TimeoutError) as error:
                if last or (method == "POST" and not isinstance(error, NotSent)):
                    raise
                await asyncio.sleep(_RETRY_DELAYS[attempt])
                continue
            transient = _TRANSIENT_FOR_POST if method == "POST" else _TRANSIENT
            if answer.status not in transient or last:
                return answer
            await asyncio.sleep(_retry_after(answer) or _RETRY_DELAYS[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _fail(answer: Answer) -> RestStatusError:
        text = answer.body.decode("utf-8", "replace")
        return RestStatusError(answer.status, text, _error_code(text))

    async def get(self, table: str, partition: str, row: str) -> tuple[dict[str, Any], str] | None:
        """The entity and its ETag, or None when there is no such row."""
        answer = await self._send("GET", self._entity_path(table, partition, row))
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise self._fail(answer)
        return entity_from_payload(json.loads(answer.body))

    async def create(self, table: str, entity: Mapping[str, Any]) -> str:
        """Insert a new row; returns its ETag (``RestStatusError`` 409 when it exists)."""
        answer = await self._send(
            "POST",
            self._table_path(table),
            body=_dumps(entity_payload(entity)),
            content_type=_JSON,
            headers={"Prefer": "return-no-content"},
        )
        if answer.status != 204:
            raise self._fail(answer)
        return str(answer.headers.get("etag", ""))

    async def update(
        self,
        table: str,
        entity: Mapping[str, Any],
        etag: str | None,
        *,
        merge: bool = False,
    ) -> str:
        """Replace (or merge) the row if it still has ``etag``; returns the new ETag.

        ``etag`` None writes unconditionally and inserts the row when missing (an upsert).
        Raises ``RestStatusError`` with the status on any answer but 204.
        """
        path = self._entity_path(table, str(entity["PartitionKey"]), str(entity["RowKey"]))
        answer = await self._send(
            "MERGE" if merge else "PUT",
            path,
            body=_dumps(entity_payload(entity)),
            content_type=_JSON,
            headers={"If-Match": etag} if etag is not None else None,
        )
        if answer.status != 204:
            raise self._fail(answer)
        return str(answer.headers.get("etag", ""))

    async def delete(self, table: str, partition: str, row: str, etag: str = "*") -> None:
        """Delete the row if it still has ``etag`` (``*``: any); 404 and 412 are raised."""
        answer = await self._send(
            "DELETE", self._entity_path(table, partition, row), headers={"If-Match": etag}
        )
        if answer.status != 204:
            raise self._fail(answer)

    async def query(
        self,
        table: str,
        filter_text: str | None,
        *,
        select: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[tuple[dict[str, Any], str]]:
        """Every matching entity (with its ETag), following continuation tokens page by page."""
        base = [f"$top={page_size}"]
        if filter_text:
            base.append(f"$filter={quote(filter_text, safe='')}")
        if select:
            base.append(f"$select={quote(','.join(select), safe='')}")
        next_keys: list[str] = []
        while True:
            answer = await self._send(
                "GET", f"{self._table_path(table)}()", query="&".join(base + next_keys)
            )
            if answer.status != 200:
                raise self._fail(answer)
            for payload in json.loads(answer.body).get("value", []):
                yield entity_from_payload(payload)
            partition = answer.headers.get("x-ms-continuation-nextpartitionkey")
            if not partition:
                return
            next_keys = [f"NextPartitionKey={quote(partition, safe='')}"]
            row = answer.headers.get("x-ms-continuation-nextrowkey")
            if row:
                next_keys.append(f"NextRowKey={quote(row, safe='')}")

    async def transact(self, table: str, operations: Sequence[BatchOperation]) -> None:
        """One entity-group transaction: all operations apply, or none.

        Raises ``RestStatusError`` with the status (and error code) of the operation that
        failed it, or of the whole request.
        """
        body, boundary = self._batch_body(table, operations)
        answer = await self._send(
            "POST",
            f"{self._base_path}/$batch",
            body=body,
            content_type=f"multipart/mixed; boundary={boundary}",
        )
        if answer.status != 202:
            raise self._fail(answer)
        text = answer.body.decode("utf-8", "replace")
        for match in _PART_STATUS.finditer(text):
            status = int(match.group(1))
            if not 200 <= status < 300:
                rest = text[match.end() :]
                raise RestStatusError(status, rest, _part_error_code(rest))

    def _batch_body(self, table: str, operations: Sequence[BatchOperation]) -> tuple[bytes, str]:
        """The multipart/mixed body of ``$batch`` holding one changeset (CRLF line ends)."""
        batch = f"batch_{uuid.uuid4()}"
        changeset = f"changeset_{uuid.uuid4()}"
        lines = [
            f"--{batch}",
            f"Content-Type: multipart/mixed; boundary={changeset}",
            "",
        ]
        for number, operation in enumerate(operations, start=1):
            partition = str(operation.entity["PartitionKey"])
            row = str(operation.entity["RowKey"])
            headers = [f"Content-Type: {_JSON}", f"Accept: {_ACCEPT}", "DataServiceVersion: 3.0"]
            body = ""
            if operation.kind == "create":
                request = f"POST {self._origin}{self._table_path(table)} HTTP/1.1"
                headers.append("Prefer: return-no-content")
                body = _dumps(entity_payload(operation.entity)).decode("utf-8")
            else:
                url = f"{self._origin}{self._entity_path(table, partition, row)}"
                if operation.kind == "delete":
                    request = f"DELETE {url} HTTP/1.1"
                    headers.append(f"If-Match: {operation.etag or '*'}")
                else:
                    request = f"{'MERGE' if operation.merge else 'PUT'} {url} HTTP/1.1"
                    if operation.kind == "update":
                        headers.append(f"If-Match: {operation.etag or '*'}")
                    body = _dumps(entity_payload(operation.entity)).decode("utf-8")
            lines += [
                f"--{changeset}",
                "Content-Type: application/http",
                "Content-Transfer-Encoding: binary",
                f"Content-ID: {number}",
                "",
                request,
                *headers,
                "",
                body,
            ]
        lines += [f"--{changeset}--", f"--{batch}--", ""]
        return "\r\n".join(lines).encode("utf-8"), batch

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


# The status line of each operation's answer inside a $batch response.
_PART_STATUS = re.compile(r"^HTTP/1\.1 (\d{3})", re.MULTILINE)


def _part_error_code(text: str) -> str:
    match = re.search(r'"code"\s*:\s*"([^"]*)"', text)
    return match.group(1) if match else ""


def _dumps(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
