"""The operations routes and page end to end, the page driven in headless Chromium.

Uses the session's runner. Dead letters are made the way production makes them: a malformed
probe on ``selftest`` is rejected at once by the runner, and an ``order-status`` event that
a storefront rejects is dead-lettered on its subscription.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue
from playwright.sync_api import sync_playwright

from devtools.stack import ROOT
from tests.waiting import eventually

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "test-artifacts" / "operations-page.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SUBSCRIPTION = "order-status:storefront"
POISON_ORDER = "o-poison"  # the SessionId: the storefront subscription requires sessions


@pytest.fixture(scope="module")
def admin(runner_url: str, app_keys: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=runner_url, headers={"x-functions-key": app_keys["admin"]}, timeout=60
    ) as client:
        yield client


@pytest.fixture(scope="module")
def bus(servicebus_connection: str) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(servicebus_connection, retry_total=0) as sb:
        yield sb


def _entity(admin: httpx.Client, entity: str, peek: int = 10) -> dict[str, Any]:
    response = admin.get("/api/ops/deadletters", params={"peek": peek})
    assert response.status_code == 200, response.text
    (found,) = [e for e in response.json()["entities"] if e["entity"] == entity]
    return dict(found)


def _ids(entity: dict[str, Any]) -> list[str]:
    return [m["messageId"] for m in entity["messages"]]


def _remove_dead_letters(bus: ServiceBusClient, queue: str, prefix: str) -> None:
    with bus.get_queue_receiver(
        queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=1
    ) as receiver:
        for message in receiver.receive_messages(max_message_count=100, max_wait_time=1):
            if str(message.message_id).startswith(prefix):
                receiver.complete_message(message)
            else:
                receiver.abandon_message(message)


def _dead_letter_from_subscription(bus: ServiceBusClient, message_id: str) -> None:
    """Reject one event on the storefront subscription, as a storefront consumer would."""
    with bus.get_subscription_receiver(
        "order-status", "storefront", session_id=POISON_ORDER, max_wait_time=2
    ) as receiver:
        for _attempt in range(50):
            batch = receiver.receive_messages(max_message_count=100, max_wait_time=2)
            assert batch, f"{message_id} never reached the subscription"
            found = False
            for message in batch:
                if message.message_id == message_id:
                    receiver.dead_letter_message(
                        message, reason="StorefrontRejected", error_description="e2e poison"
                    )
                    found = True
                else:
                    receiver.abandon_message(message)
            if found:
                return
    raise AssertionError(f"{message_id} not received")


def test_overview_answers_every_section(admin: httpx.Client, runner_url: str) -> None:
    response = admin.get("/api/ops/overview")

    assert response.status_code == 200, response.text
    body = response.json()
    areas = {s["area"] for s in body["status"]}
    assert {"timers", "watermarks", "dead letters", "reconciliation", "erp", "health"} == areas
    assert {t["name"] for t in body["timers"]} >= {"heartbeat", "stock_reconcile", "orders_sweep"}
    assert body["erp"]["breakerState"] in ("closed", "open", "half_open")
    assert {d["name"] for d in body["health"]} == {"tables", "serviceBus"}
    sections = {
        s["title"]: {r["key"]: r["value"] for r in s["rows"]} for s in body["extraSections"]
    }
    accuracy = sections["Transactional accuracy (last 7 days)"]
    assert accuracy["formula"] == "1 - repriced / booked"
    assert int(accuracy["booked orders"]) >= int(accuracy["repriced by the ERP"])
    impact = sections["Business impact (last 30 days)"]
    assert impact["estimated cost avoided per month"].endswith(" USD")
    assert "formula" in impact and "Integration audit" in sections
    # The runner has the default principal alone: its recorded requests and the total agree.
    budget = sections["ERP budget (last 5 min, recorded by every instance)"]
    assert budget["principal default"].split(";")[0] == budget["total"]
    assert " of 6000 requests (" in budget["total"]
    assert httpx.get(f"{runner_url}/api/ops/overview").status_code == 401


def test_a_run_of_a_timer_is_recorded(admin: httpx.Client) -> None:
    started = admin.post("/admin/functions/heartbeat", json={"input": ""})
    assert started.status_code == 202

    def heartbeat_ran() -> dict[str, Any] | None:
        timers = admin.get("/api/ops/overview").json()["timers"]
        (heartbeat,) = [t for t in timers if t["name"] == "heartbeat"]
        last = heartbeat["lastRun"]
        return heartbeat if last and last["result"] == "ok" else None

    heartbeat = eventually(heartbeat_ran)
    assert heartbeat["neverRan"] is False
    assert heartbeat["lastRun"]["seconds"] >= 0


def test_replay_moves_a_rejected_message_back_and_the_runner_processes_it(
    admin: httpx.Client, bus: ServiceBusClient
) -> None:
    message_id = f"ops-bad-{uuid.uuid4().hex[:8]}"
    with bus.get_queue_sender("selftest") as sender:
        sender.send_messages(ServiceBusMessage(b"{not json", message_id=message_id))
    try:
        rejected = eventually(lambda: message_id in _ids(_entity(admin, "selftest", 100)))
        assert rejected
        listed = [m for m in _entity(admin, "selftest", 100)["messages"]]
        (mine,) = [m for m in listed if m["messageId"] == message_id]
        assert mine["reason"] == "InvalidJson"

        response = admin.post("/api/ops/deadletters/selftest/replay", params={"limit": 100})

        assert response.status_code == 200, response.text
        result = response.json()
        assert result["moved"] >= 1 and result["failed"] == 0
        (moved,) = [m for m in result["messages"] if m["messageId"] == message_id]
        # The runner received the copy and, the body still being malformed, rejected it again.
        replayed = moved["newMessageId"]
        assert replayed.startswith(f"{message_id}~replay-")
        eventually(lambda: replayed in _ids(_entity(admin, "selftest", 100)))
        assert message_id not in _ids(_entity(admin, "selftest", 100))
    finally:
        _remove_dead_letters(bus, "selftest", message_id)


def test_replay_refuses_unknown_entities_and_bad_limits(admin: httpx.Client) -> None:
    unknown = admin.post("/api/ops/deadletters/no-such-queue/replay")
    bad_limit = admin.post("/api/ops/deadletters/orders/replay", params={"limit": 0})
    empty = admin.post("/api/ops/deadletters/stock-alerts:storefront/replay")

    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert bad_limit.status_code == 422
    assert empty.status_code == 200 and empty.json()["moved"] == 0


def test_operations_page_in_chromium(
    admin: httpx.Client,
    bus: ServiceBusClient,
    runner_url: str,
    app_keys: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert CHROMIUM.exists(), "Chromium is missing: run `make browser-setup`"
    message_id = f"ops-poison-{uuid.uuid4().hex[:8]}"
    with bus.get_topic_sender("order-status") as sender:
        sender.send_messages(
            ServiceBusMessage(
                b'{"orderId": "o-poison", "status": "?"}',
                message_id=message_id,
                session_id=POISON_ORDER,
            )
        )
    _dead_letter_from_subscription(bus, message_id)
    eventually(lambda: message_id in _ids(_entity(admin, SUBSCRIPTION)))
    url = f"{runner_url}/api/ops/dashboard?code={app_keys['admin']}"

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            page = context.new_page()
            page.goto(url)
            cell = page.locator(f'td.dlq-count[data-entity="{SUBSCRIPTION}"]')
            before = int(cell.inner_text())
            assert before >= 1
            assert message_id in page.locator(f'tr[data-entity="{SUBSCRIPTION}"]').inner_text()
            assert page.locator("#status .area").count() == 6
            assert page.locator("#timers tr[data-timer='heartbeat']").count() == 1
            assert page.locator("#watermarks h2").inner_text() == "Watermarks"
            assert page.locator("#breaker-state").inner_text() in ("closed", "open", "half_open")
            assert page.locator("#drift h2").count() == 1

            page.locator(f'form[data-entity="{SUBSCRIPTION}"] button').click()
            page.wait_for_url("**/ops/dashboard?*replayed=*")

            assert "Replayed order-status:storefront" in page.locator("#flash").inner_text()
            after_cell = page.locator(f'td.dlq-count[data-entity="{SUBSCRIPTION}"]')
            assert int(after_cell.inner_text()) < before
            assert message_id not in page.locator(f'tr[data-entity="{SUBSCRIPTION}"]').inner_text()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            context.close()
    with capsys.disabled():  # shown in CI's output even when pytest captures
        print(f"\noperations page screenshot: {SCREENSHOT}")  # noqa: T201
    assert SCREENSHOT.stat().st_size > 0
