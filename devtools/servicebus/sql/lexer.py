"""Tokens of the Service Bus SQL dialect.

Identifiers are regular (a letter, then letters, digits or ``_``), "quoted" (``""`` escapes a
quote) or [delimited] (``]]`` escapes a bracket); strings use single quotes with ``''`` as the
escape; keywords are case-insensitive.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import SqlSyntaxError

KEYWORDS = frozenset(
    {
        "AND", "OR", "NOT", "IS", "NULL", "IN", "LIKE", "ESCAPE", "EXISTS",
        "TRUE", "FALSE", "SET", "REMOVE",
    }
)  # fmt: skip
_OPERATORS = (
    "<>", "!=", ">=", "<=", "=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",", ".", ";",
)  # fmt: skip


class Kind(enum.Enum):
    IDENTIFIER = "identifier"
    KEYWORD = "keyword"
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    OPERATOR = "operator"
    END = "end of expression"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    position: int

    def is_keyword(self, *words: str) -> bool:
        return self.kind is Kind.KEYWORD and self.text in words

    def is_operator(self, *symbols: str) -> bool:
        return self.kind is Kind.OPERATOR and self.text in symbols


def tokenize(expression: str) -> list[Token]:
    """Split an expression into tokens, ending with an END token."""
    tokens: list[Token] = []
    pos = 0
    length = len(expression)
    while pos < length:
        char = expression[pos]
        if char.isspace():
            pos += 1
        elif char == "'":
            text, pos = _quoted(expression, pos, "'", "'")
            tokens.append(Token(Kind.STRING, text, pos))
        elif char == '"':
            start = pos
            text, pos = _quoted(expression, pos, '"', '"')
            tokens.append(Token(Kind.IDENTIFIER, text, start))
        elif char == "[":
            start = pos
            text, pos = _quoted(expression, pos, "[", "]")
            tokens.append(Token(Kind.IDENTIFIER, text, start))
        elif char.isdigit() or (char == "." and pos + 1 < length and expression[pos + 1].isdigit()):
            token, pos = _number(expression, pos)
            tokens.append(token)
        elif char.isalpha() or char == "_":
            start = pos
            pos += 1
            while pos < length and (expression[pos].isalnum() or expression[pos] == "_"):
                pos += 1
            word = expression[start:pos]
            if word.upper() in KEYWORDS:
                tokens.append(Token(Kind.KEYWORD, word.upper(), start))
            else:
                tokens.append(Token(Kind.IDENTIFIER, word, start))
        else:
            for symbol in _OPERATORS:
                if expression.startswith(symbol, pos):
                    tokens.append(Token(Kind.OPERATOR, symbol, pos))
                    pos += len(symbol)
                    break
            else:
                raise SqlSyntaxError(f"unexpected character {char!r}", expression, pos)
    tokens.append(Token(Kind.END, "", length))
    return tokens


def _quoted(expression: str, start: int, opening: str, closing: str) -> tuple[str, int]:
    """Read a quoted run; a doubled closing character stands for itself."""
    pos = start + 1
    chunks: list[str] = []
    while True:
        end = expression.find(closing, pos)
        if end < 0:
            raise SqlSyntaxError(f"unterminated {opening}...{closing}", expression, start)
        chunks.append(expression[pos:end])
        if expression.startswith(closing * 2, end):
            chunks.append(closing)
            pos = end + 2
            continue
        return "".join(chunks), end + 1


def _number(expression: str, start: int) -> tuple[Token, int]:
    pos = start
    length = len(expression)
    while pos < length and expression[pos].isdigit():
        pos += 1
    kind = Kind.INTEGER
    if pos < length and expression[pos] == ".":
        kind = Kind.DECIMAL
        pos += 1
        while pos < length and expression[pos].isdigit():
            pos += 1
    if pos < length and expression[pos] in "eE":
        exponent = pos + 1
        if exponent < length and expression[exponent] in "+-":
            exponent += 1
        if exponent < length and expression[exponent].isdigit():
            kind = Kind.DECIMAL
            pos = exponent
            while pos < length and expression[pos].isdigit():
                pos += 1
    if pos < length and (expression[pos].isalpha() or expression[pos] == "_"):
        raise SqlSyntaxError("a number runs into a name", expression, pos)
    return Token(kind, expression[start:pos], start), pos
