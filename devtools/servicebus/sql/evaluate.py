"""Evaluating a parsed filter against a message with SQL's three-valued logic.

A missing user property, and a system property the message does not carry, evaluate to
unknown (None here). Unknown propagates through arithmetic and comparisons; AND / OR / NOT
follow Kleene's tables (unknown AND false = false, unknown OR true = true); a filter matches
only when it evaluates to true. IS NULL is true for unknown, EXISTS tells missing from set.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import SqlEvaluationError
from .message_view import MessageView
from .syntax import (
    Binary,
    Constant,
    Exists,
    InList,
    IsNull,
    Like,
    NewId,
    Node,
    Parser,
    Property,
    Unary,
)


@dataclass(frozen=True)
class SqlFilter:
    """A compiled filter; ``matches`` is True only when the condition is true (not unknown)."""

    expression: str
    tree: Node

    def matches(self, message: MessageView) -> bool:
        return evaluate(self.tree, message) is True


def compile_filter(expression: str) -> SqlFilter:
    """Parse a filter expression; raises SqlSyntaxError / SqlUnsupported with the reason."""
    return SqlFilter(expression, Parser(expression).parse_condition())


def evaluate(node: Node, message: MessageView) -> Any:
    """The value of ``node``: a str, int, float, bool, other property value, or None (unknown)."""
    if isinstance(node, Constant):
        return node.value
    if isinstance(node, Property):
        return read_property(node, message)
    if isinstance(node, NewId):
        return str(uuid.uuid4())
    if isinstance(node, Unary):
        return _unary(node.operator, evaluate(node.operand, message))
    if isinstance(node, Binary):
        if node.operator == "AND":
            return _and(node, message)
        if node.operator == "OR":
            return _or(node, message)
        left = evaluate(node.left, message)
        right = evaluate(node.right, message)
        if node.operator in _ARITHMETIC:
            return _arithmetic(node.operator, left, right)
        return compare(node.operator, left, right)
    if isinstance(node, IsNull):
        is_null = read_property(node.operand, message) is None
        return not is_null if node.negated else is_null
    if isinstance(node, Exists):
        return property_exists(node.operand, message)
    if isinstance(node, InList):
        return _negate(_in(node, message), node.negated)
    if isinstance(node, Like):
        return _negate(_like(node, message), node.negated)
    raise SqlEvaluationError(f"cannot evaluate {node!r}")  # pragma: no cover - exhaustive


def read_property(prop: Property, message: MessageView) -> Any:
    if prop.scope == "sys":
        return message.system(prop.name)
    return message.user(prop.name)


def property_exists(prop: Property, message: MessageView) -> bool:
    if prop.scope == "sys":
        return message.system(prop.name) is not None
    return message.has_user(prop.name)


# -- logic ---------------------------------------------------------------------------------


def _truth(value: Any) -> bool | None:
    """A logical operand: true, false or unknown; anything that is not a boolean is unknown."""
    return value if isinstance(value, bool) else None


def _negate(value: bool | None, negated: bool) -> bool | None:
    if value is None or not negated:
        return value
    return not value


def _and(node: Binary, message: MessageView) -> bool | None:
    left = _truth(evaluate(node.left, message))
    if left is False:
        return False
    right = _truth(evaluate(node.right, message))
    if right is False:
        return False
    return True if left and right else None


def _or(node: Binary, message: MessageView) -> bool | None:
    left = _truth(evaluate(node.left, message))
    if left is True:
        return True
    right = _truth(evaluate(node.right, message))
    if right is True:
        return True
    return False if left is False and right is False else None


def _unary(operator: str, value: Any) -> Any:
    if operator == "NOT":
        truth = _truth(value)
        return None if truth is None else not truth
    if value is None:
        return None
    if not _is_number(value):
        raise SqlEvaluationError(f"unary {operator} needs a number, got {type(value).__name__}")
    return -value if operator == "-" else value


# -- comparison ----------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Bring two values to one type, or None when they cannot be compared."""
    if _is_number(left) and _is_number(right):
        return left, right  # int and float compare by value (1 = 1.0)
    if isinstance(left, bool) and isinstance(right, bool):
        return left, right
    if isinstance(left, str | uuid.UUID) and isinstance(right, str | uuid.UUID):
        if isinstance(left, uuid.UUID) and isinstance(right, uuid.UUID):
            return left, right
        if isinstance(left, uuid.UUID) or isinstance(right, uuid.UUID):
            return str(left).lower(), str(right).lower()
        return left, right
    if type(left) is type(right):
        return left, right
    return None


def compare(operator: str, left: Any, right: Any) -> bool | None:
    """A comparison; unknown when either side is unknown or the types do not compare."""
    if left is None or right is None:
        return None
    pair = _comparable(left, right)
    if pair is None:
        return None
    a, b = pair
    if operator == "=":
        return bool(a == b)
    if operator == "<>":
        return bool(a != b)
    if isinstance(a, bool | uuid.UUID):
        return None  # booleans and GUIDs have equality only
    try:
        if operator == "<":
            return bool(a < b)
        if operator == "<=":
            return bool(a <= b)
        if operator == ">":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return None


def _in(node: InList, message: MessageView) -> bool | None:
    value = evaluate(node.operand, message)
    if value is None:
        return None
    saw_unknown = False
    for item in node.items:
        result = compare("=", value, evaluate(item, message))
        if result is True:
            return True
        if result is None:
            saw_unknown = True
    return None if saw_unknown else False


# -- LIKE ----------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def like_pattern(pattern: str, escape: str | None) -> re.Pattern[str]:
    """``%`` is any run of characters, ``_`` exactly one; the escape character quotes the next."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if escape is not None and char == escape:
            index += 1
            if index >= len(pattern):
                raise SqlEvaluationError(f"pattern {pattern!r} ends with its escape character")
            parts.append(re.escape(pattern[index]))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def _like(node: Like, message: MessageView) -> bool | None:
    value = evaluate(node.operand, message)
    if not isinstance(value, str):
        return None
    return like_pattern(node.pattern, node.escape).fullmatch(value) is not None


# -- arithmetic ----------------------------------------------------------------------------

_ARITHMETIC = ("+", "-", "*", "/", "%")


def _arithmetic(operator: str, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if operator == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if not (_is_number(left) and _is_number(right)):
        raise SqlEvaluationError(
            f"{operator} needs numbers, got {type(left).__name__} and {type(right).__name__}"
        )
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    if operator == "*":
        return left * right
    if right == 0:
        raise SqlEvaluationError("division by zero")
    both_integers = isinstance(left, int) and isinstance(right, int)
    if operator == "/":
        if both_integers:  # integer division truncates toward zero, as in .NET
            quotient = abs(left) // abs(right)
            return quotient if (left >= 0) == (right >= 0) else -quotient
        return left / right
    if both_integers:  # the remainder takes the sign of the dividend, as in .NET
        return left - right * _arithmetic("/", left, right)
    return math.fmod(left, right)
