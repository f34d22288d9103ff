"""Why an expression was refused (at start-up) or could not be evaluated (per message)."""

from __future__ import annotations


class SqlError(ValueError):
    """Base of every SQL filter or action error; the message says where and why."""


class SqlSyntaxError(SqlError):
    """The text is not a valid filter or action expression."""

    def __init__(self, message: str, expression: str, position: int) -> None:
        pointer = f" at position {position}" if position >= 0 else ""
        super().__init__(f"{message}{pointer} in {expression!r}")
        self.position = position


class SqlUnsupported(SqlError):
    """Valid in Service Bus, or close to it, but refused here (read-only or unknown property)."""


class SqlEvaluationError(SqlError):
    """The expression failed for one message (division by zero, incompatible operands)."""
