"""Invariants of the pricing models, the currency table and money rounding."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from shared.domain.pricing import (
    AmountType,
    AssetType,
    CurrencyPrecision,
    CurrencyTable,
    CustomerPricingContext,
    InvalidPriceListLine,
    InvalidPricingInput,
    ItemPricingInfo,
    PriceListLine,
    SourceType,
    default_currency_table,
    round_to_precision,
)
from shared.domain.pricing.rounding import trim_unit_amount

D = Decimal


def make(**overrides: object) -> PriceListLine:
    fields: dict[str, object] = {
        "key": "k",
        "price_list_code": "PL",
        "source_type": SourceType.ALL_CUSTOMERS,
        "source_no": "",
        "asset_type": AssetType.ITEM,
        "asset_no": "1000",
        "unit_price": D("1"),
    }
    fields.update(overrides)
    return PriceListLine(**fields)  # type: ignore[arg-type]


def test_plain_strings_from_the_erp_become_enums_and_codes_are_normalized() -> None:
    built = make(
        source_type="Customer Price Group",
        source_no="RETAIL",
        asset_type="Item Discount Group",
        amount_type="Discount",
        currency_code=" eur ",
        unit_of_measure_code="box",
        variant_code="red",
    )
    assert built.source_type is SourceType.CUSTOMER_PRICE_GROUP
    assert built.asset_type is AssetType.ITEM_DISCOUNT_GROUP
    assert built.amount_type is AmountType.DISCOUNT
    assert (built.currency_code, built.unit_of_measure_code, built.variant_code) == (
        "EUR",
        "BOX",
        "RED",
    )
    assert built.defines_discount and not built.defines_price


def test_all_customers_source_number_is_ignored() -> None:
    assert make(source_no="ANYTHING").source_no == ""


def test_any_item_line_defines_both_price_and_discount() -> None:
    both = make(amount_type=AmountType.ANY)
    assert both.defines_price and both.defines_discount
    price = make(amount_type=AmountType.PRICE)
    assert price.defines_price and not price.defines_discount


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"key": ""}, "key"),
        ({"asset_no": ""}, "asset number"),
        ({"source_type": "Vendor"}, "Vendor"),
        ({"amount_type": "Cost"}, "Cost"),
        ({"minimum_quantity": D(-1)}, "minimum quantity"),
        ({"unit_price": D("-0.01")}, "unit price"),
        ({"unit_price": D("NaN")}, "unit price"),
        ({"unit_price": 1.5}, "unit price"),
        ({"line_discount_percent": D("100.01")}, "discount"),
        ({"line_discount_percent": D("-1")}, "discount"),
        ({"starting_date": date(2025, 2, 1), "ending_date": date(2025, 1, 31)}, "ending date"),
    ],
)
def test_invalid_price_list_lines_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidPriceListLine, match=message):
        make(**overrides)


def test_valid_edge_values_are_accepted() -> None:
    edge = make(
        line_discount_percent=D(100),
        unit_price=D(0),
        starting_date=date(2025, 1, 1),
        ending_date=date(2025, 1, 1),
    )
    assert edge.line_discount_percent == D(100)


def test_item_units_always_include_the_base_unit() -> None:
    item = ItemPricingInfo.with_units("1000", "pcs", D("2"), other_units=[("box", D(12))])
    assert dict(item.sales_units_of_measure) == {"PCS": D(1), "BOX": D(12)}
    assert item.base_unit_of_measure == "PCS"
    with pytest.raises(TypeError):
        item.sales_units_of_measure["X"] = D(1)  # type: ignore[index]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"number": "", "base_unit_of_measure": "PCS", "unit_price": D(1)},
        {"number": "1", "base_unit_of_measure": " ", "unit_price": D(1)},
        {"number": "1", "base_unit_of_measure": "PCS", "unit_price": D(-1)},
        {
            "number": "1",
            "base_unit_of_measure": "PCS",
            "unit_price": D(1),
            "sales_units_of_measure": {"BOX": D(0)},
        },
    ],
)
def test_invalid_items_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidPricingInput):
        ItemPricingInfo(**kwargs)  # type: ignore[arg-type]


def test_customer_context_normalizes_and_requires_a_number() -> None:
    ctx = CustomerPricingContext("C1", currency_code="eur", active_campaigns={"A"})  # type: ignore[arg-type]
    assert ctx.currency_code == "EUR"
    assert ctx.active_campaigns == frozenset({"A"})
    with pytest.raises(InvalidPricingInput):
        CustomerPricingContext("")


def test_currency_table_resolves_blank_to_local_and_defaults_precisions() -> None:
    table = CurrencyTable("usd", {"jpy": CurrencyPrecision(D("0.01"), D("1"))})
    assert table.resolve("") == "USD"
    assert table.resolve(None) == "USD"
    assert table.is_local("") and table.is_local("Usd") and not table.is_local("EUR")
    assert table.precision("JPY").amount_precision == D(1)
    assert table.precision("EUR") == CurrencyPrecision(D("0.00001"), D("0.01"))
    assert default_currency_table("EUR").local_currency_code == "EUR"
    with pytest.raises(InvalidPricingInput):
        CurrencyTable("")
    with pytest.raises(InvalidPricingInput):
        CurrencyPrecision(amount_precision=D(0))


@pytest.mark.parametrize(
    ("value", "precision", "expected"),
    [
        ("1.125", "0.01", "1.13"),  # half-even would give 1.12
        ("1.135", "0.01", "1.14"),
        ("1.1249", "0.01", "1.12"),
        ("0.899991", "0.01", "0.90"),
        ("0.123465", "0.00001", "0.12347"),  # half-even would give 0.12346
        ("2.5", "1", "3"),  # half-even would give 2
        ("1.025", "0.05", "1.05"),
        ("1.074", "0.05", "1.05"),
        ("1.075", "0.05", "1.10"),
        ("0", "0.01", "0.00"),
    ],
)
def test_round_to_precision_is_half_up(value: str, precision: str, expected: str) -> None:
    rounded = round_to_precision(D(value), D(precision))
    assert str(rounded) == expected


def test_round_to_precision_refuses_non_positive_precision() -> None:
    with pytest.raises(ValueError):
        round_to_precision(D(1), D(0))


@pytest.mark.parametrize(
    ("value", "amount_precision", "expected"),
    [
        ("9.50000", "0.01", "9.50"),
        ("0.33333", "0.01", "0.33333"),
        ("10.12340", "0.01", "10.1234"),
        ("100.50", "1", "100.5"),
        ("100.00", "1", "100"),
        ("7", "0.01", "7.00"),
        ("1.10000", "0.05", "1.10"),
    ],
)
def test_trim_unit_amount_keeps_value_and_amount_places(
    value: str, amount_precision: str, expected: str
) -> None:
    trimmed = trim_unit_amount(D(value), D(amount_precision))
    assert str(trimmed) == expected
    assert trimmed == D(value)


def test_equal_small_values_are_shared_between_lines_but_keep_their_digits() -> None:
    first = make(
        key="a",
        source_type=SourceType.CUSTOMER,
        source_no="".join(["CU", "ST1"]),
        minimum_quantity=D("5"),
        line_discount_percent=D("2.5"),
        starting_date=date(2025, 1, 1),
    )
    second = make(
        key="b",
        source_type=SourceType.CUSTOMER,
        source_no="".join(["CUS", "T1"]),
        minimum_quantity=D("5"),
        line_discount_percent=D("2.5"),
        starting_date=date(2025, 1, 1),
    )
    assert first.source_no is second.source_no
    assert first.minimum_quantity is second.minimum_quantity
    assert first.line_discount_percent is second.line_discount_percent
    assert first.starting_date is second.starting_date
    padded = make(key="c", minimum_quantity=D("5.00"))
    assert str(padded.minimum_quantity) == "5.00"
    assert padded.minimum_quantity is not first.minimum_quantity
