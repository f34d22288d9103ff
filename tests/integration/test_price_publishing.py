"""The price publisher and the price book on real parts: the ERP simulator and Azurite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import httpx
import pytest

from devtools.erp_sim.testing import custom_api, running_simulator
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.adapters.erp.errors import ErpUnavailable
from shared.adapters.stores import lease, sync_state
from shared.adapters.tables import TableStore
from shared.domain.pricing import CampaignPolicy, default_currency_table
from shared.services.pricing import publisher as price_publisher
from shared.services.pricing.book import PriceBook
from shared.services.pricing.quotes import QuoteLineIn, QuoteRequest, quote_prices

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with running_simulator(seed=11, items=60, customers=12) as base_url:
        yield base_url


@pytest.fixture
async def erp(sim: str) -> AsyncIterator[ErpClient]:
    config = ErpConfig(
        base_url=sim, tenant="local", environment="sandbox", company_id=COMPANY, page_size=50
    )
    async with ErpClient(config) as client:
        yield client


def _lines(sim: str, **filters: str) -> list[dict[str, object]]:
    query = " and ".join(f"{k} eq '{v}'" for k, v in filters.items())
    params = {"$filter": query} if query else {}
    response = httpx.get(f"{custom_api(sim)}/priceListLines", params=params, timeout=10)
    response.raise_for_status()
    return list(response.json()["value"])


async def _quote(book: PriceBook, customer: str, sku: str, qty: int) -> dict[str, object]:
    request = QuoteRequest(
        customer_id=customer, lines=[QuoteLineIn(sku=sku, quantity=Decimal(qty))]
    )
    answer = await quote_prices(
        book,
        request,
        default_currency_table(),
        frozenset({"USD", "EUR"}),
        CampaignPolicy.ACTIVE_FOR_CUSTOMER,
    )
    return dict(answer["lines"][0])


def _sim_price(sim: str, customer: str, sku: str, qty: int) -> dict[str, str]:
    response = httpx.get(
        f"{sim}/_sim/price",
        params={"customerNumber": customer, "itemNumber": sku, "quantity": qty},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


async def _a_customer_priced_line(sim: str) -> tuple[str, str]:
    for line in _lines(sim, sourceType="Customer"):
        if line["currencyCode"] in ("", "USD") and line["unitOfMeasureCode"] in ("", "PCS"):
            return str(line["sourceNo"]), str(line["assetNo"])
    raise AssertionError("the demo data has no customer price line in local currency")


async def test_full_publish_then_quotes_agree_with_the_erp(
    sim: str, erp: ErpClient, table_store: TableStore
) -> None:
    report = await price_publisher.publish(erp, table_store, "full")
    assert report.read > 0 and report.written == report.read - report.skipped
    book = PriceBook(table_store)
    await book.ensure_current()
    assert len(book.index) == len(_lines(sim))
    customer, sku = await _a_customer_priced_line(sim)
    for qty in (1, 5, 10, 50):
        ours = await _quote(book, customer, sku, qty)
        theirs = _sim_price(sim, customer, sku, qty)
        assert Decimal(str(ours["unitPrice"])) == Decimal(theirs["unitPrice"])
        assert Decimal(str(ours["lineAmount"])) == Decimal(theirs["lineAmount"])
    assert book.freshness.stale is False
    assert book.freshness.data_as_of is not None


async def test_a_price_change_is_visible_after_the_next_delta(
    sim: str, erp: ErpClient, table_store: TableStore
) -> None:
    await price_publisher.publish(erp, table_store, "full")
    book = PriceBook(table_store, refresh_interval=timedelta(0))
    await book.ensure_current()
    line = next(
        candidate
        for candidate in _lines(sim, sourceType="All Customers")
        if candidate["amountType"] != "Discount" and candidate["currencyCode"] in ("", "USD")
    )
    new_price = Decimal("0.01")
    response = httpx.patch(
        f"{custom_api(sim)}/priceListLines({line['id']})",
        json={"unitPrice": float(new_price)},
        headers={"If-Match": str(line["@odata.etag"])},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    delta = await price_publisher.publish(erp, table_store, "delta")
    assert 1 <= delta.read < 50  # only what changed (plus the overlap window), not everything
    await book.ensure_current()
    stored = book.index.get(str(line["id"]))
    assert stored is not None and stored.unit_price == new_price


async def test_a_line_deleted_in_the_erp_is_gone_after_the_full_run(
    sim: str, erp: ErpClient, table_store: TableStore
) -> None:
    await price_publisher.publish(erp, table_store, "full")
    book = PriceBook(table_store, refresh_interval=timedelta(0))
    await book.ensure_current()
    victim = _lines(sim)[0]
    response = httpx.delete(
        f"{custom_api(sim)}/priceListLines({victim['id']})",
        headers={"If-Match": str(victim["@odata.etag"])},
        timeout=10,
    )
    assert response.status_code == 204, response.text
    await price_publisher.publish(erp, table_store, "delta")
    await book.ensure_current()
    assert str(victim["id"]) in book.index  # a delta cannot see deletions
    await price_publisher.publish(erp, table_store, "full")
    await book.ensure_current()
    assert str(victim["id"]) not in book.index


async def test_a_failed_run_leaves_the_watermark_where_it_was(
    sim: str, erp: ErpClient, table_store: TableStore
) -> None:
    await price_publisher.publish(erp, table_store, "full")
    before = await sync_state.read_watermark(table_store, f"{price_publisher.JOB}:priceListLines")
    httpx.post(f"{sim}/_sim/faults", json={"outage": True}, timeout=10).raise_for_status()
    try:
        with pytest.raises(ErpUnavailable):
            await price_publisher.publish(erp, table_store, "delta")
    finally:
        httpx.post(f"{sim}/_sim/faults", json={"outage": False}, timeout=10).raise_for_status()
    after = await sync_state.read_watermark(table_store, f"{price_publisher.JOB}:priceListLines")
    assert after == before
    runs = await sync_state.recent_runs(table_store, f"{price_publisher.JOB}-delta")
    assert runs[0]["outcome"] == "failed"


async def test_overlapping_runs_are_refused(erp: ErpClient, table_store: TableStore) -> None:
    held = await lease.acquire(table_store, price_publisher.JOB, timedelta(minutes=1))
    try:
        with pytest.raises(lease.LeaseHeld):
            await price_publisher.publish(erp, table_store, "delta")
    finally:
        await held.release()


async def test_staleness_follows_the_last_success(table_store: TableStore) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    await sync_state.save_watermark(table_store, price_publisher.JOB, old, succeeded_at=old)
    book = PriceBook(table_store, stale_after=timedelta(minutes=15))
    await book.ensure_current()
    assert book.freshness.stale is True and book.freshness.data_as_of == old
