"""SQL filter expressions of the Service Bus stand-in: grammar, three-valued logic, errors.

The expected results follow Microsoft's "Subscription Rule SQL Filter Syntax": a missing user
property is unknown (not an error), unknown propagates through comparisons and arithmetic, AND /
OR / NOT use three-valued logic, and a filter selects a message only when it is true.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools.servicebus.sql import SqlSyntaxError, SqlUnsupported, compile_filter
from devtools.servicebus.sql.evaluate import evaluate
from devtools.servicebus.sql.syntax import Parser
from tests.unit.servicebus_sql_support import DictMessage

MESSAGE = DictMessage(
    system_properties={
        "Label": "Red",
        "MessageId": "m-1",
        "CorrelationId": "important",
        "ContentType": "application/json",
    },
    user_properties={
        "Color": "Red",
        "quantity": 10,
        "price": 2.5,
        "flag": True,
        "nothing": None,
        "path": "50%_off",
        "Name With Space": "x",
    },
)


def matches(expression: str, message: DictMessage = MESSAGE) -> bool:
    return compile_filter(expression).matches(message)


def value_of(expression: str, message: DictMessage = MESSAGE) -> Any:
    return evaluate(Parser(expression).parse_expression(), message)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1=1", True),
        ("1=0", False),
        ("Color = 'Red'", True),
        ("color = 'Red'", False),  # user property names are case-sensitive
        ("user.Color = 'Red'", True),
        ("sys.Label = 'Red'", True),
        ("SYS.LABEL = 'Red'", True),  # scope, system names and keywords are not
        ("sys.Subject = 'Red'", False),  # Subject is not set in this message's system dict
        ("sys.MessageId = 'm-1' AND sys.CorrelationId = 'important'", True),
        ("quantity > 5 and quantity <= 10", True),
        ("quantity <> 10", False),
        ("quantity != 9", True),
        ("price >= 2.5", True),
        ("flag = TRUE", True),
        ("flag = FALSE", False),
        ("[Name With Space] = 'x'", True),
        ("\"Name With Space\" = 'x'", True),
        ("'Red' = Color", True),
        ("Color IN ('Blue', 'Red')", True),
        ("Color NOT IN ('Blue', 'Red')", False),
        ("quantity IN (1, 2, 10.0)", True),
        ("Color LIKE 'R%'", True),
        ("Color LIKE 'r%'", False),
        ("Color LIKE 'R_d'", True),
        ("Color LIKE 'R_'", False),
        ("Color NOT LIKE 'B%'", True),
        ("EXISTS(Color)", True),
        ("EXISTS(nothing)", True),  # the property is there, with a null value
        ("EXISTS(missing)", False),
        ("nothing IS NULL", True),
        ("missing IS NULL", True),
        ("Color IS NOT NULL", True),
        ("NOT (Color = 'Blue')", True),
        ("(Color = 'Blue' OR Color = 'Red') AND quantity = 10", True),
        ("Color = 'Blue' OR Color = 'Red' AND quantity = 11", False),  # AND binds tighter
        ("NOT Color = 'Blue' AND quantity = 10", True),
        ("quantity * 2 + 1 = 21", True),
        ("-quantity = -10", True),
        ("quantity % 3 = 1", True),
        ("quantity / 4 = 2", True),  # integer division
        ("quantity / 4.0 = 2.5", True),
        ("price * 4 = 10", True),  # a double and a long compare by value
        ("sys.Label + '-' + Color = 'Red-Red'", True),
        ("property('Color') = 'Red'", True),
        ("p('sys.Label') = 'Red'", True),
        ("NOT newid() = newid()", True),
    ],
)
def test_filter_results(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


class TestUnknownValues:
    """A missing property is unknown; only IS NULL and EXISTS look at it directly."""

    @pytest.mark.parametrize(
        "expression",
        [
            "missing = 1",
            "missing <> 1",
            "missing > 1",
            "missing + 1 = 2",
            "missing IN (1, 2)",
            "missing LIKE '%'",
            "missing = missing",
            "nothing = NULL",
            "NULL = NULL",
        ],
    )
    def test_comparisons_with_unknown_are_unknown(self, expression: str) -> None:
        assert value_of(expression) is None
        assert not matches(expression)
        assert not matches(f"NOT ({expression})")  # NOT unknown is still unknown

    @pytest.mark.parametrize(
        ("expression", "expected"),
        [
            ("missing = 1 AND 1 = 0", False),
            ("missing = 1 AND 1 = 1", None),
            ("missing = 1 OR 1 = 1", True),
            ("missing = 1 OR 1 = 0", None),
            ("NOT (missing = 1 OR 1 = 0)", None),
            ("NOT (missing = 1 AND 1 = 0)", True),
        ],
    )
    def test_and_or_not_follow_three_valued_logic(
        self, expression: str, expected: bool | None
    ) -> None:
        assert value_of(expression) is expected

    def test_in_list_with_an_unknown_item_is_unknown_unless_another_matches(self) -> None:
        assert value_of("quantity IN (missing, 10)") is True
        assert value_of("quantity IN (missing, 11)") is None
        assert value_of("quantity NOT IN (missing, 11)") is None

    def test_a_missing_system_property_value_is_unknown(self) -> None:
        assert value_of("sys.To = 'x'") is None
        assert matches("sys.To IS NULL")
        assert not matches("EXISTS(sys.To)")


class TestTypes:
    def test_text_and_numbers_do_not_compare(self) -> None:
        assert value_of("Color = 1") is None
        assert value_of("quantity = '10'") is None

    def test_booleans_have_equality_only(self) -> None:
        assert value_of("flag > FALSE") is None

    def test_integer_division_and_remainder_truncate_toward_zero(self) -> None:
        message = DictMessage(user_properties={"a": -7, "b": 2})
        assert value_of("a / b", message) == -3
        assert value_of("a % b", message) == -1

    def test_decimal_and_exponent_constants_are_doubles(self) -> None:
        assert value_of("1.5 + 1e1") == 11.5
        assert value_of(".5 * 2") == 1.0


class TestLike:
    def test_escape_makes_wildcards_literal(self) -> None:
        assert matches("path LIKE '50!%!_off' ESCAPE '!'")
        assert not matches("path LIKE '50!%!_offx' ESCAPE '!'")
        assert matches("path LIKE '50!%%' ESCAPE '!'")
        assert not matches("path LIKE '50!_%' ESCAPE '!'")

    def test_a_quote_inside_a_pattern_is_doubled(self) -> None:
        message = DictMessage(user_properties={"name": "O'Brien"})
        assert matches("name LIKE 'O''B%'", message)

    def test_like_on_a_number_is_unknown(self) -> None:
        assert value_of("quantity LIKE '1%'") is None

    @given(st.text(max_size=20))
    def test_a_pattern_without_wildcards_is_equality(self, text: str) -> None:
        literal = text.replace("%", "").replace("_", "")
        message = DictMessage(user_properties={"v": text})
        quoted = literal.replace("'", "''")
        assert matches(f"v LIKE '{quoted}'", message) is (text == literal)

    @given(st.text(max_size=20))
    def test_every_character_escaped_matches_only_itself(self, text: str) -> None:
        escaped = "".join("\\" + char for char in text).replace("'", "''")
        message = DictMessage(user_properties={"v": text})
        assert matches(f"v LIKE '{escaped}' ESCAPE '\\'", message)
        other = DictMessage(user_properties={"v": text + "x"})
        assert not matches(f"v LIKE '{escaped}' ESCAPE '\\'", other)


TRUTH = st.sampled_from(["1=1", "1=0", "missing=1"])


@given(TRUTH, TRUTH)
def test_de_morgan_holds_in_three_valued_logic(a: str, b: str) -> None:
    assert value_of(f"NOT (({a}) AND ({b}))") == value_of(f"NOT ({a}) OR NOT ({b})")
    assert value_of(f"NOT (({a}) OR ({b}))") == value_of(f"NOT ({a}) AND NOT ({b})")


@given(st.integers(-1000, 1000), st.integers(-50, 50).filter(lambda n: n != 0))
def test_integer_division_and_remainder_agree(a: int, b: int) -> None:
    message = DictMessage(user_properties={"a": a, "b": b})
    assert value_of("(a / b) * b + a % b", message) == a


class TestRefusals:
    @pytest.mark.parametrize(
        ("expression", "error", "fragment"),
        [
            ("", SqlSyntaxError, "empty filter"),
            ("Color", SqlSyntaxError, "must be a condition"),
            ("quantity + 1", SqlSyntaxError, "must be a condition"),
            ("Color = ", SqlSyntaxError, "expected a value"),
            ("Color = 'Red", SqlSyntaxError, "unterminated"),
            ("(Color = 'Red'", SqlSyntaxError, "expected ')'"),
            ("Color = 'Red' Color", SqlSyntaxError, "unexpected text"),
            ("Color IS 'Red'", SqlSyntaxError, "expected NULL"),
            ("1 IS NULL", SqlSyntaxError, "property only"),
            ("Color LIKE Color", SqlSyntaxError, "string pattern"),
            ("Color LIKE 'a' ESCAPE 'ab'", SqlSyntaxError, "one character"),
            ("Color NOT = 'a'", SqlSyntaxError, "IN or LIKE"),
            ("Color = #", SqlSyntaxError, "unexpected character"),
            ("12abc = 1", SqlSyntaxError, "runs into a name"),
            ("other.Color = 1", SqlSyntaxError, "unknown scope"),
            ("sys.NoSuchThing = 1", SqlUnsupported, "sys.NoSuchThing"),
            ("sys.DeliveryCount > 1", SqlUnsupported, "sys.DeliveryCount"),
            ("upper(Color) = 'RED'", SqlUnsupported, "unknown function upper()"),
            ("Color BETWEEN 1 AND 2", SqlSyntaxError, "unexpected text"),
        ],
    )
    def test_unsupported_or_malformed_filters_are_refused_with_the_reason(
        self, expression: str, error: type[Exception], fragment: str
    ) -> None:
        with pytest.raises(error, match=None) as raised:
            compile_filter(expression)
        assert fragment in str(raised.value)

    def test_the_error_names_the_position(self) -> None:
        with pytest.raises(SqlSyntaxError) as raised:
            compile_filter("Color = 'Red' AND AND")
        assert raised.value.position == 18
