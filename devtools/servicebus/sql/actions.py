"""Rule actions: ``SET property = expression`` and ``REMOVE property``, applied in order.

Expressions are evaluated against the message as the earlier statements left it. Setting a
property to an unknown value stores null; removing a user property that is not there is a no-op.
Only user properties can be removed, and only the system properties a sender may set can be set.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SqlUnsupported
from .evaluate import evaluate
from .message_view import WRITABLE_SYSTEM_PROPERTIES, WritableMessageView
from .syntax import Node, Parser, Property


@dataclass(frozen=True)
class SqlAction:
    expression: str
    statements: tuple[tuple[str, Property, Node | None], ...]

    def apply(self, message: WritableMessageView) -> None:
        for verb, target, value_node in self.statements:
            if verb == "REMOVE":
                message.remove_user(target.name)
                continue
            assert value_node is not None
            value = evaluate(value_node, message)
            if target.scope == "sys":
                message.set_system(target.name, value)
            else:
                message.set_user(target.name, value)


def compile_action(expression: str) -> SqlAction:
    """Parse an action; refuses REMOVE of a system property and SET of a read-only one."""
    statements = Parser(expression).parse_statements()
    for verb, target, _ in statements:
        if target.scope != "sys":
            continue
        if verb == "REMOVE":
            raise SqlUnsupported(
                f"REMOVE sys.{target.name} in {expression!r}: system properties cannot be removed"
            )
        if target.name not in WRITABLE_SYSTEM_PROPERTIES:
            raise SqlUnsupported(f"sys.{target.name} is read-only in {expression!r}")
    return SqlAction(expression, tuple(statements))
