"""The lean Table client's own formats, pinned against Microsoft's documentation.

Sources (Microsoft Learn, Azure Storage REST API reference):
- "Authorize with Shared Key" (rest/api/storageservices/authorize-with-shared-key), sections
  "Table service (Shared Key authorization)", "Shared Key Lite and Table service format for
  2009-09-19 and later" (the canonicalized resource) and "Shared Key Lite" (Table service).
- "Payload format for Table service operations"
  (rest/api/storageservices/payload-format-for-table-service-operations): which JSON values
  need an ``odata.type`` annotation and how Int64, DateTime, Guid and Binary are written.

Azurite checks the same signatures and payloads on every request of the contract tests
(tests/integration/test_table_store_contract.py); these tests pin the formats themselves, so
an emulator that is laxer than Azure cannot hide a drift.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from shared.adapters.table_rest import (
    API_VERSION,
    Int64,
    RestStatusError,
    TableRestClient,
    entity_from_payload,
    entity_payload,
    odata_literal,
    shared_key_lite_string_to_sign,
    shared_key_string_to_sign,
    substitute,
)

ACCOUNT = "myaccount"
KEY = base64.b64encode(b"not a real key, only for the signature arithmetic").decode()
DATE = "Tue, 01 Dec 2026 08:30:00 GMT"


def test_shared_key_string_to_sign_is_the_documented_five_lines() -> None:
    """Table service: VERB, Content-MD5, Content-Type, Date, CanonicalizedResource, joined
    by newlines; the resource is "/" + account + the encoded URI path (no query string but
    ``comp``, which this client never sends)."""
    to_sign = shared_key_string_to_sign(
        "PUT", "", "application/json", DATE, ACCOUNT, "/Orders(PartitionKey='a',RowKey='b')"
    )
    assert to_sign == (
        "PUT\n"
        "\n"
        "application/json\n"
        "Tue, 01 Dec 2026 08:30:00 GMT\n"
        "/myaccount/Orders(PartitionKey='a',RowKey='b')"
    )


def test_shared_key_on_a_path_style_endpoint_signs_the_account_segment_too() -> None:
    """Emulator and path-style URLs carry the account in the path; the canonicalized
    resource is still "/" + account + that whole path (so the account appears twice)."""
    to_sign = shared_key_string_to_sign(
        "GET", "", "", DATE, "devstoreaccount1", "/devstoreaccount1/T()"
    )
    assert to_sign.splitlines()[-1] == "/devstoreaccount1/devstoreaccount1/T()"
    assert to_sign.splitlines()[:3] == ["GET", "", ""]


def test_shared_key_lite_string_to_sign_is_date_and_resource() -> None:
    assert shared_key_lite_string_to_sign(DATE, ACCOUNT, "/Orders()") == (
        "Tue, 01 Dec 2026 08:30:00 GMT\n/myaccount/Orders()"
    )


async def test_the_authorization_header_is_hmac_sha256_of_the_string_under_the_decoded_key() -> (
    None
):
    client = TableRestClient("https://myaccount.table.core.windows.net", ACCOUNT, account_key=KEY)
    header = await client._authorization("DELETE", "", DATE, "/T(PartitionKey='p',RowKey='r')")
    expected = base64.b64encode(
        hmac.new(
            base64.b64decode(KEY),
            f"DELETE\n\n\n{DATE}\n/myaccount/T(PartitionKey='p',RowKey='r')".encode(),
            hashlib.sha256,
        ).digest()
    ).decode()
    assert header == f"SharedKey myaccount:{expected}"


def test_payload_annotates_only_the_types_json_cannot_say() -> None:
    moment = datetime(2026, 12, 3, 14, 5, 6, 789000, tzinfo=UTC)
    guid = uuid.UUID("c9da6455-213d-42c9-9a79-3e9149a57833")
    payload = entity_payload(
        {
            "PartitionKey": "p",
            "RowKey": "r",
            "name": "x",
            "flag": True,
            "small": 7,
            "big": Int64(2**40),
            "ratio": 0.5,
            "at": moment,
            "id": guid,
            "raw": b"\x00\xff",
            "missing": None,
        }
    )
    assert payload == {
        "PartitionKey": "p",
        "RowKey": "r",
        "name": "x",
        "flag": True,
        "small": 7,
        "big": "1099511627776",
        "big@odata.type": "Edm.Int64",
        "ratio": 0.5,
        "ratio@odata.type": "Edm.Double",
        "at": "2026-12-03T14:05:06.789000Z",
        "at@odata.type": "Edm.DateTime",
        "id": "c9da6455-213d-42c9-9a79-3e9149a57833",
        "id@odata.type": "Edm.Guid",
        "raw": "AP8=",
        "raw@odata.type": "Edm.Binary",
    }


def test_payload_writes_times_in_utc_and_refuses_what_the_service_cannot_hold() -> None:
    local = datetime(2026, 12, 3, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    assert entity_payload({"t": local})["t"] == "2026-12-03T14:00:00.000000Z"
    assert entity_payload({"t": datetime(2026, 12, 3)})["t"] == "2026-12-03T00:00:00.000000Z"
    with pytest.raises(ValueError, match="Int32"):
        entity_payload({"n": 2**31})
    with pytest.raises(ValueError, match="Int64"):
        entity_payload({"n": Int64(2**63)})
    with pytest.raises(TypeError):
        entity_payload({"n": {"nested": 1}})


def test_reading_a_payload_gives_python_types_and_the_etag() -> None:
    entity, etag = entity_from_payload(
        {
            "odata.etag": "W/\"datetime'2026-12-03T14%3A05%3A06.7890000Z'\"",
            "PartitionKey": "p",
            "RowKey": "r",
            "Timestamp": "2026-12-03T14:05:06.7890000Z",
            "big@odata.type": "Edm.Int64",
            "big": "1099511627776",
            "at@odata.type": "Edm.DateTime",
            "at": "2026-12-03T14:05:06.7891234Z",
            "whole@odata.type": "Edm.DateTime",
            "whole": "2026-12-03T14:05:06Z",
            "ratio@odata.type": "Edm.Double",
            "ratio": "Infinity",
            "id@odata.type": "Edm.Guid",
            "id": "c9da6455-213d-42c9-9a79-3e9149a57833",
            "raw@odata.type": "Edm.Binary",
            "raw": "AP8=",
            "small": 7,
            "flag": False,
        }
    )
    assert etag == "W/\"datetime'2026-12-03T14%3A05%3A06.7890000Z'\""
    assert entity == {
        "PartitionKey": "p",
        "RowKey": "r",
        "big": 2**40,
        "at": datetime(2026, 12, 3, 14, 5, 6, 789123, tzinfo=UTC),
        "whole": datetime(2026, 12, 3, 14, 5, 6, tzinfo=UTC),
        "ratio": float("inf"),
        "id": uuid.UUID("c9da6455-213d-42c9-9a79-3e9149a57833"),
        "raw": b"\x00\xff",
        "small": 7,
        "flag": False,
    }


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("O'Neil", "'O''Neil'"),
        (True, "true"),
        (5, "5"),
        (2**40, "1099511627776L"),
        (Int64(5), "5L"),
        (datetime(2026, 1, 1, tzinfo=UTC), "datetime'2026-01-01T00:00:00.000000Z'"),
        (uuid.UUID(int=1), "guid'00000000-0000-0000-0000-000000000001'"),
        (b"\x0a\xff", "X'0aff'"),
    ],
)
def test_filter_parameters_become_odata_literals(value: object, literal: str) -> None:
    assert odata_literal(value) == literal


def test_substitution_replaces_every_named_parameter_and_nothing_else() -> None:
    text = substitute(
        "PartitionKey eq @p0 or (PartitionKey eq @p1 and held gt @n)",
        {"p0": "a'b", "p1": "c", "n": 0},
    )
    assert text == "PartitionKey eq 'a''b' or (PartitionKey eq 'c' and held gt 0)"
    assert substitute("kind eq 'alert'", None) == "kind eq 'alert'"


async def _scripted_service(answers: list[bytes], seen: list[bytes]) -> asyncio.Server:
    """A loopback server answering each request with the next scripted answer."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                seen.append(head + await reader.readexactly(length))
                writer.write(answers.pop(0))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_a_transient_status_is_tried_again_and_a_conflict_is_not() -> None:
    busy = b"HTTP/1.1 503 Server Busy\r\nContent-Length: 0\r\n\r\n"
    done = b'HTTP/1.1 204 No Content\r\nETag: W/"2"\r\n\r\n'
    changed = (
        b"HTTP/1.1 412 Precondition Failed\r\nContent-Length: 62\r\n\r\n"
        b'{"odata.error":{"code":"UpdateConditionNotSatisfied","m":"x"}}'
    )
    seen: list[bytes] = []
    server = await _scripted_service([busy, done, changed], seen)
    port = server.sockets[0].getsockname()[1]
    client = TableRestClient(f"http://127.0.0.1:{port}/acct", "acct", account_key=KEY)
    try:
        entity = {"PartitionKey": "p", "RowKey": "r", "n": 1}
        assert await client.update("T", entity, 'W/"1"') == 'W/"2"'
        assert len(seen) == 2  # the 503, then the same request again
        assert seen[0].split(b"\r\n")[0] == seen[1].split(b"\r\n")[0]
        with pytest.raises(RestStatusError) as refused:
            await client.update("T", entity, 'W/"1"')
        assert refused.value.status == 412
        assert refused.value.code == "UpdateConditionNotSatisfied"
        assert len(seen) == 3  # a 412 is an answer, not a hiccup: never retried
        assert seen[2].startswith(b"PUT /acct/T(PartitionKey='p',RowKey='r') HTTP/1.1\r\n")
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


