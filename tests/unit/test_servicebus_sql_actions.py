"""SQL rule actions of the Service Bus stand-in: SET and REMOVE, applied in order."""

from __future__ import annotations

import pytest

from devtools.servicebus.sql import SqlSyntaxError, SqlUnsupported, compile_action
from tests.unit.servicebus_sql_support import DictMessage


def applied(action: str, **user: object) -> DictMessage:
    message = DictMessage(system_properties={"Label": "Blue"}, user_properties=dict(user))
    compile_action(action).apply(message)
    return message


def test_set_replaces_a_user_property() -> None:
    assert applied("SET Color = 'BlueProcessed'", Color="Blue").user_properties == {
        "Color": "BlueProcessed"
    }


def test_set_creates_a_missing_property_and_can_compute_from_others() -> None:
    message = applied("SET total = quantity * price", quantity=3, price=2.5)
    assert message.user_properties["total"] == 7.5


def test_statements_run_in_order_and_see_earlier_changes() -> None:
    message = applied("SET a = 1; SET b = a + 1, SET a = b * 10", a=0)
    assert message.user_properties == {"a": 20, "b": 2}


def test_remove_deletes_and_ignores_a_missing_property() -> None:
    message = applied("REMOVE Color; REMOVE missing", Color="Blue", keep=1)
    assert message.user_properties == {"keep": 1}


def test_set_from_an_unknown_value_stores_null() -> None:
    message = applied("SET copy = missing")
    assert "copy" in message.user_properties
    assert message.user_properties["copy"] is None


def test_set_a_writable_system_property() -> None:
    message = applied("SET sys.Label = sys.Label + '-checked'; SET sys.To = 'store-1'")
    assert message.system_properties == {"Label": "Blue-checked", "To": "store-1"}


def test_keywords_and_semicolons_are_optional_and_case_insensitive() -> None:
    message = applied("set a = 1 ; remove b ;", b=2)
    assert message.user_properties == {"a": 1}


@pytest.mark.parametrize(
    ("action", "error", "fragment"),
    [
        ("", SqlSyntaxError, "empty action"),
        ("Color = 'x'", SqlSyntaxError, "expected SET or REMOVE"),
        ("SET Color 'x'", SqlSyntaxError, "expected '='"),
        ("SET Color = 'x' SET b = 1", SqlSyntaxError, "expected ';'"),
        ("REMOVE sys.Label", SqlUnsupported, "cannot be removed"),
        ("SET sys.SequenceNumber = 1", SqlUnsupported, "sys.SequenceNumber"),
        ("SET sys.ScheduledEnqueueTimeUtc = 1", SqlUnsupported, "read-only"),
        ("SET a = upper(b)", SqlUnsupported, "unknown function"),
    ],
)
def test_bad_actions_are_refused_with_the_reason(
    action: str, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as raised:
        compile_action(action)
    assert fragment in str(raised.value)
