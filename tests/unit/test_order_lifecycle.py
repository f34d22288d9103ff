"""The order lifecycle fold: status, quantities per line, fingerprints (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from shared.domain.orders.lifecycle import (
    BookedLine,
    CreditMemoFact,
    DocumentLine,
    ErpLine,
    ErpSnapshot,
    InvoiceFact,
    LifecycleStatus,
    ShipmentFact,
    fold,
    from_record,
    is_stale,
)

D = Decimal
BOOKED = [BookedLine("A", "PCS", D(5)), BookedLine("B", "BOX", D(2))]


def _shipment(number: str, *lines: tuple[str, str, int]) -> ShipmentFact:
    return ShipmentFact(
        number,
        date(2026, 12, 1),
        "DHL",
        f"TRK-{number}",
        tuple(DocumentLine(s, u, D(q)) for s, u, q in lines),
    )


def _invoice(number: str, amount: str, *lines: tuple[str, str, int]) -> InvoiceFact:
    return InvoiceFact(
        number,
        date(2026, 12, 2),
        D(amount),
        date(2027, 1, 1),
        D(amount),
        "Open",
        "USD",
        tuple(DocumentLine(s, u, D(q)) for s, u, q in lines),
    )


def _snapshot(status: str | None, lines: list[tuple[str, str, int, int, int]], **docs: object):
    return ErpSnapshot(
        status,
        tuple(ErpLine(s, u, D(q), D(sh), D(inv)) for s, u, q, sh, inv in lines),
        tuple(docs.get("shipments", ())),  # type: ignore[arg-type]
        tuple(docs.get("invoices", ())),  # type: ignore[arg-type]
    )


def test_as_booked_draft_is_booked_and_released_is_released() -> None:
    lines = [("A", "PCS", 5, 0, 0), ("B", "BOX", 2, 0, 0)]
    assert fold(BOOKED, _snapshot("Draft", lines)).status is LifecycleStatus.BOOKED
    assert fold(BOOKED, _snapshot("In Review", lines)).status is LifecycleStatus.BOOKED
    released = fold(BOOKED, _snapshot("Open", lines))
    assert released.status is LifecycleStatus.RELEASED
    assert released.erp_status == "Open"


def test_two_partial_shipments_then_invoice() -> None:
    first = _shipment("S1", ("A", "PCS", 2))
    second = _shipment("S2", ("A", "PCS", 3), ("B", "BOX", 2))
    partly = fold(BOOKED, _snapshot("Open", [("A", "PCS", 5, 2, 0), ("B", "BOX", 2, 0, 0)],
                                    shipments=[first]))  # fmt: skip
    assert partly.status is LifecycleStatus.PARTIALLY_SHIPPED
    assert [(line.sku, line.shipped, line.backordered) for line in partly.lines] == [
        ("A", D(2), D(3)),
        ("B", D(0), D(2)),
    ]
    shipped = fold(BOOKED, _snapshot("Open", [("A", "PCS", 5, 5, 0), ("B", "BOX", 2, 2, 0)],
                                     shipments=[second, first]))  # fmt: skip
    assert shipped.status is LifecycleStatus.SHIPPED
    assert [s.number for s in shipped.shipments] == ["S1", "S2"]  # sorted, order-independent
    # BC deletes the order once fully invoiced: the posted documents carry the story.
    invoiced = fold(
        BOOKED,
        _snapshot(
            None,
            [],
            shipments=[first, second],
            invoices=[_invoice("I1", "99.50", ("A", "PCS", 5), ("B", "BOX", 2))],
        ),
    )
    assert invoiced.status is LifecycleStatus.INVOICED
    assert invoiced.status.finished
    assert [(line.ordered, line.shipped, line.invoiced) for line in invoiced.lines] == [
        (D(5), D(5), D(5)),
        (D(2), D(2), D(2)),
    ]


def test_line_deleted_or_reduced_in_the_erp_is_cancelled_quantity() -> None:
    reduced = fold(BOOKED, _snapshot("Draft", [("A", "PCS", 3, 0, 0)]))
    by_sku = {line.sku: line for line in reduced.lines}
    assert by_sku["A"].ordered == 3 and by_sku["A"].cancelled == 2
    assert by_sku["B"].ordered == 0 and by_sku["B"].cancelled == 2
    assert reduced.outstanding() == {"A": D(3), "B": D(0)}
    assert reduced.status is LifecycleStatus.BOOKED


def test_order_deleted_before_shipping_is_cancelled() -> None:
    gone = fold(BOOKED, _snapshot(None, []))
    assert gone.status is LifecycleStatus.CANCELLED
    assert all(line.cancelled == line.ordered + line.cancelled for line in gone.lines)
    assert gone.outstanding() == {"A": D(0), "B": D(0)}


def test_a_line_split_over_locations_is_one_item() -> None:
    lines = [("A", "PCS", 3, 0, 0), ("A", "PCS", 2, 2, 0), ("B", "BOX", 2, 0, 0)]
    life = fold(BOOKED, _snapshot("Open", lines, shipments=[_shipment("S1", ("A", "PCS", 2))]))
    a = next(line for line in life.lines if line.sku == "A")
    assert (a.ordered, a.shipped, a.cancelled) == (D(5), D(2), D(0))


def test_fingerprint_changes_with_any_visible_fact_and_survives_the_record() -> None:
    lines = [("A", "PCS", 5, 0, 0), ("B", "BOX", 2, 0, 0)]
    base = fold(BOOKED, _snapshot("Draft", lines))
    assert base.fingerprint == fold(BOOKED, _snapshot("Draft", lines)).fingerprint
    assert base.fingerprint != fold(BOOKED, _snapshot("Open", lines)).fingerprint
    with_tracking = fold(
        BOOKED, _snapshot("Open", lines, shipments=[_shipment("S1", ("A", "PCS", 1))])
    )
    other_tracking = fold(
        BOOKED,
        _snapshot(
            "Open",
            lines,
            shipments=[
                ShipmentFact(
                    "S1", date(2026, 12, 1), "DHL", "OTHER", (DocumentLine("A", "PCS", D(1)),)
                )
            ],
        ),
    )
    assert with_tracking.fingerprint != other_tracking.fingerprint
    restored = from_record(with_tracking.record())
    assert restored == with_tracking
    assert restored.fingerprint == with_tracking.fingerprint


def test_a_read_older_than_the_recorded_one_is_stale() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert is_stale(now - timedelta(seconds=1), now)
    assert is_stale(now, now)
    assert not is_stale(now + timedelta(milliseconds=1), now)
    assert not is_stale(now, None)


def test_a_credit_memo_is_credited_quantity_and_changes_the_fingerprint() -> None:
    invoiced = _snapshot(
        None,
        [],
        shipments=[_shipment("S1", ("A", "PCS", 5), ("B", "BOX", 2))],
        invoices=[_invoice("I1", "99.50", ("A", "PCS", 5), ("B", "BOX", 2))],
    )
    before = fold(BOOKED, invoiced)
    memo = CreditMemoFact(
        "C1", date(2026, 12, 5), D("10.00"), "I1", (DocumentLine("A", "PCS", D(1)),)
    )
    after = fold(
        BOOKED,
        ErpSnapshot(
            invoiced.order_status, invoiced.lines, invoiced.shipments, invoiced.invoices, (memo,)
        ),
    )
    assert after.status is LifecycleStatus.INVOICED
    assert {line.sku: line.credited for line in after.lines} == {"A": D(1), "B": D(0)}
    assert after.fingerprint != before.fingerprint
    assert from_record(after.record()) == after
