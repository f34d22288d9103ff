"""Layer 3, logic consistency: the product's quote against the ERP's own price calculation.

A deterministic sample of (customer, item, quantity) triples is quoted from the product's
price book (the code storefronts get their prices from) and priced by Business Central through
a sales quote, which is deleted right after it was read, also when reading it failed. A quote
whose creation had an unknown outcome is looked up by its external document number and
deleted too, so an audit never leaves documents behind. Every disagreement is listed with
both prices and the price list line the product's quote was based on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.errors import ErpAmbiguousResult, ErpError, ErpRejected
from shared.adapters.erp.models import (
    Customer,
    SalesOrderLine,
    SalesQuote,
    SalesQuoteCreate,
    SalesQuoteLineCreate,
)
from shared.adapters.erp.odata import eq_filter
from shared.domain.pricing import CampaignPolicy, CurrencyTable, QuoteRejected
from shared.services.operations.audit.models import LogicLayer, QuoteCheck, WinningLine
from shared.services.operations.audit.sampling import Triple, sample_triples
from shared.services.operations.audit.verdicts import logic_verdict
from shared.services.operations.impact import BookingSurprise
from shared.services.pricing.book import PriceBook
from shared.services.pricing.quotes import QuoteLineIn, QuoteRequest, price_from_book

Progress = Callable[[str], None]
_CONCURRENT_QUOTES = 3


class ErpPrice:
    """The ERP's figures for one quote line."""

    def __init__(self, line: SalesOrderLine) -> None:
        self.unit_price = line.unit_price
        self.discount_percent = line.discount_percent
        self.line_amount = line.amount_excluding_tax


class QuoteCounter:
    """Sales quotes created and deleted by this audit (they must end up equal)."""

    def __init__(self) -> None:
        self.created = 0
        self.deleted = 0


def quantity_breaks(book: PriceBook) -> dict[str, list[Decimal]]:
    """Minimum quantities above 1 per item, from the published price list lines."""
    found: dict[str, set[Decimal]] = {}
    for line in book.index:
        if str(line.asset_type) == "Item" and line.minimum_quantity > 1:
            found.setdefault(line.asset_no, set()).add(line.minimum_quantity)
    return {item: sorted(values) for item, values in found.items()}


async def _blocked_customers(erp: ErpClient) -> set[str]:
    """Customers the ERP refuses quotes for (blocked "All"); their quotes are not comparable."""
    rows = erp.iter_rows("customers", Customer, filter="blocked eq 'All'")
    return {customer.number async for customer in rows}


def _product_price(
    book: PriceBook,
    triple: Triple,
    currencies: CurrencyTable,
    sold: frozenset[str],
    policy: CampaignPolicy,
    on: date,
) -> dict[str, object] | None:
    request = QuoteRequest(
        customer_id=triple.customer,
        order_date=on,
        lines=[QuoteLineIn(sku=triple.item, quantity=triple.quantity)],
    )
    try:
        answer = price_from_book(book, request, currencies, sold, policy)
    except QuoteRejected:
        return None
    lines = answer["lines"]
    assert isinstance(lines, list)
    line = lines[0]
    assert isinstance(line, dict)
    return line


async def _delete(erp: ErpClient, quote_id: UUID, etag: str | None, counter: QuoteCounter) -> None:
    await erp.delete_sales_quote(quote_id, etag or "*")
    counter.deleted += 1


async def _erp_price(
    erp: ErpClient, triple: Triple, reference: str, on: date, counter: QuoteCounter
) -> ErpPrice | None:
    """Price one triple with a sales quote; None when the ERP refuses it."""
    payload = SalesQuoteCreate(
        customer_number=triple.customer,
        external_document_number=reference,
        document_date=on,
        sales_quote_lines=[
            SalesQuoteLineCreate(line_object_number=triple.item, quantity=triple.quantity)
        ],
    )
    try:
        quote = await erp.create_sales_quote(payload)
    except ErpRejected:
        return None
    except ErpAmbiguousResult:
        await _remove_by_reference(erp, reference, counter)
        raise
    counter.created += 1
    try:
        lines = [
            row
            async for row in erp.iter_rows(
                f"salesQuotes({quote.id})/salesQuoteLines", SalesOrderLine
            )
        ]
    finally:
        await _delete(erp, quote.id, quote.etag, counter)
    if not lines:
        raise ErpError(f"sales quote {quote.number} came back without lines")
    return ErpPrice(lines[0])


