"""Tokens: client credentials cached, refreshed near expiry, one refresh at a time."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import ValidationError

from shared.adapters.erp import AuthMode, ErpAuthFailed
from tests.support.erp_client_fakes import FakeClock, json_response, make_client, make_config

CLOUD = "https://api.businesscentral.dynamics.com"
TOKEN_URL = "https://login.microsoftonline.com/tenant1/oauth2/v2.0/token"


class TokenServer:
    """Plays both Entra ID and BC: issues numbered tokens and records what BC received."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.issued = 0
        self.token_forms: list[dict[str, list[str]]] = []
        self.bc_auth: list[str | None] = []
        self.refuse_token: str | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            assert request.method == "POST"
            self.token_forms.append(parse_qs(request.content.decode()))
            await asyncio.sleep(0)  # let concurrent callers pile up behind the lock
            self.issued += 1
            return json_response(
                {
                    "access_token": f"tok{self.issued}",
                    "expires_in": self.expires_in,
                    "token_type": "Bearer",
                }
            )
        auth = request.headers.get("Authorization")
        self.bc_auth.append(auth)
        if auth == f"Bearer {self.refuse_token}":
            return json_response({"error": {"code": "Unauthorized"}}, 401)
        return json_response({"value": []})


def cc_client(server: TokenServer, clock: FakeClock):  # type: ignore[no-untyped-def]
    return make_client(
        server,
        clock=clock,
        base_url=CLOUD,
        auth_mode="client_credentials",
        client_id="app-id",
        client_secret="s3cret",
    )


async def test_token_is_fetched_once_and_cached() -> None:
    server, clock = TokenServer(), FakeClock()
    async with cc_client(server, clock) as client:
        for _ in range(3):
            await client.find_sales_order_by_external_document_number("X")
    assert server.issued == 1
    assert server.bc_auth == ["Bearer tok1"] * 3
    form = server.token_forms[0]
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["app-id"],
        "client_secret": ["s3cret"],
        "scope": ["https://api.businesscentral.dynamics.com/.default"],
    }


async def test_token_is_refreshed_shortly_before_expiry() -> None:
    server, clock = TokenServer(expires_in=3600), FakeClock()
    async with cc_client(server, clock) as client:
        await client.find_sales_order_by_external_document_number("X")
        clock.advance(3600 - 300 - 1)  # default margin is 300 s
        await client.find_sales_order_by_external_document_number("X")
        clock.advance(2)
        await client.find_sales_order_by_external_document_number("X")
    assert server.issued == 2
    assert server.bc_auth == ["Bearer tok1", "Bearer tok1", "Bearer tok2"]


async def test_concurrent_callers_share_one_refresh() -> None:
    server, clock = TokenServer(), FakeClock()
    async with cc_client(server, clock) as client:
        await asyncio.gather(
            *(client.find_sales_order_by_external_document_number(f"X{n}") for n in range(12))
        )
    assert server.issued == 1
    assert len(server.bc_auth) == 12


async def test_refused_token_is_replaced_once() -> None:
    server, clock = TokenServer(), FakeClock()
    server.refuse_token = "tok1"
    async with cc_client(server, clock) as client:
        await client.find_sales_order_by_external_document_number("X")
    assert server.bc_auth == ["Bearer tok1", "Bearer tok2"]


async def test_token_endpoint_refusal_is_auth_failed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response({"error": "invalid_client", "error_description": "bad"}, 401)

    async with make_client(
        handler,
        base_url=CLOUD,
        auth_mode="client_credentials",
        client_id="a",
        client_secret="b",
    ) as client:
        with pytest.raises(ErpAuthFailed, match="invalid_client"):
            await client.find_sales_order_by_external_document_number("X")


async def test_static_token_is_sent() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return json_response({"value": []})

    async with make_client(handler, auth_mode="static", static_token="dev-token") as client:
        await client.find_sales_order_by_external_document_number("X")
    assert seen == ["Bearer dev-token"]


def test_config_refuses_incomplete_auth_and_tokens_over_plain_http() -> None:
    with pytest.raises(ValidationError, match="static_token"):
        make_config(auth_mode=AuthMode.STATIC)
    with pytest.raises(ValidationError, match="client_id"):
        make_config(auth_mode=AuthMode.CLIENT_CREDENTIALS, base_url=CLOUD)
    with pytest.raises(ValidationError, match="https"):
        make_config(auth_mode="static", static_token="t", base_url="http://bc.example.com")
    # Loopback over http is the local simulator: allowed.
    assert make_config(auth_mode="static", static_token="t").base_url == "http://127.0.0.1:8787"
    with pytest.raises(ValidationError):
        make_config(page_size=20_001)
