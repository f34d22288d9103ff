"""The sync policy reaches what it governs: a timer's schedule in the runner, and the
staleness bound quotes report, through the app's own wiring (settings -> services)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from devtools.erp_sim.testing import running_simulator
from devtools.runner import Runner, RunnerOptions
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.adapters.stores import sync_state
from shared.adapters.tables import TableStore
from shared.bootstrap import build_services
from shared.config.policy import load_policy
from shared.config.settings import get_settings, load_settings
from shared.services.pricing import publisher as price_publisher
from shared.services.pricing import quotes

APPS = Path(__file__).resolve().parent / "runner_apps"
ADMIN_KEY = "policy-admin-key"
COMPANY = "7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20"


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    # The app reads the process settings once; each test sets its own SYNC_POLICY first.
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_the_runner_fires_a_timer_on_its_policy_schedule(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    override = '{"housekeeping": {"heartbeat": {"interval": "PT1S"}}}'
    monkeypatch.setenv("SYNC_POLICY", override)
    monkeypatch.setenv("LOCAL_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("LOCAL_FUNCTION_KEY", "policy-function-key")
    options = RunnerOptions(
        app="runner_policy_app:app",
        port=0,
        app_dir=APPS,
        use_settings_file=False,
        shutdown_grace=3.0,
    )
    async with Runner(options) as runner:
        runs = await runner.wait_for_invocations("heartbeat", 3, timeout=15)
        async with httpx.AsyncClient(base_url=runner.url) as http:
            listed = (
                await http.get("/admin/functions", headers={"x-functions-key": ADMIN_KEY})
            ).json()
    assert all(run.succeeded for run in runs)
    schedules = {f["name"]: f["schedule"] for f in listed}
    assert schedules["heartbeat"] == load_policy(override).schedule("heartbeat")
    assert schedules["heartbeat"] != load_policy().schedule("heartbeat")


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with running_simulator(seed=3, items=20, customers=5) as base_url:
        yield base_url


async def test_the_quote_stale_flag_follows_the_policy_bound(
    sim: str, azurite_connection: str, table_prefix: str
) -> None:
    tables = TableStore.from_connection_string(azurite_connection, prefix=table_prefix)
    config = ErpConfig(base_url=sim, tenant="local", environment="sandbox", company_id=COMPANY)
    async with ErpClient(config) as erp:
        await price_publisher.publish(erp, tables, "full")
    mark = await sync_state.read_watermark(tables, price_publisher.JOB)
    # The last publish succeeded 20 minutes ago: stale at the shipped 15 minutes, fresh at 30.
    published = datetime.now(UTC) - timedelta(minutes=20)
    await sync_state.save_watermark(tables, price_publisher.JOB, mark.value, published)
    await tables.close()

    request = quotes.QuoteRequest.model_validate(
        {"customerId": "C00001", "lines": [{"sku": "IT-000001", "quantity": 1}]}
    )

    async def quote_with(override: str) -> dict[str, object]:
        settings = load_settings(
            AzureWebJobsStorage=azurite_connection,
            TABLE_PREFIX=table_prefix,
            ERP_BASE_URL=sim,
            SYNC_POLICY=override,
        )
        services = build_services(settings)
        try:
            return await quotes.quote_prices(
                services.price_book,
                request,
                services.currencies,
                settings.sold_currency_set,
                services.campaign_policy,
            )
        finally:
            await services.close()

    shipped = await quote_with("")
    relaxed = await quote_with(json.dumps({"prices": {"freshnessObjective": "PT30M"}}))
    assert load_policy().prices.freshness_objective < timedelta(minutes=20)
    assert shipped["stale"] is True
    assert relaxed["stale"] is False
    assert Decimal(str(shipped["totalAmount"])) == Decimal(str(relaxed["totalAmount"]))
