"""Property: the product's quote equals the ERP simulator's own, independent calculation.

Prices are published from the simulator into Azurite and loaded into a price book, exactly as
in production; then random (customer, item, quantity, currency, unit, date) cases are priced by
both sides. Both must refuse the same cases for the same reason and agree to the cent on the
rest. Multi-line carts are compared with a sales quote the simulator prices as a document,
so rounding of every line amount and of the total is checked too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.erp_sim.testing import running_simulator
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.config import ErpConfig
from shared.adapters.tables import TableStore
from shared.domain.pricing import QuoteRejected, default_currency_table
from shared.services.pricing import publisher as price_publisher
from shared.services.pricing.book import PriceBook
from shared.services.pricing.quotes import QuoteLineIn, QuoteRequest, price_from_book

COMPANY = UUID("7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20")
TODAY = datetime.now(UTC).date()
# Two, zero and three decimals: the precisions come from the ERP's currency data on both
# sides (published by the product, served by the simulator), never from code.
SOLD = frozenset({"USD", "EUR", "JPY", "KWD"})


@dataclass
class World:
    sim_url: str
    book: PriceBook
    customers: list[str]
    items: list[str]


@pytest.fixture(scope="module")
def world(azurite_connection: str) -> Iterator[World]:
    with running_simulator(seed=23, items=120, customers=25) as sim_url:

        async def publish() -> PriceBook:
            tables = TableStore.from_connection_string(azurite_connection, prefix="agree")
            config = ErpConfig(
                base_url=sim_url, tenant="local", environment="sandbox", company_id=COMPANY
            )
            try:
                async with ErpClient(config) as erp:
                    await price_publisher.publish(erp, tables, "full")
                book = PriceBook(tables)
                await book.ensure_current()
                return book
            finally:
                await tables.close()

        book = asyncio.run(publish())
        # Blocked items: the ERP prices them but refuses to sell them; the product refuses to
        # quote them (covered by the quote tests), so only sellable items are compared.
        sellable = sorted(number for number, item in book.items.items() if not item.blocked)
        yield World(sim_url, book, sorted(book.customers), sellable)


# The simulator's refusal messages (Business Central's wording) and the product's rule names.
_REFUSALS = {
    "unit of measure": "unit-of-measure-not-sold",
    "item": "unknown-item",
    "currency": "unsupported-currency",
    "customer": "unknown-customer",
}


def _refusal_of(message: str) -> str:
    lowered = message.lower()
    return next(rule for words, rule in _REFUSALS.items() if words in lowered)


def _ours(world: World, case: dict[str, object]) -> tuple[str, ...] | frozenset[str]:
    request = QuoteRequest(
        customer_id=str(case["customer"]),
        currency=case["currency"],  # type: ignore[arg-type]
        order_date=case["date"],  # type: ignore[arg-type]
        lines=[
            QuoteLineIn(
                sku=str(case["item"]),
                quantity=Decimal(str(case["quantity"])),
                unit_of_measure=case["unit"],  # type: ignore[arg-type]
            )
        ],
    )
    try:
        answer = price_from_book(world.book, request, default_currency_table(), SOLD)
    except QuoteRejected as refused:
        return frozenset(str(violation.rule) for violation in refused.violations)
    line = answer["lines"][0]
    return (line["unitPrice"], line["lineDiscountPercent"], line["lineAmount"])


def _theirs(world: World, case: dict[str, object]) -> tuple[str, ...] | frozenset[str]:
    params = {
        "customerNumber": case["customer"],
        "itemNumber": case["item"],
        "quantity": case["quantity"],
        "date": case["date"].isoformat(),  # type: ignore[attr-defined]
    }
    if case["currency"]:
        params["currencyCode"] = case["currency"]
    if case["unit"]:
        params["unitOfMeasureCode"] = case["unit"]
    response = httpx.get(f"{world.sim_url}/_sim/price", params=params, timeout=10)
    if response.status_code == 400:
        return frozenset({_refusal_of(response.json()["error"]["message"])})
    response.raise_for_status()
    body = response.json()
    return (body["unitPrice"], body["lineDiscountPercent"], body["lineAmount"])


@st.composite
def cases(draw: st.DrawFn, world: World) -> dict[str, object]:
    return {
        "customer": draw(st.sampled_from(world.customers)),
        "item": draw(st.sampled_from(world.items)),
        "quantity": draw(st.integers(min_value=1, max_value=250)),
        "currency": draw(st.sampled_from([None, *sorted(SOLD)])),
        "unit": draw(st.sampled_from([None, "PCS", "BOX"])),
        "date": TODAY + timedelta(days=draw(st.integers(min_value=-400, max_value=400))),
    }


def test_quotes_agree_with_the_erp_to_the_cent(world: World) -> None:
    checked = {"priced": 0, "refused": 0}

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(case=cases(world))
    def agree(case: dict[str, object]) -> None:
        ours, theirs = _ours(world, case), _theirs(world, case)
        if isinstance(ours, frozenset) or isinstance(theirs, frozenset):
            # Both refuse, and for the same reason.
            assert ours == theirs, (case, ours, theirs)
            checked["refused"] += 1
            return
        assert tuple(Decimal(v) for v in ours) == tuple(Decimal(v) for v in theirs), case
        checked["priced"] += 1

    agree()
    # The comparison means something only if most cases were actually priced.
    assert checked["priced"] > checked["refused"]


@st.composite
def carts(draw: st.DrawFn, world: World) -> dict[str, object]:
    lines = draw(
        st.lists(
            st.tuples(st.sampled_from(world.items), st.integers(min_value=1, max_value=250)),
            min_size=2,
            max_size=6,
        )
    )
    return {
        "customer": draw(st.sampled_from(world.customers)),
        "currency": draw(st.sampled_from([None, *sorted(SOLD)])),
        "date": TODAY + timedelta(days=draw(st.integers(min_value=-60, max_value=60))),
        "lines": lines,
    }


def _erp_quote(world: World, cart: dict[str, object]) -> dict[str, object] | None:
    """The simulator prices the cart as a Business Central sales quote (a document)."""
    body: dict[str, object] = {
        "customerNumber": cart["customer"],
        "documentDate": cart["date"].isoformat(),  # type: ignore[attr-defined]
        "salesQuoteLines": [
            {"lineType": "Item", "lineObjectNumber": sku, "quantity": quantity}
            for sku, quantity in cart["lines"]  # type: ignore[attr-defined]
        ],
    }
    if cart["currency"]:
        body["currencyCode"] = cart["currency"]
    url = f"{world.sim_url}/v2.0/local/sandbox/api/v2.0/companies({COMPANY})/salesQuotes"
    response = httpx.post(url, params={"$expand": "salesQuoteLines"}, json=body, timeout=10)
    if response.status_code == 400:
        return None  # e.g. a customer blocked for everything: no document at all
    response.raise_for_status()
    return dict(response.json())


def test_multi_line_carts_agree_with_an_erp_sales_quote(world: World) -> None:
    checked = {"priced": 0}

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(cart=carts(world))
    def agree(cart: dict[str, object]) -> None:
        erp = _erp_quote(world, cart)
        if erp is None:
            return
        request = QuoteRequest(
            customer_id=str(cart["customer"]),
            currency=cart["currency"],  # type: ignore[arg-type]
            order_date=cart["date"],  # type: ignore[arg-type]
            lines=[
                QuoteLineIn(sku=sku, quantity=Decimal(quantity))
                for sku, quantity in cart["lines"]  # type: ignore[attr-defined]
            ],
        )
        ours = price_from_book(world.book, request, default_currency_table(), SOLD)
        theirs = sorted(erp["salesQuoteLines"], key=lambda line: line["sequence"])  # type: ignore[arg-type, index]
        for mine, erp_line in zip(ours["lines"], theirs, strict=True):
            assert Decimal(mine["unitPrice"]) == Decimal(str(erp_line["unitPrice"])), cart
            assert Decimal(mine["lineDiscountPercent"]) == Decimal(
                str(erp_line["discountPercent"])
            ), cart
            assert Decimal(mine["lineAmount"]) == Decimal(str(erp_line["amountExcludingTax"])), cart
        assert Decimal(ours["totalAmount"]) == Decimal(str(erp["totalAmountExcludingTax"])), cart
        checked["priced"] += 1

    agree()
    assert checked["priced"] >= 30


def test_the_demo_data_exercises_every_kind_of_line(world: World) -> None:
    sources = {line.source_type for line in world.book.index}
    assert {str(s) for s in sources} >= {
        "Customer",
        "Customer Price Group",
        "All Customers",
        "Campaign",
    }
    assert any(line.minimum_quantity > 1 for line in world.book.index)
    assert any(line.ending_date and line.ending_date < TODAY for line in world.book.index)
    assert any(line.starting_date and line.starting_date > TODAY for line in world.book.index)
    assert world.book.lcy_per_unit("EUR", TODAY) == Decimal("1.08")
    # Campaign lines apply only to their targets: some customers are in a campaign, some not,
    # so agreement covers both sides of Business Central's rule.
    targeted = {c for c, ctx in world.book.customers.items() if ctx.active_campaigns}
    assert targeted and targeted != set(world.book.customers)
    table = world.book.currency_table(default_currency_table())
    assert table.precision("JPY").amount_precision == Decimal(1)
    assert table.precision("KWD").amount_precision == Decimal("0.001")
    assert table.precision("").amount_precision == Decimal("0.01")
    assert isinstance(TODAY, date)
