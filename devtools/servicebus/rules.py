"""Subscription rules: which messages sent to a topic a subscription gets, and what it changes.

A rule is a filter (correlation or SQL) with an optional SQL action. A subscription without
rules takes everything. When several rules match, the subscription gets one copy and the
actions of the matching rules are applied to it in rule order (a simplification: Service Bus
makes one copy per matching rule that has an action). A filter that fails to evaluate for a
message (division by zero, text where a number is needed) does not match, and is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .sections import MessageParts
from .sql import SqlAction, SqlEvaluationError, SqlFilter, compile_action, compile_filter
from .sql_message import EditableParts, PartsView
from .topology import CorrelationFilter, Rule

_LOG = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class CompiledRule:
    """A topology rule with its SQL parsed once, at start-up."""

    name: str
    correlation: CorrelationFilter | None
    sql: SqlFilter | None
    action: SqlAction | None

    def matches(self, parts: MessageParts) -> bool:
        if self.correlation is not None:
            return _correlation_matches(self.correlation, parts)
        assert self.sql is not None
        try:
            return self.sql.matches(PartsView(parts))
        except SqlEvaluationError as exc:
            _LOG.warning("rule %s: filter failed for a message (%s); not matched", self.name, exc)
            return False


def compile_rule(rule: Rule) -> CompiledRule:
    """Parse a rule's SQL; raises ``SqlError`` naming what is wrong."""
    props = rule.properties
    sql = None
    if props.correlation_filter is None:
        expression = props.sql_filter.sql_expression if props.sql_filter else ""
        sql = compile_filter(expression)
    action = None
    if props.action is not None and props.action.sql_expression.strip():
        action = compile_action(props.action.sql_expression)
    return CompiledRule(rule.name, props.correlation_filter, sql, action)


def route(rules: list[CompiledRule], parts: MessageParts) -> MessageParts | None:
    """The copy a subscription gets (actions applied), or None when no rule matches."""
    if not rules:
        return parts
    matched = [rule for rule in rules if rule.matches(parts)]
    if not matched:
        return None
    actions = [rule for rule in matched if rule.action is not None]
    if not actions:
        return parts
    editable = EditableParts(parts)
    for rule in actions:
        assert rule.action is not None
        try:
            rule.action.apply(editable)
        except SqlEvaluationError as exc:
            _LOG.warning("rule %s: action failed for a message (%s); skipped", rule.name, exc)
    return editable.result()