async def _remove_by_reference(erp: ErpClient, reference: str, counter: QuoteCounter) -> None:
    found = await erp.find_first(
        "salesQuotes", SalesQuote, eq_filter("externalDocumentNumber", reference.upper())
    )
    if found is not None:
        counter.created += 1
        await _delete(erp, found.id, found.etag, counter)


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def compare_prices(
    triple: Triple, ours: dict[str, object] | None, theirs: ErpPrice | None
) -> QuoteCheck:
    """One triple's check: agreement needs the same unit price, discount and line amount."""
    check = QuoteCheck(
        customer=triple.customer, item=triple.item, quantity=triple.quantity, agrees=False
    )
    if ours is None and theirs is None:
        return check.model_copy(update={"agrees": True, "problem": "refused by both"})
    updates: dict[str, object] = {}
    if ours is not None:
        source = ours.get("priceSource")
        assert isinstance(source, dict)
        updates.update(
            product_unit_price=_decimal(ours["unitPrice"]),
            product_discount_percent=_decimal(ours["lineDiscountPercent"]),
            product_line_amount=_decimal(ours["lineAmount"]),
            winning_line=WinningLine(
                type=str(source["type"]),
                price_list_code=str(source["priceListCode"]),
                minimum_quantity=str(source["minimumQuantity"]),
            ),
        )
    if theirs is not None:
        updates.update(
            erp_unit_price=theirs.unit_price,
            erp_discount_percent=theirs.discount_percent,
            erp_line_amount=theirs.line_amount,
        )
    check = check.model_copy(update=updates)
    if ours is None:
        return check.model_copy(update={"problem": "the product refuses what the ERP prices"})
    if theirs is None:
        return check.model_copy(update={"problem": "the ERP refuses what the product quotes"})
    agrees = (
        check.product_unit_price == check.erp_unit_price
        and check.product_discount_percent == check.erp_discount_percent
        and (check.erp_line_amount is None or check.product_line_amount == check.erp_line_amount)
    )
    return check.model_copy(update={"agrees": agrees})


async def run_logic_layer(
    erp: ErpClient,
    book: PriceBook,
    currencies: CurrencyTable,
    sold: frozenset[str],
    campaign_policy: CampaignPolicy,
    *,
    sample_size: int,
    seed: int,
    run_id: str,
    accuracy_objective: Decimal,
    list_limit: int,
    today: date,
    progress: Progress,
    booking_surprises: Sequence[BookingSurprise] = (),
    booking_surprises_since: datetime | None = None,
) -> LogicLayer:
    started = time.perf_counter()
    await book.ensure_current()
    blocked = await _blocked_customers(erp)
    customers = [c for c in book.customers if c not in blocked]
    items = [number for number, item in book.items.items() if not item.blocked]
    triples = sample_triples(customers, items, quantity_breaks(book), sample_size, seed)
    progress(f"logic: {len(triples)} triples sampled (seed {seed})")
    counter = QuoteCounter()
    gate = asyncio.Semaphore(_CONCURRENT_QUOTES)

    async def check(number: int, triple: Triple) -> QuoteCheck:
        ours = _product_price(book, triple, currencies, sold, campaign_policy, today)
        async with gate:
            try:
                theirs = await _erp_price(
                    erp, triple, f"AUDIT-{run_id[:12]}-{number:04d}", today, counter
                )
            except ErpError as error:
                return QuoteCheck(
                    customer=triple.customer,
                    item=triple.item,
                    quantity=triple.quantity,
                    agrees=False,
                    problem=f"ERP: {type(error).__name__}: {error}"[:300],
                )
        return compare_prices(triple, ours, theirs)

    checks = await asyncio.gather(*(check(n, t) for n, t in enumerate(triples, start=1)))
    errors = [c for c in checks if c.problem and c.problem.startswith("ERP: ")]
    compared = [c for c in checks if c not in errors]
    agreed = sum(1 for c in compared if c.agrees)
    mismatches = [c for c in compared if not c.agrees]
    accuracy = (
        (Decimal(agreed) / Decimal(len(compared))).quantize(Decimal("0.0001")) if compared else None
    )
    progress(f"logic: {agreed} of {len(compared)} triples agree; {len(errors)} errors")
    return LogicLayer(
        seed=seed,
        sample_size=len(triples),
        compared=len(compared),
        agreed=agreed,
        accuracy=accuracy,
        mismatches=mismatches[:list_limit],
        mismatch_total=len(mismatches),
        errors=errors[:list_limit],
        quotes_created=counter.created,
        quotes_deleted=counter.deleted,
        booking_surprises=list(booking_surprises),
        booking_surprises_since=booking_surprises_since,
        seconds=round(time.perf_counter() - started, 3),
        verdict=logic_verdict(len(compared), accuracy, len(errors), accuracy_objective),
    )
