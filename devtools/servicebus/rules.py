"""Subscription rules: which messages sent to a topic a subscription gets a copy of."""

from __future__ import annotations

from typing import Any

from .sections import MessageParts
from .topology import CorrelationFilter, Rule

# Correlation filter field -> index in the AMQP properties list.
_PROPERTY_INDEX = {
    "message_id": 0,
    "to": 2,
    "label": 3,
    "reply_to": 4,
    "correlation_id": 5,
    "content_type": 6,
    "session_id": 10,
    "reply_to_session_id": 12,
}
_FALSE_SQL = {"1=0", "false"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _correlation_matches(flt: CorrelationFilter, parts: MessageParts) -> bool:
    for field_name, index in _PROPERTY_INDEX.items():
        expected = getattr(flt, field_name)
        if expected is not None and _text(parts.property_field(index)) != expected:
            return False
    app = parts.application_properties or {}
    for key, expected_value in (flt.properties or {}).items():
        if key not in app:
            return False
        actual = app[key]
        if isinstance(expected_value, str) or isinstance(actual, str | bytes):
            if _text(actual) != _text(expected_value):
                return False
        elif actual != expected_value:
            return False
    return True


def _rule_matches(rule: Rule, parts: MessageParts) -> bool:
    props = rule.properties
    if props.correlation_filter is not None:
        return _correlation_matches(props.correlation_filter, parts)
    expression = (props.sql_filter.sql_expression if props.sql_filter else "").replace(" ", "")
    # Only constant SQL filters are evaluated; anything else is let through (and warned about
    # at start-up) rather than silently dropping messages.
    return expression.lower() not in _FALSE_SQL


def subscription_accepts(rules: list[Rule], parts: MessageParts) -> bool:
    """No rules means the default true filter; several rules match if any one does."""
    return not rules or any(_rule_matches(rule, parts) for rule in rules)
