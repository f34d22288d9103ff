"""Backorders (issue 19): the sync policy's ``insufficient-stock: backorder`` and the pure plan.

A short line of an item the policy names (by item category or item number) takes the stock
there is and backorders the rest; a short line of any other item is an insufficient-stock
violation, handled by the backorder's ``otherwise`` (reject or hold). The credit check covers
the whole order, backordered part included.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.stores.order_rows import (
    order_entity,
    order_from_entity,
    pack_json,
    unpack_json,
)
from shared.config.policy import PolicyError, load_policy
from shared.domain.credit import CreditFigures, CreditPolicy
from shared.domain.orders import (
    ApprovalAction,
    Backorder,
    BackorderPolicy,
    LineDemand,
    Order,
    OrderFacts,
    OrderRule,
    OrderStatus,
    PricingData,
    RequestedLine,
    accept,
    allocate,
    approval_needed,
    evaluate_order,
)
from shared.domain.orders.allocation import LineAllocation
from shared.domain.pricing import (
    CampaignPolicy,
    CustomerPricingContext,
    ItemPricingInfo,
    PriceIndex,
    default_currency_table,
)
from shared.services.orders.api import OrderAccepted, accepted_answer, order_view

D = Decimal
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ALL = lambda _location: True  # noqa: E731
ITEMS = {
    "CHAIR-1": ItemPricingInfo("CHAIR-1", "PCS", D("10.00"), category="CHAIR"),
    "LAMP-1": ItemPricingInfo("LAMP-1", "PCS", D("5.00"), category="LAMP"),
    "BOXED": ItemPricingInfo("BOXED", "PCS", D("1.00"), sales_units_of_measure={"BOX": D(12)}),
}
POLICY = BackorderPolicy(item_categories=frozenset({"CHAIR"}), items=frozenset({"BOXED"}))


def _backorderable(sku: str) -> bool:
    item = ITEMS.get(sku)
    return POLICY.allows(sku, item.category if item else "")


def _pricing() -> PricingData:
    return PricingData(
        index=PriceIndex([]),
        customer=CustomerPricingContext("C1"),
        items=ITEMS,
        currencies=default_currency_table("USD"),
        campaign_policy=CampaignPolicy.OPEN_TO_ALL,
        order_date=date(2026, 12, 3),
        lcy_per_unit=lambda _currency, _on: None,
    )


def _facts(
    stock: dict[str, dict[str, Decimal]], *, limit: str = "10000", partial: bool = False
) -> OrderFacts:
    return OrderFacts(
        channel_known=True,
        sold_currencies=frozenset({"USD"}),
        credit=CreditFigures("C1", D(limit), D(0), D(0), D(0), "", NOW),
        pending_credit=D(0),
        policy=CreditPolicy(),
        available=stock,
        sells_from=ALL,
        partial_stock=partial,
        backorderable=_backorderable,
    )


# ---- the policy ------------------------------------------------------------------------


def test_items_are_backorderable_by_number_or_by_category_never_by_a_blank_category() -> None:
    assert POLICY.allows("CHAIR-1", "CHAIR") and POLICY.allows("BOXED", "")
    assert not POLICY.allows("LAMP-1", "LAMP")
    assert not BackorderPolicy(item_categories=frozenset({""})).allows("X", "")


def test_the_shipped_policy_backorders_nothing() -> None:
    approvals = load_policy().orders.approvals
    assert not approvals.backorders
    assert approvals.backorder.otherwise == "reject"


def test_backorder_resolves_to_its_fallback_for_items_it_does_not_name() -> None:
    override = {
        "orders": {
            "approvals": {
                "rules": {"insufficient-stock": "backorder", "price-mismatch": "hold"},
                "backorder": {"itemCategories": ["CHAIR"], "otherwise": "hold"},
            }
        }
    }
    approvals = load_policy(json.dumps(override)).orders.approvals
    assert approvals.backorders and approvals.backorder.item_categories == {"CHAIR"}
    actions = approvals.actions()
    assert (actions["insufficient-stock"], actions["price-mismatch"]) == ("hold", "hold")
    assert actions["credit-over-limit"] == "reject"  # the shipped file's other rules stand


@pytest.mark.parametrize(
    ("approvals", "mentions"),
    [
        ({"rules": {"credit-over-limit": "backorder"}}, "insufficient-stock only"),
        ({"rules": {"insufficient-stock": "backorder"}}, "names no itemCategories or items"),
        (
            {
                "rules": {"insufficient-stock": "backorder"},
                "backorder": {"items": ["A"], "otherwise": "backorder"},
            },
            "otherwise",
        ),
        ({"backorder": {"items": ["has space"]}}, "items"),
    ],
)
def test_a_malformed_backorder_policy_is_refused_naming_why(
    approvals: dict[str, object], mentions: str
) -> None:
    with pytest.raises(PolicyError, match=mentions):
        load_policy(json.dumps({"orders": {"approvals": approvals}}))


# ---- the plan (allocation) -------------------------------------------------------------


def test_a_short_backorderable_line_holds_what_there_is_and_backorders_the_rest() -> None:
    result = allocate(
        [LineDemand(0, "CHAIR-1", D(10), D(1))],
        {"CHAIR-1": {"MAIN": D(3), "EAST": D(1)}},
        ALL,
        backorderable=_backorderable,
    )
    assert result.shortages == ()
    assert result.backorders == (Backorder(0, "CHAIR-1", D(4), D(6)),)
    assert result.allocations[0] == (LineAllocation("MAIN", D(3)), LineAllocation("EAST", D(1)))


def test_with_no_stock_at_all_the_whole_line_is_backordered_and_nothing_held() -> None:
    result = allocate([LineDemand(0, "CHAIR-1", D(5), D(1))], {}, ALL, backorderable=_backorderable)
    assert result.backorders == (Backorder(0, "CHAIR-1", D(0), D(5)),)
    assert result.allocations[0] == () and result.shortages == ()


def test_a_short_line_of_another_item_stays_a_shortage_holding_nothing() -> None:
    result = allocate(
        [LineDemand(0, "LAMP-1", D(5), D(1))],
        {"LAMP-1": {"MAIN": D(2)}},
        ALL,
        backorderable=_backorderable,
    )
    assert [(s.sku, s.requested, s.available) for s in result.shortages] == [("LAMP-1", D(5), D(2))]
    assert result.backorders == () and 0 not in result.allocations


def test_a_backordered_box_line_holds_whole_boxes_only() -> None:
    result = allocate(
        [LineDemand(0, "BOXED", D(3), D(12))],
        {"BOXED": {"MAIN": D(30)}},
        ALL,
        backorderable=_backorderable,
    )
    # 30 pieces are two whole boxes: 2 held, 1 backordered; 6 pieces stay for others.
    assert result.backorders == (Backorder(0, "BOXED", D(2), D(1)),)
    assert result.allocations[0] == (LineAllocation("MAIN", D(2)),)


@given(
    st.lists(st.integers(1, 30), min_size=1, max_size=6),
    st.dictionaries(st.sampled_from(["MAIN", "EAST", "WEST"]), st.integers(-5, 40)),
)
def test_backorders_never_hold_more_than_there_is_and_account_for_every_unit(
    quantities: list[int], stock: dict[str, int]
) -> None:
    demands = [LineDemand(i, "CHAIR-1", D(q), D(1)) for i, q in enumerate(quantities)]
    result = allocate(
        demands, {"CHAIR-1": {k: D(v) for k, v in stock.items()}}, ALL, backorderable=_backorderable
    )
    assert result.shortages == ()
    backordered = {b.line: b.backordered for b in result.backorders}
    used: dict[str, Decimal] = {}
    for line, quantity in enumerate(quantities):
        held = sum((p.quantity for p in result.allocations[line]), D(0))
        assert held + backordered.get(line, D(0)) == quantity
        for part in result.allocations[line]:
            used[part.location] = used.get(part.location, D(0)) + part.quantity
    for location, quantity in used.items():
        assert quantity <= max(stock[location], 0)
    assert sum(used.values(), D(0)) == min(sum(max(v, 0) for v in stock.values()), sum(quantities))


# ---- the evaluation --------------------------------------------------------------------


def test_a_backordered_order_is_acceptable_and_priced_and_credit_checked_in_full() -> None:
    result = evaluate_order(
        [RequestedLine("CHAIR-1", D(10))], None, _pricing(), _facts({"CHAIR-1": {"MAIN": D(4)}})
    )
    assert result.acceptable, result.violations
    line = result.lines[0]
    assert (line.quantity, line.reserved, line.backordered) == (D(10), D(4), D(6))
    # The backordered part is invoiced too: the order's amount and its credit are all 10.
    assert result.total_amount == D("100.00") and result.credit_amount == D("100.00")
    over = evaluate_order(
        [RequestedLine("CHAIR-1", D(10))],
        None,
        _pricing(),
        _facts({"CHAIR-1": {"MAIN": D(4)}}, limit="60"),
    )
    assert [v.rule for v in over.violations] == [OrderRule.CREDIT_OVER_LIMIT]


def test_a_mixed_order_follows_the_rule_for_its_line_that_may_not_be_backordered() -> None:
    requested = [RequestedLine("CHAIR-1", D(10)), RequestedLine("LAMP-1", D(5))]
    stock = {"CHAIR-1": {"MAIN": D(4)}, "LAMP-1": {"MAIN": D(2)}}
    result = evaluate_order(requested, None, _pricing(), _facts(stock))
    assert [(v.rule, v.sku, v.line) for v in result.violations] == [
        (OrderRule.INSUFFICIENT_STOCK, "LAMP-1", 1)
    ]
    # otherwise = reject: the order is refused; otherwise = hold: it waits for a person.
    assert not approval_needed(result.violations, {"insufficient-stock": ApprovalAction.REJECT})
    assert approval_needed(result.violations, {"insufficient-stock": ApprovalAction.HOLD})
    held = evaluate_order(requested, None, _pricing(), _facts(stock, partial=True))
    assert [(li.sku, li.reserved, li.backordered) for li in held.lines] == [
        ("CHAIR-1", D(4), D(6)),
        ("LAMP-1", D(2), D(0)),
    ]


def test_without_the_policy_a_short_line_is_refused_as_before() -> None:
    plain = replace(_facts({"CHAIR-1": {"MAIN": D(4)}}), backorderable=lambda _: False)
    result = evaluate_order([RequestedLine("CHAIR-1", D(10))], None, _pricing(), plain)
    assert [v.rule for v in result.violations] == [OrderRule.INSUFFICIENT_STOCK]
    assert result.lines[0].backordered == D(0) and result.lines[0].allocations == ()


# ---- the order, its answers and its row ------------------------------------------------


def _accepted_backorder() -> Order:
    evaluation = evaluate_order(
        [RequestedLine("CHAIR-1", D(10)), RequestedLine("LAMP-1", D(1))],
        None,
        _pricing(),
        _facts({"CHAIR-1": {"MAIN": D(4)}, "LAMP-1": {"MAIN": D(9)}}),
    )
    pending = Order(
        order_id="ORD-01JE0000000000000000000000",
        status=OrderStatus.PENDING,
        customer_no="C1",
        channel="web",
        currency="USD",
        external_order_id="shop-1",
        created_at=NOW,
        updated_at=NOW,
        lines=evaluation.lines,
        total_amount=evaluation.total_amount,
        credit_amount=evaluation.credit_amount or D(0),
    )
    return accept(pending, NOW)


def test_the_answer_and_the_view_state_per_line_what_is_reserved_and_backordered() -> None:
    order = _accepted_backorder()
    body = accepted_answer(order, credit_stale=False)
    OrderAccepted.model_validate(body)  # the documented contract
    assert [
        (li["sku"], li["quantity"], li["reserved"], li["backordered"]) for li in body["lines"]
    ] == [
        ("CHAIR-1", 10, 4, 6),
        ("LAMP-1", 1, 1, 0),
    ]
    assert body["status"] == "accepted" and body["totalAmount"] == "105.00"
    view = order_view(order)
    assert [(li["reserved"], li["backordered"]) for li in view["lines"]] == [(4, 6), (1, 0)]
    assert view["history"][-1] == {
        "at": NOW.isoformat(),
        "event": "accepted",
        "detail": "backordered: CHAIR-1 6",
        "correlationId": None,
    }
    assert order.stock_holds[0].quantity == D(4)  # only the part there is, is held


def test_the_backordered_quantity_survives_the_order_row_and_rows_without_it_read_zero() -> None:
    order = _accepted_backorder()
    entity = order_entity(order)
    assert order_from_entity(entity).lines == order.lines
    assert order_from_entity(entity).backordered_of("CHAIR-1", "PCS") == D(6)
    data = unpack_json(entity, "data")
    # Only a backordered line carries the field, so rows written before it read the same.
    assert ["backordered" in line for line in data["lines"]] == [True, False]
    del data["lines"][0]["backordered"]
    pack_json(entity, "data", data)
    assert order_from_entity(entity).lines[0].backordered == D(0)
