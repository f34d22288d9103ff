"""The price snapshot blob on real parts (ERP simulator, Azurite tables and blobs).

A book loaded from the blob (plus the deltas since) quotes exactly what a book loaded from the
tables quotes, for every customer and item of the simulator's catalog; a torn or stale blob is
never served: the book says so and loads from the tables.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import struct
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import httpx
import pytest

from devtools.erp_sim.testing import custom_api, running_simulator
from shared.adapters.blobs import BlobStore
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.adapters.stores import price_snapshot
from shared.adapters.stores.price_snapshot import SnapshotBlobs, SnapshotRejected
from shared.adapters.tables import TableStore
from shared.domain.pricing import CampaignPolicy, QuoteRejected, default_currency_table
from shared.services.pricing import publisher as price_publisher
from shared.services.pricing.book import PriceBook
from shared.services.pricing.quotes import QuoteLineIn, QuoteRequest, quote_prices

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with running_simulator(seed=23, items=60, customers=12) as base_url:
        yield base_url


@pytest.fixture
async def erp(sim: str) -> AsyncIterator[ErpClient]:
    config = ErpConfig(
        base_url=sim, tenant="local", environment="sandbox", company_id=COMPANY, page_size=40
    )
    async with ErpClient(config) as client:
        yield client


@pytest.fixture
async def snapshots(blob_connection: str, table_prefix: str) -> AsyncIterator[SnapshotBlobs]:
    store = BlobStore.from_connection_string(blob_connection, price_snapshot.CONTAINER)
    try:
        yield SnapshotBlobs(store, table_prefix)
    finally:
        await store.close()


def _lines(sim: str) -> list[dict[str, object]]:
    response = httpx.get(f"{custom_api(sim)}/priceListLines", timeout=10)
    response.raise_for_status()
    return list(response.json()["value"])


async def _answers(book: PriceBook, customers: list[str], skus: list[str]) -> list[object]:
    answers: list[object] = []
    for customer in customers:
        for sku in skus:
            for quantity in (1, 7, 50):
                request = QuoteRequest(
                    customer_id=customer,
                    lines=[QuoteLineIn(sku=sku, quantity=Decimal(quantity))],
                )
                try:
                    answer = await quote_prices(
                        book,
                        request,
                        default_currency_table(),
                        frozenset({"USD", "EUR"}),
                        CampaignPolicy.ACTIVE_FOR_CUSTOMER,
                    )
                except QuoteRejected as error:
                    answers.append(("rejected", customer, sku, quantity, str(error)))
                    continue
                answer.pop("dataAsOf", None)
                answers.append(answer)
    return answers


def _keys(sim: str) -> tuple[list[str], list[str]]:
    lines = _lines(sim)
    customers = sorted({str(x["sourceNo"]) for x in lines if x["sourceType"] == "Customer"})
    skus = sorted({str(x["assetNo"]) for x in lines if x["assetNo"]})
    return customers, skus


async def test_a_book_from_the_blob_quotes_what_a_book_from_the_tables_quotes(
    sim: str, erp: ErpClient, table_store: TableStore, snapshots: SnapshotBlobs
) -> None:
    await price_publisher.publish(erp, table_store, "full", snapshots=snapshots)
    line = next(x for x in _lines(sim) if x["amountType"] != "Discount")
    response = httpx.patch(
        f"{custom_api(sim)}/priceListLines({line['id']})",
        json={"unitPrice": 0.37},
        headers={"If-Match": str(line["@odata.etag"])},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    # A line moved to another source, and a line new since the snapshot.
    moved = next(x for x in _lines(sim) if x["sourceType"] == "Customer" and x["id"] != line["id"])
    response = httpx.patch(
        f"{custom_api(sim)}/priceListLines({moved['id']})",
        json={"sourceType": "All Customers", "sourceNo": ""},
        headers={"If-Match": str(moved["@odata.etag"])},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    customers, skus = _keys(sim)
    response = httpx.post(
        f"{custom_api(sim)}/priceListLines",
        json={
            "priceListCode": "DELTA-NEW",
            "sourceType": "Customer",
            "sourceNo": customers[0],
            "assetNo": skus[0],
            "unitPrice": 0.11,
        },
        timeout=10,
    )
    assert response.status_code == 201, response.text
    added = response.json()
    await price_publisher.publish(erp, table_store, "delta", snapshots=snapshots)

    from_blob = PriceBook(table_store, snapshots=snapshots)
    from_tables = PriceBook(table_store)
    await from_blob.ensure_current()
    await from_tables.ensure_current()
    assert (from_blob.loaded_from, from_tables.loaded_from) == ("blob", "tables")
    # The delta since the snapshot came from the change feed, on top of the blob.
    changed = from_blob.index.get(str(line["id"]))
    assert changed is not None and changed.unit_price == Decimal("0.37")
    assert from_blob.index.get(str(added["id"])) == from_tables.index.get(str(added["id"]))
    assert str(added["id"]) in from_blob.index
    assert from_blob.index.get(str(moved["id"])) == from_tables.index.get(str(moved["id"]))
    assert len(from_blob.index) == len(from_tables.index) == len(_lines(sim))
    assert from_blob.items == from_tables.items
    assert from_blob.customers == from_tables.customers
    customers, skus = _keys(sim)
    assert customers and skus
    ours, theirs = (
        await _answers(from_blob, customers, skus),
        await _answers(from_tables, customers, skus),
    )
    assert ours == theirs
    assert any(isinstance(answer, dict) for answer in ours)


async def _pointer_run(table_store: TableStore) -> str:
    snapshot = await price_publisher.current_snapshot(table_store)
    assert snapshot is not None
    return snapshot.run_id


async def _rewrite(
    snapshots: SnapshotBlobs, run_id: str, content: bytes, metadata: dict[str, str]
) -> None:
    block = base64.b64encode(b"00000000").decode()
    await snapshots.store.stage_block(snapshots.name(run_id), block, content)
    await snapshots.store.commit(snapshots.name(run_id), [block], metadata)


def _last_frame(content: bytes) -> bytes:
    """The blob's last frame with its length and record count in front."""
    offset = 0
    while True:
        length, _ = struct.unpack_from(">II", content, offset)
        if offset + 8 + length == len(content):
            return content[offset:]
        offset += 8 + length


