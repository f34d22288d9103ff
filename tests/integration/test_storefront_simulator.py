"""The storefront simulator over real HTTP: the webhook contract and its control routes.

One simulator (demo channels and secrets) serves the module on a free port; every test
starts from `POST /_sim/reset`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import httpx
import pytest

from devtools.storefront_sim.testing import storefront_simulator
from shared.domain.content.signing import SIGNATURE_HEADER, sign

SECRETS = {"web": b"local-web-secret", "b2b-eu": b"local-b2b-eu-secret"}
_batch_numbers = count(1)


@pytest.fixture(scope="module")
def storefront_url() -> Iterator[str]:
    with storefront_simulator() as url:
        yield url


@pytest.fixture
def client(storefront_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=storefront_url, timeout=10) as http:
        http.post("/_sim/reset").raise_for_status()
        yield http


def product(sku: str, name: str | None = "Widget", **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"sku": sku, "unitPrice": "12.50", **fields}
    if name is not None:
        document["name"] = name
    return document


def upsert(sku: str, content_hash: str, **fields: Any) -> dict[str, Any]:
    return {"sku": sku, "contentHash": content_hash, "product": product(sku, **fields)}


def batch(
    upserts: list[dict[str, Any]] | None = None, deletes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "batchId": f"batch-{next(_batch_numbers)}",
        "upserts": upserts or [],
        "deletes": deletes or [],
    }


def signed(
    document: dict[str, Any],
    channel: str = "web",
    *,
    secret: bytes | None = None,
    now: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(document).encode()
    headers = sign(body, secret or SECRETS[channel], now or datetime.now(UTC), channel=channel)
    return body, {**headers, "content-type": "application/json"}


def push(
    client: httpx.Client,
    document: dict[str, Any],
    channel: str = "web",
    *,
    timeout: float | None = None,
    **signing: Any,
) -> httpx.Response:
    body, headers = signed(document, channel, **signing)
    path = f"/channels/{channel}/catalog/batch"
    if timeout is None:
        return client.post(path, content=body, headers=headers)
    return client.post(path, content=body, headers=headers, timeout=timeout)


def received(client: httpx.Client, channel: str | None = None) -> list[dict[str, Any]]:
    params = {"channel": channel} if channel else {}
    response = client.get("/_sim/received", params=params)
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def statuses(response: httpx.Response) -> dict[str, str]:
    return {result["sku"]: result["status"] for result in response.json()["results"]}


def test_signed_batch_is_applied_recorded_and_in_the_catalog(client: httpx.Client) -> None:
    document = batch([upsert("SKU-1", "h1"), upsert("SKU-2", "h2", name="Gadget")])
    response = push(client, document)

    assert response.status_code == 200
    assert response.json()["batchId"] == document["batchId"]
    assert statuses(response) == {"SKU-1": "applied", "SKU-2": "applied"}
    items = received(client)
    assert [(i["channel"], i["sku"], i["operation"], i["contentHash"]) for i in items] == [
        ("web", "SKU-1", "upsert", "h1"),
        ("web", "SKU-2", "upsert", "h2"),
    ]
    assert all(datetime.fromisoformat(i["receivedAt"]).utcoffset() == timedelta(0) for i in items)
    catalog = client.get("/channels/web/catalog").json()["items"]
    assert catalog["SKU-2"] == {
        "contentHash": "h2",
        "product": product("SKU-2", name="Gadget"),
        "updatedAt": catalog["SKU-2"]["updatedAt"],
    }
    assert client.get("/channels/b2b-eu/catalog").json()["items"] == {}


def test_same_sku_and_hash_again_is_unchanged_and_not_recorded_twice(
    client: httpx.Client,
) -> None:
    assert statuses(push(client, batch([upsert("SKU-1", "h1")]))) == {"SKU-1": "applied"}

    again = push(client, batch([upsert("SKU-1", "h1")]))
    changed = push(client, batch([upsert("SKU-1", "h2")]))

    assert statuses(again) == {"SKU-1": "unchanged"}
    assert again.json()["summary"] == {"applied": 0, "unchanged": 1, "rejected": 0}
    assert statuses(changed) == {"SKU-1": "applied"}
    assert [i["contentHash"] for i in received(client)] == ["h1", "h2"]


def test_delete_is_recorded_and_removes_the_product(client: httpx.Client) -> None:
    push(client, batch([upsert("SKU-1", "h1"), upsert("SKU-2", "h2")]))

    deleted = push(client, batch(deletes=[{"sku": "SKU-1", "contentHash": "h1"}]))
    repeated = push(client, batch(deletes=[{"sku": "SKU-1", "contentHash": None}]))

    assert statuses(deleted) == {"SKU-1": "applied"}
    assert statuses(repeated) == {"SKU-1": "unchanged"}
    assert [(i["sku"], i["operation"], i["contentHash"]) for i in received(client)] == [
        ("SKU-1", "upsert", "h1"),
        ("SKU-2", "upsert", "h2"),
        ("SKU-1", "delete", "h1"),
    ]
    assert set(client.get("/channels/web/catalog").json()["items"]) == {"SKU-2"}


def test_product_without_name_is_rejected_alone(client: httpx.Client) -> None:
    document = batch(
        [upsert("SKU-1", "h1"), upsert("SKU-2", "h2", name=None), upsert("SKU-3", "h3", name=" ")]
    )
    document["upserts"].append(upsert("SKU-4", "h4"))

    response = push(client, document)

    assert response.status_code == 200
    results = {r["sku"]: r for r in response.json()["results"]}
    assert [results[s]["status"] for s in ("SKU-1", "SKU-2", "SKU-3", "SKU-4")] == [
        "applied",
        "rejected",
        "rejected",
        "applied",
    ]
    assert "name" in results["SKU-2"]["error"]
    assert "error" not in results["SKU-1"]
    assert [i["sku"] for i in received(client)] == ["SKU-1", "SKU-4"]
    assert set(client.get("/channels/web/catalog").json()["items"]) == {"SKU-1", "SKU-4"}


def test_same_sku_twice_in_one_batch_rejects_the_second(client: httpx.Client) -> None:
    response = push(client, batch([upsert("SKU-1", "h1")], deletes=[{"sku": "SKU-1"}]))

    assert [r["status"] for r in response.json()["results"]] == ["applied", "rejected"]
    assert [i["operation"] for i in received(client)] == ["upsert"]


@pytest.mark.parametrize(
    "tamper",
    ["wrong-secret", "tampered-body", "no-signature", "no-headers"],
)
def test_invalid_signature_is_401_and_nothing_applies(client: httpx.Client, tamper: str) -> None:
    body, headers = signed(batch([upsert("SKU-1", "h1")]))
    if tamper == "wrong-secret":
        body, headers = signed(json.loads(body), secret=b"not-the-web-secret")
    elif tamper == "tampered-body":
        body = body.replace(b"h1", b"h9")
    elif tamper == "no-signature":
        del headers[SIGNATURE_HEADER]
    else:
        headers = {}

    response = client.post("/channels/web/catalog/batch", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "signature-invalid"
    assert received(client) == []


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_expired_or_future_signature_is_401(client: httpx.Client, skew: timedelta) -> None:
    response = push(client, batch([upsert("SKU-1", "h1")]), now=datetime.now(UTC) + skew)

    assert response.status_code == 401
    assert response.json()["error"] == "signature-expired"
    assert received(client) == []


def test_secret_of_another_channel_is_refused(client: httpx.Client) -> None:
    response = push(client, batch([upsert("SKU-1", "h1")]), "web", secret=SECRETS["b2b-eu"])
    assert response.status_code == 401


def test_channel_header_must_name_the_channel(client: httpx.Client) -> None:
    body, headers = signed(batch([upsert("SKU-1", "h1")]), "web")
    response = client.post(
        "/channels/web/catalog/batch", content=body, headers={**headers, "x-channel": "b2b-eu"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "channel-mismatch"
    assert received(client) == []


def test_replayed_request_is_409_even_with_the_digest_recased(client: httpx.Client) -> None:
    body, headers = signed(batch([upsert("SKU-1", "h1")]))
    first = client.post("/channels/web/catalog/batch", content=body, headers=headers)
    replay = client.post("/channels/web/catalog/batch", content=body, headers=headers)
    scheme, _, digest = headers[SIGNATURE_HEADER].partition("=")
    recased = {**headers, SIGNATURE_HEADER: f"{scheme}={digest.upper()}"}
    disguised = client.post("/channels/web/catalog/batch", content=body, headers=recased)

    assert first.status_code == 200
    assert replay.status_code == 409
    assert replay.json()["error"] == "replayed"
    assert disguised.status_code == 409
    assert len(received(client)) == 1


def test_same_batch_signed_again_is_not_a_replay(client: httpx.Client) -> None:
    document = batch([upsert("SKU-1", "h1")])
    now = datetime.now(UTC)
    first = push(client, document, now=now)
    retry = push(client, document, now=now + timedelta(seconds=1))

    assert first.status_code == retry.status_code == 200
    assert statuses(retry) == {"SKU-1": "unchanged"}


def test_unknown_channel_is_404(client: httpx.Client) -> None:
    body, headers = signed(batch([upsert("SKU-1", "h1")]), "web")
    response = client.post("/channels/nowhere/catalog/batch", content=body, headers=headers)

    assert response.status_code == 404
    assert response.json()["error"] == "unknown-channel"
    assert client.get("/channels/nowhere/catalog").status_code == 404


def test_more_than_500_operations_is_413(client: httpx.Client) -> None:
    upserts = [upsert(f"SKU-{n}", f"h{n}") for n in range(300)]
    deletes = [{"sku": f"OLD-{n}", "contentHash": None} for n in range(201)]

    too_many = push(client, batch(upserts, deletes))
    at_limit = push(client, batch(upserts, deletes[:200]))

    assert too_many.status_code == 413
    assert too_many.json()["error"] == "too-many-operations"
    assert at_limit.status_code == 200
    assert len(at_limit.json()["results"]) == 500
    assert len(received(client)) == 300


@pytest.mark.parametrize(
    "document",
    [
        {"batchId": "b", "upserts": [{"sku": "SKU-1", "product": {"name": "x"}}]},
        {"batchId": "", "upserts": []},
        {"upserts": []},
        {"batchId": "b", "upserts": [{"sku": "", "contentHash": "h", "product": {}}]},
        {"batchId": "b", "upserts": [{"sku": " SKU-1", "contentHash": "h", "product": {}}]},
        {"batchId": "b", "upserts": [{"sku": "SKU-1", "contentHash": "h", "product": None}]},
        {"batchId": "b", "deletes": "SKU-1"},
        ["not", "an", "object"],
    ],
)
def test_batch_breaking_the_contract_is_422(client: httpx.Client, document: Any) -> None:
    body = json.dumps(document).encode()
    headers = sign(body, SECRETS["web"], datetime.now(UTC), channel="web")

    response = client.post("/channels/web/catalog/batch", content=body, headers=headers)

    assert response.status_code == 422
    assert response.json()["violations"]
    assert received(client) == []


def test_body_that_is_not_json_is_400(client: httpx.Client) -> None:
    body = b"{not json"
    headers = sign(body, SECRETS["web"], datetime.now(UTC), channel="web")
    response = client.post("/channels/web/catalog/batch", content=body, headers=headers)
    assert response.status_code == 400


def test_outage_on_one_channel_leaves_the_other_working(client: httpx.Client) -> None:
    client.post("/_sim/faults", json={"channel": "b2b-eu", "outage": True}).raise_for_status()

    down = push(client, batch([upsert("SKU-1", "h1")]), "b2b-eu")
    up = push(client, batch([upsert("SKU-1", "h1")]), "web")

    assert down.status_code == 503
    assert up.status_code == 200
    assert [i["channel"] for i in received(client)] == ["web"]
    stats = client.get("/_sim/stats").json()
    assert stats["channels"]["b2b-eu"]["byStatus"] == {"503": 1}
    assert stats["channels"]["web"]["byStatus"] == {"200": 1}
    assert stats["totalRequests"] == 2


def test_throttle_answers_429_with_retry_after(client: httpx.Client) -> None:
    client.post("/_sim/faults", json={"throttle": True}).raise_for_status()

    for channel in ("web", "b2b-eu"):
        response = push(client, batch([upsert("SKU-1", "h1")]), channel)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
    assert received(client) == []


def test_posting_faults_replaces_that_scope(client: httpx.Client) -> None:
    client.post("/_sim/faults", json={"outage": True}).raise_for_status()
    client.post("/_sim/faults", json={"channel": "web", "throttle": True}).raise_for_status()
    client.post("/_sim/faults", json={}).raise_for_status()  # clears the global outage only

    assert push(client, batch([upsert("SKU-1", "h1")]), "web").status_code == 429
    assert push(client, batch([upsert("SKU-1", "h1")]), "b2b-eu").status_code == 200
    faults = client.get("/_sim/faults").json()
    assert faults["global"]["outage"] is False
    assert faults["channels"]["web"]["throttle"] is True


def test_error_rate_is_seeded_and_repeatable(client: httpx.Client) -> None:
    def run() -> list[int]:
        client.post("/_sim/reset").raise_for_status()
        client.post("/_sim/faults", json={"errorRate": 0.5, "seed": 7}).raise_for_status()
        return [push(client, batch([upsert("SKU-1", "h1")])).status_code for _ in range(16)]

    first, second = run(), run()

    assert first == second
    assert set(first) == {200, 500}


def test_error_rate_one_always_fails(client: httpx.Client) -> None:
    client.post("/_sim/faults", json={"errorRate": 1}).raise_for_status()
    codes = {push(client, batch([upsert(f"SKU-{n}", "h")])).status_code for n in range(5)}
    assert codes == {500}


def test_latency_holds_the_answer_back() -> None:
    # A client deadline far below the injected latency must expire; nothing is timed here.
    # A simulator of its own, so the request still sleeping there cannot touch other tests.
    with storefront_simulator() as url, httpx.Client(base_url=url, timeout=10) as own:
        own.post("/_sim/faults", json={"channel": "web", "latencyMs": 1500}).raise_for_status()
        with pytest.raises(httpx.ReadTimeout):
            push(own, batch([upsert("SKU-1", "h1")]), "web", timeout=0.2)
        assert push(own, batch([upsert("SKU-1", "h1")]), "b2b-eu").status_code == 200


@pytest.mark.parametrize(
    "faults",
    [
        {"errorRate": 1.5},
        {"latencyMs": -1},
        {"outage": "sometimes"},
        {"channel": "no such!"},
        {"outages": True},
    ],
)
def test_bad_faults_body_is_422(client: httpx.Client, faults: dict[str, Any]) -> None:
    assert client.post("/_sim/faults", json=faults).status_code == 422


def test_faults_for_an_unknown_channel_are_404(client: httpx.Client) -> None:
    assert client.post("/_sim/faults", json={"channel": "nowhere"}).status_code == 404


def test_reset_clears_everything(client: httpx.Client) -> None:
    body, headers = signed(batch([upsert("SKU-1", "h1")]))
    client.post("/channels/web/catalog/batch", content=body, headers=headers).raise_for_status()
    client.post("/_sim/faults", json={"channel": "b2b-eu", "outage": True}).raise_for_status()

    client.post("/_sim/reset").raise_for_status()

    assert received(client) == []
    assert client.get("/channels/web/catalog").json()["items"] == {}
    assert client.get("/_sim/stats").json() == {"totalRequests": 0, "channels": {}}
    assert push(client, batch([upsert("SKU-1", "h1")]), "b2b-eu").status_code == 200
    # The replay cache is empty too: the very same signed request applies again.
    again = client.post("/channels/web/catalog/batch", content=body, headers=headers)
    assert statuses(again) == {"SKU-1": "applied"}


def test_received_can_be_filtered_by_channel(client: httpx.Client) -> None:
    push(client, batch([upsert("SKU-1", "h1")]), "web")
    push(client, batch([upsert("SKU-2", "h2")]), "b2b-eu")
    push(client, batch([upsert("SKU-3", "h3")]), "web")

    assert [i["sku"] for i in received(client)] == ["SKU-1", "SKU-2", "SKU-3"]
    assert [i["sku"] for i in received(client, "web")] == ["SKU-1", "SKU-3"]
    assert [i["sku"] for i in received(client, "b2b-eu")] == ["SKU-2"]
    assert client.get("/_sim/received", params={"channel": "bad name!"}).status_code == 422
