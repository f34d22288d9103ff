"""The simulator's building blocks without HTTP: filters, paging, limits, data, rounding."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import pytest

from devtools.erp_sim.datagen import ODD_ITEM_NUMBERS, generate
from devtools.erp_sim.limits import Limiter, LimitSettings
from devtools.erp_sim.odata_filter import FilterError, compile_filter
from devtools.erp_sim.paging import decode_skiptoken, encode_skiptoken, select_page
from devtools.erp_sim.pricing import PriceRequest, calculate, line_amount, round_to
from devtools.erp_sim.reference import CURRENCIES
from devtools.erp_sim.schema import SPECS
from devtools.erp_sim.stamps import Stamper, etag_for_version

ITEMS = SPECS["items"]


def _row(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "x",
        "number": "A",
        "blocked": False,
        "unitPrice": 10,
        "lastModifiedDateTime": "2026-01-01T00:00:00.500Z",
    }
    return {**base, **fields}


# ---- $filter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ("lastModifiedDateTime gt 2026-01-01T00:00:00Z", True),
        ("lastModifiedDateTime gt 2026-01-01T00:00:00.5Z", False),
        ("lastModifiedDateTime ge 2026-01-01T00:00:00.5Z", True),
        # Finer than a millisecond: .5004 lies after the stored .500, .4996 before it.
        ("lastModifiedDateTime ge 2026-01-01T00:00:00.5004Z", False),
        ("lastModifiedDateTime gt 2026-01-01T00:00:00.4996Z", True),
        ("lastModifiedDateTime lt 2026-01-01T00:00:00.5004Z", True),
        ("lastModifiedDateTime le 2026-01-01T00:00:00.4996Z", False),
        ("lastModifiedDateTime eq 2026-01-01T00:00:00.5004Z", False),
        ("lastModifiedDateTime gt 2026-01-01T01:00:00+02:00", True),  # 23:00 the day before
        ("lastModifiedDateTime gt 2026-01-01T00:00:00.5000001Z", False),
        ("number eq 'A' and blocked eq false", True),
        ("number eq 'A' and blocked eq true", False),
        ("number eq 'B' or unitPrice ge 10", True),
        ("not (number eq 'A')", False),
        ("(number eq 'B' or number eq 'A') and unitPrice lt 10.5", True),
        ("number in ('B', 'A')", True),
        ("number in ('B', 'C')", False),
        ("startswith(number, 'A')", True),
        ("contains(number, 'Z')", False),
        ("unitPrice eq 10.0", True),
        ("unitPrice ne 10", False),
    ],
)
def test_filter_semantics(expression: str, matches: bool) -> None:
    assert compile_filter(expression, ITEMS).predicate(_row()) is matches


def test_filter_string_literals_unescape_quotes() -> None:
    predicate = compile_filter("number eq 'O''NEIL-1'", ITEMS).predicate
    assert predicate(_row(number="O'NEIL-1"))
    assert not predicate(_row(number="O''NEIL-1"))


def test_filter_reports_index_lookups_for_equality_chains() -> None:
    compiled = compile_filter("unitPrice gt 1 and number eq 'A/1#2'", ITEMS)
    assert (compiled.index_field, compiled.index_values) == ("number", ("A/1#2",))
    assert compile_filter("number in ('A','B')", ITEMS).index_values == ("A", "B")
    assert compile_filter("number eq 'A' or unitPrice gt 1", ITEMS).index_field is None


@pytest.mark.parametrize(
    "expression",
    ["", "number", "number eq", "number eq 'a' and", "nope eq 1", "number eq 1",
     "number has 'x'", "number eq 'a')", "((number eq 'a')", "blocked lt false",
     "length(number) eq 1", "number eq @x"],
)  # fmt: skip
def test_bad_filters_raise_filter_error(expression: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(expression, ITEMS)


# ---- paging -------------------------------------------------------------------------------


def test_skiptoken_round_trip_and_rejects_garbage() -> None:
    assert decode_skiptoken(encode_skiptoken("7d3c-ÄÖ")) == "7d3c-ÄÖ"
    from devtools.erp_sim.paging import SkipTokenError

    for bad in ("!!!", "e30", encode_skiptoken("x")[:-3]):
        with pytest.raises(SkipTokenError):
            decode_skiptoken(bad)


def test_paging_by_key_survives_inserts_and_deletes_between_pages() -> None:
    keys = [f"k{n:03d}" for n in range(0, 100, 2)]
    rows = {key: {"id": key, "even": True} for key in keys}
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = select_page(keys, rows, after=after, skip=0, limit=7, predicate=None)
        seen.extend(row["id"] for row in page.rows)
        pages += 1
        if pages == 2:
            # A row behind the cursor disappears and one appears behind it: nothing shifts.
            keys.remove("k000")
            del rows["k000"]
            keys.insert(0, "k001")
            rows["k001"] = {"id": "k001", "even": False}
        if not page.has_more:
            break
        after = page.last_key
    assert len(seen) == len(set(seen)) == 50
    filtered = select_page(keys, rows, after=None, skip=2, limit=3, predicate=lambda r: r["even"])
    assert [row["id"] for row in filtered.rows] == ["k006", "k008", "k010"] and filtered.has_more
    last = select_page(keys, rows, after="k094", skip=0, limit=2, predicate=lambda r: r["even"])
    assert [row["id"] for row in last.rows] == ["k096", "k098"] and not last.has_more


# ---- limits -------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_sliding_window_says_when_the_next_slot_frees() -> None:
    clock = _Clock()
    limiter = Limiter(
        LimitSettings(max_concurrent=10, requests_per_window=3, window_seconds=60), clock
    )
    for offset in (0.0, 10.0, 20.0):
        clock.now = 1000.0 + offset
        assert await limiter.acquire("p") is None
        limiter.release("p")
    clock.now = 1030.0
    refusal = await limiter.acquire("p")
    assert refusal is not None and refusal.retry_after == 30  # the first request leaves at 1060
    assert await limiter.acquire("q") is None  # another principal has its own window
    clock.now = 1060.0
    assert await limiter.acquire("p") is None


async def test_slots_pass_to_the_queue_in_order_and_the_queue_is_bounded() -> None:
    limiter = Limiter(
        LimitSettings(max_concurrent=1, requests_per_window=100, window_seconds=60, queue_size=2)
    )
    assert await limiter.acquire("p") is None
    first = asyncio.create_task(limiter.acquire("p"))
    second = asyncio.create_task(limiter.acquire("p"))
    await asyncio.sleep(0)
    assert limiter.queued("p") == 2
    refusal = await limiter.acquire("p")  # the queue is full: refused at once
    assert refusal is not None and refusal.status == 429 and refusal.retry_after >= 1
    limiter.release("p")
    assert await first is None and not second.done()  # first in, first served
    limiter.release("p")
    assert await second is None
    limiter.release("p")
    assert limiter.queued("p") == 0


# ---- rounding and ETags -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "precision", "expected"),
    [("2.345", "0.01", "2.35"), ("2.344999", "0.01", "2.34"),
     ("1049.38195", "0.01", "1049.38"), ("14925.373134", "0.01", "14925.37"),
     ("44776.11", "1", "44776"), ("0.000005", "0.00001", "0.00001")],
)  # fmt: skip
def test_rounding_is_half_up(value: str, precision: str, expected: str) -> None:
    assert round_to(Decimal(value), Decimal(precision)) == Decimal(expected)


def test_line_amount_applies_discount_before_rounding() -> None:
    usd = CURRENCIES["USD"]
    assert line_amount(Decimal(3), Decimal("0.33335"), Decimal(0), usd) == Decimal("1.00")
    assert line_amount(Decimal(7), Decimal("19.99"), Decimal("12.5"), usd) == Decimal("122.44")


def test_etags_are_opaque_and_change_on_every_touch() -> None:
    stamper = Stamper()
    row: dict[str, object] = {"@odata.etag": "", "lastModifiedDateTime": ""}
    stamper.touch(row)
    first = row["@odata.etag"]
    stamper.touch(row)
    assert row["@odata.etag"] != first
    assert etag_for_version(1).startswith('W/"') and etag_for_version(1) != etag_for_version(2)


# ---- generated data -----------------------------------------------------------------------


def test_generation_is_deterministic_and_shaped_for_the_product() -> None:
    anchor = date(2026, 3, 1)
    first = generate(seed=11, items=400, customers=40, anchor=anchor, stamper=Stamper())
    again = generate(seed=11, items=400, customers=40, anchor=anchor, stamper=Stamper())
    other = generate(seed=12, items=400, customers=40, anchor=anchor, stamper=Stamper())
    for name in (
        "items",
        "customers",
        "priceListLines",
        "itemAvailabilityByLocation",
        "itemContent",
    ):
        assert first[name].rows == again[name].rows, name
    assert first["priceListLines"].rows != other["priceListLines"].rows
    assert first.fixtures.odd_item_numbers == list(ODD_ITEM_NUMBERS)
    assert all(first.item(number) is not None for number in ODD_ITEM_NUMBERS)
    assert 3.5 <= len(first["priceListLines"]) / 400 <= 4.5
    assert first["items"].order == sorted(first["items"].rows)
    for item in first["items"].rows.values():
        stock = sum(row["inventory"] for row in first.availability(item["number"]))
        assert item["inventory"] == stock


def test_generated_prices_use_the_documented_rules_for_fixture_customers() -> None:
    dataset = generate(seed=11, items=200, customers=20, anchor=date(2026, 3, 1), stamper=Stamper())
    plain = dataset.fixtures.customers["plain"]
    on = date(2026, 3, 1)
    for number in list(dataset.item_units)[:50]:
        item = dataset.item(number)
        assert item is not None
        result = calculate(dataset, PriceRequest(plain, number, Decimal(1), None, None, on))
        lines = [
            line
            for line in dataset.price_lines(number)
            if line["amountType"] != "Discount"
            and line["minimumQuantity"] <= 1
            and line["currencyCode"] == ""
            and line["unitOfMeasureCode"] in ("", item["baseUnitOfMeasureCode"])
            and line["sourceType"]
            in ("All Customers", "Campaign", "Customer", "Customer Price Group")
            and (line["sourceType"] != "Customer" or line["sourceNo"] == plain)
            and (line["sourceType"] != "Customer Price Group" or line["sourceNo"] == "WHOLESALE")
            and (line["startingDate"] == "0001-01-01" or line["startingDate"] <= on.isoformat())
            and (line["endingDate"] == "0001-01-01" or line["endingDate"] >= on.isoformat())
        ]
        cheapest = min((Decimal(repr(line["unitPrice"])) for line in lines), default=None)
        expected = cheapest if cheapest is not None else Decimal(repr(item["unitPrice"]))
        assert result.unit_price == expected, number


def test_delta_reads_past_the_loaded_data_only_consider_written_rows() -> None:
    dataset = generate(seed=3, items=50, customers=5, anchor=date(2026, 3, 1), stamper=Stamper())
    items = dataset["items"]
    newest = items.loaded_max_modified
    assert newest == max(row["lastModifiedDateTime"] for row in items.rows.values())
    assert items.changed_since(newest, inclusive=False) == []
    assert items.changed_since(newest, inclusive=True) is None  # the newest loaded row matches
    assert items.changed_since("2000-01-01T00:00:00.000Z", inclusive=False) is None
    row = next(iter(items.rows.values()))
    dataset.touch("items", row)
    assert items.changed_since(newest, inclusive=False) == [row["id"]]
    compiled = compile_filter(f"lastModifiedDateTime gt {newest[:-1]}Z and blocked eq false", ITEMS)
    assert compiled.modified_bound == (newest, False)
    items.delete(row["id"])
    assert items.changed_since(newest, inclusive=False) == []
