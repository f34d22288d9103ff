"""The syntax tree of filters and actions, and the recursive-descent parser that builds it.

Precedence, loosest first: OR, AND, NOT, the predicates (comparison, IS [NOT] NULL, [NOT] IN,
[NOT] LIKE, EXISTS), + and -, * / and %, unary + and -. Predicates and value expressions share
one tree; whether a filter is a condition at all is checked once the tree is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import SqlSyntaxError, SqlUnsupported
from .lexer import Kind, Token, tokenize
from .message_view import SYSTEM_PROPERTIES

COMPARISONS = ("=", "<>", "!=", ">", ">=", "<", "<=")


@dataclass(frozen=True)
class Constant:
    value: Any  # str, int, float, bool or None (NULL)


@dataclass(frozen=True)
class Property:
    scope: str  # "sys" or "user"
    name: str  # canonical for sys, as written for user


@dataclass(frozen=True)
class NewId:
    pass


@dataclass(frozen=True)
class Unary:
    operator: str  # "-", "+" or "NOT"
    operand: Node


@dataclass(frozen=True)
class Binary:
    operator: str  # arithmetic, comparison, "AND" or "OR"
    left: Node
    right: Node


@dataclass(frozen=True)
class IsNull:
    operand: Property
    negated: bool


@dataclass(frozen=True)
class InList:
    operand: Node
    items: tuple[Node, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    operand: Node
    pattern: str
    escape: str | None
    negated: bool


@dataclass(frozen=True)
class Exists:
    operand: Property


Node = Constant | Property | NewId | Unary | Binary | IsNull | InList | Like | Exists
CONDITIONS = (IsNull, InList, Like, Exists)


def is_condition(node: Node) -> bool:
    """True for nodes that yield true/false/unknown rather than a value."""
    if isinstance(node, CONDITIONS):
        return True
    if isinstance(node, Unary):
        return node.operator == "NOT"
    if isinstance(node, Binary):
        return node.operator in ("AND", "OR") or node.operator in COMPARISONS
    return isinstance(node, Constant) and isinstance(node.value, bool)


class Parser:
    """Parses one expression; ``parse_condition`` for filters, ``parse_statements`` for actions."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._tokens = tokenize(expression)
        self._index = 0

    # -- token helpers --------------------------------------------------------------------

    @property
    def _current(self) -> Token:
        return self._tokens[self._index]

    def _advance(self) -> Token:
        token = self._tokens[self._index]
        if token.kind is not Kind.END:
            self._index += 1
        return token

    def _error(self, message: str, token: Token | None = None) -> SqlSyntaxError:
        token = token or self._current
        found = token.text or token.kind.value
        return SqlSyntaxError(f"{message}, found {found!r}", self.expression, token.position)

    def _expect_operator(self, symbol: str) -> None:
        if not self._current.is_operator(symbol):
            raise self._error(f"expected {symbol!r}")
        self._advance()

    def _expect_end(self) -> None:
        if self._current.kind is not Kind.END:
            raise self._error("unexpected text after the expression")

    # -- entry points ---------------------------------------------------------------------

    def parse_condition(self) -> Node:
        if self._current.kind is Kind.END:
            raise self._error("an empty filter")
        node = self._or()
        self._expect_end()
        if not is_condition(node):
            raise SqlSyntaxError(
                "a filter must be a condition (a comparison, IS NULL, IN, LIKE, EXISTS, ...)",
                self.expression,
                0,
            )
        return node

    def parse_expression(self) -> Node:
        """Any expression, condition or value (what a SET action's right-hand side may be)."""
        node = self._or()
        self._expect_end()
        return node

    def parse_statements(self) -> list[tuple[str, Property, Node | None]]:
        """``SET p = expr`` and ``REMOVE p``, separated by ``;`` and/or ``,``."""
        statements: list[tuple[str, Property, Node | None]] = []
        while True:
            while self._current.is_operator(";", ","):
                self._advance()
            if self._current.kind is Kind.END:
                break
            token = self._advance()
            if token.is_keyword("SET"):
                target = self._property_reference()
                self._expect_operator("=")
                statements.append(("SET", target, self._additive()))
            elif token.is_keyword("REMOVE"):
                statements.append(("REMOVE", self._property_reference(), None))
            else:
                raise self._error("expected SET or REMOVE", token)
            if not self._current.is_operator(";", ",") and self._current.kind is not Kind.END:
                raise self._error("expected ';', ',' or the end of the action")
        if not statements:
            raise SqlSyntaxError("an empty action", self.expression, 0)
        return statements

    # -- conditions -----------------------------------------------------------------------

    def _or(self) -> Node:
        node = self._and()
        while self._current.is_keyword("OR"):
            self._advance()
            node = Binary("OR", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._current.is_keyword("AND"):
            self._advance()
            node = Binary("AND", node, self._not())
        return node

    def _not(self) -> Node:
        if self._current.is_keyword("NOT"):
            self._advance()
            return Unary("NOT", self._not())
        return self._predicate()

    def _predicate(self) -> Node:
        if self._current.is_keyword("EXISTS"):
            self._advance()
            self._expect_operator("(")
            target = self._property_reference()
            self._expect_operator(")")
            return Exists(target)
        left = self._additive()
        token = self._current
        if token.kind is Kind.OPERATOR and token.text in COMPARISONS:
            self._advance()
            operator = "<>" if token.text == "!=" else token.text
            return Binary(operator, left, self._additive())
        if token.is_keyword("IS"):
            self._advance()
            negated = self._optional_keyword("NOT")
            if not self._current.is_keyword("NULL"):
                raise self._error("expected NULL after IS")
            self._advance()
            if not isinstance(left, Property):
                raise self._error("IS [NOT] NULL applies to a property only", token)
            return IsNull(left, negated)
        negated = False
        if token.is_keyword("NOT"):
            following = self._tokens[self._index + 1]
            if following.is_keyword("IN", "LIKE"):
                self._advance()
                negated = True
                token = self._current
            else:
                raise self._error("expected IN or LIKE after NOT")
        if token.is_keyword("IN"):
            self._advance()
            return InList(left, self._in_items(), negated)
        if token.is_keyword("LIKE"):
            self._advance()
            pattern = self._string_constant("LIKE needs a string pattern")
            escape: str | None = None
            if self._optional_keyword("ESCAPE"):
                escape_token = self._current
                escape = self._string_constant("ESCAPE needs a string")
                if len(escape) != 1:
                    raise self._error("the ESCAPE character must be one character", escape_token)
            return Like(left, pattern, escape, negated)
        return left

    def _in_items(self) -> tuple[Node, ...]:
        self._expect_operator("(")
        items = [self._additive()]
        while self._current.is_operator(","):
            self._advance()
            items.append(self._additive())
        self._expect_operator(")")
        return tuple(items)

    def _optional_keyword(self, word: str) -> bool:
        if self._current.is_keyword(word):
            self._advance()
            return True
        return False

    def _string_constant(self, message: str) -> str:
        token = self._current
        if token.kind is not Kind.STRING:
            raise self._error(message)
        self._advance()
        return token.text

    # -- values ---------------------------------------------------------------------------

    def _additive(self) -> Node:
        node = self._multiplicative()
        while self._current.is_operator("+", "-"):
            operator = self._advance().text
            node = Binary(operator, node, self._multiplicative())
        return node

    def _multiplicative(self) -> Node:
        node = self._unary()
        while self._current.is_operator("*", "/", "%"):
            operator = self._advance().text
            node = Binary(operator, node, self._unary())
        return node

    def _unary(self) -> Node:
        if self._current.is_operator("+", "-"):
            operator = self._advance().text
            return Unary(operator, self._unary())
        return self._primary()

    def _primary(self) -> Node:
        token = self._current
        if token.is_operator("("):
            self._advance()
            node = self._or()
            self._expect_operator(")")
            return node
        if token.kind is Kind.STRING:
            self._advance()
            return Constant(token.text)
        if token.kind is Kind.INTEGER:
            self._advance()
            return Constant(int(token.text))
        if token.kind is Kind.DECIMAL:
            self._advance()
            return Constant(float(token.text))
        if token.is_keyword("TRUE", "FALSE"):
            self._advance()
            return Constant(token.text == "TRUE")
        if token.is_keyword("NULL"):
            self._advance()
            return Constant(None)
        if token.kind is Kind.IDENTIFIER:
            following = self._tokens[self._index + 1]
            if following.is_operator("("):
                return self._function()
            return self._property_reference()
        raise self._error("expected a value")

    def _function(self) -> Node:
        name_token = self._advance()
        name = name_token.text.lower()
        self._expect_operator("(")
        if name == "newid":
            self._expect_operator(")")
            return NewId()
        if name in ("property", "p"):
            argument = self._string_constant("property() takes the property name as a string")
            self._expect_operator(")")
            return _property_from_text(argument, self.expression)
        raise SqlUnsupported(
            f"unknown function {name_token.text}() at position {name_token.position} in "
            f"{self.expression!r}; Service Bus SQL has newid() and property(name)"
        )

    def _property_reference(self) -> Property:
        token = self._current
        if token.kind is not Kind.IDENTIFIER:
            raise self._error("expected a property name")
        self._advance()
        if self._current.is_operator(".") and token.text.lower() in ("sys", "user"):
            self._advance()
            name_token = self._current
            if name_token.kind is not Kind.IDENTIFIER and name_token.kind is not Kind.KEYWORD:
                raise self._error("expected a property name after the scope")
            self._advance()
            return _scoped(token.text.lower(), name_token.text, self.expression)
        if self._current.is_operator("."):
            raise self._error(f"unknown scope {token.text!r}; use sys or user")
        return Property("user", token.text)


def _scoped(scope: str, name: str, expression: str) -> Property:
    if scope == "user":
        return Property("user", name)
    canonical = SYSTEM_PROPERTIES.get(name.lower())
    if canonical is None:
        raise SqlUnsupported(
            f"unknown or unsupported system property sys.{name} in {expression!r}; supported: "
            + ", ".join(sorted(set(SYSTEM_PROPERTIES.values())))
        )
    return Property("sys", canonical)


def _property_from_text(text: str, expression: str) -> Property:
    scope, dot, name = text.partition(".")
    if dot and scope.lower() in ("sys", "user"):
        return _scoped(scope.lower(), name, expression)
    return Property("user", text)