async def test_a_torn_or_stale_blob_is_never_served(
    erp: ErpClient,
    table_store: TableStore,
    snapshots: SnapshotBlobs,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await price_publisher.publish(erp, table_store, "full", snapshots=snapshots)
    run_id = await _pointer_run(table_store)
    stored = await snapshots.store.read(snapshots.name(run_id))
    assert stored is not None and stored.metadata["runid"] == run_id
    good = list((await price_snapshot.read_snapshot(snapshots, run_id)).frames())
    assert sum(len(rows) for _, rows in good) == int(stored.metadata["records"])
    line_count = sum(len(rows) for dataset, rows in good if dataset == "lines")

    torn = stored.content[: len(stored.content) // 2]
    # A data frame that does not decode, then the blob's own directory (its last frame), under
    # a manifest that agrees with them in every count; and a directory that does not decode.
    directory = _last_frame(stored.content)
    garbage = struct.pack(">II", 7, 1) + b"garbage" + directory
    unreadable = {
        **stored.metadata,
        "frames": "1",
        "records": "1",
        "sha256": hashlib.sha256(garbage).hexdigest(),
    }
    garbage_directory = struct.pack(">II", 7, 0) + b"garbage"
    unreadable_directory = {
        **stored.metadata,
        "frames": "0",
        "records": "0",
        "sha256": hashlib.sha256(garbage_directory).hexdigest(),
    }
    # A frame appended, with the checksum recomputed over it: the manifest's counts catch it.
    longer = stored.content + price_snapshot.encode_frame(
        "items", [("X", ["X", "PCS", "1", False])]
    )
    appended = {**stored.metadata, "sha256": hashlib.sha256(longer).hexdigest()}
    cases = {
        "checksum": (torn, stored.metadata),
        "a frame does not parse": (garbage, unreadable),
        "the directory does not parse": (garbage_directory, unreadable_directory),
        "stale": (stored.content, {**stored.metadata, "runid": "another-run"}),
        "counts": (longer, appended),
    }
    for reason, (content, metadata) in cases.items():
        await _rewrite(snapshots, run_id, content, metadata)
        with pytest.raises(SnapshotRejected, match=reason):
            list((await price_snapshot.read_snapshot(snapshots, run_id)).frames())
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            book = PriceBook(table_store, snapshots=snapshots, refresh_interval=timedelta(0))
            await book.ensure_current()
        assert book.loaded_from == "tables", reason
        assert "price snapshot blob not used" in caplog.text
        assert len(book.index) == line_count

    await snapshots.store.delete(snapshots.name(run_id))
    with pytest.raises(SnapshotRejected, match="no snapshot blob"):
        await price_snapshot.read_snapshot(snapshots, run_id)


async def test_a_blob_of_format_2_without_a_directory_still_loads_and_quotes_the_same(
    sim: str, erp: ErpClient, table_store: TableStore, snapshots: SnapshotBlobs
) -> None:
    """Blobs written before the directory (format 3) stay usable: their rows are grouped at
    load instead of found through the directory."""
    await price_publisher.publish(erp, table_store, "full", snapshots=snapshots)
    run_id = await _pointer_run(table_store)
    stored = await snapshots.store.read(snapshots.name(run_id))
    assert stored is not None and stored.metadata["format"] == "3"
    with_directory = PriceBook(table_store, snapshots=snapshots)
    await with_directory.ensure_current()

    frames_only = stored.content[: -len(_last_frame(stored.content))]
    older = {
        **stored.metadata,
        "format": "2",
        "sha256": hashlib.sha256(frames_only).hexdigest(),
    }
    await _rewrite(snapshots, run_id, frames_only, older)
    assert (await price_snapshot.read_snapshot(snapshots, run_id)).directory == {}
    grouped = PriceBook(table_store, snapshots=snapshots)
    await grouped.ensure_current()
    assert (with_directory.loaded_from, grouped.loaded_from) == ("blob", "blob")
    customers, skus = _keys(sim)
    assert await _answers(with_directory, customers, skus) == await _answers(
        grouped, customers, skus
    )
    assert with_directory.items == grouped.items


async def test_a_full_publish_keeps_the_current_and_previous_blob_only(
    erp: ErpClient, table_store: TableStore, snapshots: SnapshotBlobs
) -> None:
    runs = []
    for _ in range(3):
        await price_publisher.publish(erp, table_store, "full", snapshots=snapshots)
        runs.append(await _pointer_run(table_store))
    names = {n for n in await snapshots.store.names() if n.startswith(snapshots.prefix)}
    assert names == {snapshots.name(runs[1]), snapshots.name(runs[2])}