class _TokenSource:
    """A managed identity's token source that hands out numbered tokens."""

    def __init__(self, lifetime_seconds: float) -> None:
        self.lifetime_seconds = lifetime_seconds
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str) -> object:
        self.scopes.append(scopes)
        return SimpleNamespace(
            token=f"token-{len(self.scopes)}", expires_on=int(time.time() + self.lifetime_seconds)
        )


def test_a_managed_identity_sends_a_storage_bearer_token_renewed_near_expiry() -> None:
    """Microsoft Entra authorization for Table storage ("Authorize access to tables using
    Microsoft Entra ID"): a bearer token for the ``https://storage.azure.com/.default`` scope,
    with x-ms-version 2019-02-02 or later. A token is reused while it has more than the
    margin left, and a new one is asked for once it has not."""

    async def run() -> None:
        long_lived = _TokenSource(lifetime_seconds=3600)
        client = TableRestClient(
            "https://acct.table.core.windows.net", "acct", credential=long_lived
        )
        first = await client._authorization("GET", "", "date", "/t()")
        second = await client._authorization("PUT", "application/json", "date", "/t()")
        assert first == second == "Bearer token-1"
        assert long_lived.scopes == [("https://storage.azure.com/.default",)]

        short_lived = _TokenSource(lifetime_seconds=60)  # inside the refresh margin at once
        client = TableRestClient(
            "https://acct.table.core.windows.net", "acct", credential=short_lived
        )
        assert await client._authorization("GET", "", "date", "/t()") == "Bearer token-1"
        assert await client._authorization("GET", "", "date", "/t()") == "Bearer token-2"

    asyncio.run(run())
    assert API_VERSION >= "2019-02-02"
