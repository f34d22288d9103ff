"""A small OData ``$filter`` compiler: comparisons, ``in``, ``and``/``or``/``not``, parentheses
and ``startswith``/``endswith``/``contains``.

The result is a predicate over stored rows plus, when the filter is a chain of ``and`` with an
equality on an indexed field, the values to look up in that index, so ``number eq 'X'`` does
not scan 250,000 rows. Anything else is a ``FilterError`` (a 400 for the client), never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from devtools.erp_sim.schema import EntitySetSpec, Kind
from devtools.erp_sim.stamps import format_timestamp

Row = dict[str, Any]
Predicate = Callable[[Row], bool]


class FilterError(Exception):
    """The filter is malformed or uses something the simulator does not support."""


@dataclass(frozen=True)
class CompiledFilter:
    predicate: Predicate
    index_field: str | None = None
    index_values: tuple[Any, ...] = ()
    # (bound, inclusive) when every match must have lastModifiedDateTime after the bound.
    modified_bound: tuple[str, bool] | None = None


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<string>'(?:[^']|'')*')
    |(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
    |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?(?![\w.]))
    |(?P<lparen>\()
    |(?P<rparen>\))
    |(?P<comma>,)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)

_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_FUNCTIONS = frozenset({"startswith", "endswith", "contains"})
_OPERATOR_NAMES = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


@dataclass(frozen=True)
class _Literal:
    kind: str  # string, guid, datetime, date, number, bool, null
    value: Any


def compile_filter(text: str, spec: EntitySetSpec) -> CompiledFilter:
    """Compile ``text`` against the fields of ``spec``."""
    if not text.strip():
        raise FilterError("The $filter expression is empty.")
    return _Parser(_tokenize(text), spec).parse()


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterError(
                f"Syntax error at position {position} in '{text}': unexpected '{text[position]}'."
            )
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token], spec: EntitySetSpec) -> None:
        self._tokens = tokens
        self._index = 0
        self._spec = spec

    def parse(self) -> CompiledFilter:
        result = self._or()
        if self._peek() is not None:
            token = self._tokens[self._index]
            raise FilterError(
                f"Syntax error at position {token.position}: unexpected '{token.text}'."
            )
        return result

    # ---- grammar --------------------------------------------------------------------

    def _or(self) -> CompiledFilter:
        left = self._and()
        while self._peek_word("or"):
            self._index += 1
            right = self._and()
            left = CompiledFilter(_either(left.predicate, right.predicate))
        return left

    def _and(self) -> CompiledFilter:
        parts = [self._unary()]
        while self._peek_word("and"):
            self._index += 1
            parts.append(self._unary())
        if len(parts) == 1:
            return parts[0]
        predicates = tuple(part.predicate for part in parts)
        indexed = next((part for part in parts if part.index_field), None)
        bounded = next((part for part in parts if part.modified_bound), None)
        return CompiledFilter(
            lambda row: all(predicate(row) for predicate in predicates),
            indexed.index_field if indexed else None,
            indexed.index_values if indexed else (),
            bounded.modified_bound if bounded else None,
        )

    def _unary(self) -> CompiledFilter:
        if self._peek_word("not"):
            self._index += 1
            inner = self._unary().predicate
            return CompiledFilter(lambda row: not inner(row))
        token = self._peek()
        if token is None:
            raise FilterError("Unexpected end of the $filter expression.")
        if token.kind == "lparen":
            self._index += 1
            inner_filter = self._or()
            self._expect("rparen")
            return inner_filter
        if token.kind == "name" and token.text in _FUNCTIONS:
            return self._function()
        return self._comparison()

    def _function(self) -> CompiledFilter:
        name = self._take().text
        self._expect("lparen")
        field = self._field()
        self._expect("comma")
        literal = self._literal()
        self._expect("rparen")
        if self._spec.fields[field] is not Kind.STRING or literal.kind != "string":
            raise FilterError(
                f"The function '{name}' needs a string property and a string literal."
            )
        needle: str = literal.value
        if name == "startswith":
            return CompiledFilter(lambda row: str(row.get(field) or "").startswith(needle))
        if name == "endswith":
            return CompiledFilter(lambda row: str(row.get(field) or "").endswith(needle))
        return CompiledFilter(lambda row: needle in str(row.get(field) or ""))

    def _comparison(self) -> CompiledFilter:
        field = self._field()
        operator = self._peek()
        if operator is None or operator.kind != "name":
            raise FilterError(f"Expected an operator after '{field}'.")
        word = operator.text
        self._index += 1
        if word == "in":
            self._expect("lparen")
            literals = [self._literal()]
            while self._peek_kind("comma"):
                self._index += 1
                literals.append(self._literal())
            self._expect("rparen")
            values = tuple(_coerce(self._spec, field, "eq", literal) for literal in literals)
            allowed = frozenset(values)
            return CompiledFilter(
                lambda row: row.get(field) in allowed,
                field if field in self._spec.indexed else None,
                values,
            )
        if word not in _COMPARISONS:
            raise FilterError(f"The operator '{word}' is not supported.")
        literal = self._literal()
        return _compare(self._spec, field, word, literal)

    # ---- pieces ---------------------------------------------------------------------

    def _field(self) -> str:
        token = self._take()
        if token.kind != "name":
            raise FilterError(f"Expected a property name at position {token.position}.")
        if not self._spec.has(token.text):
            raise FilterError(
                f"Could not find a property named '{token.text}' on type "
                f"'Microsoft.NAV.{self._spec.entity_type}'."
            )
        if self._spec.fields[token.text] is Kind.COMPLEX:
            raise FilterError(f"The property '{token.text}' cannot be used in a filter.")
        return token.text

    def _literal(self) -> _Literal:
        token = self._take()
        if token.kind == "string":
            return _Literal("string", token.text[1:-1].replace("''", "'"))
        if token.kind == "guid":
            return _Literal("guid", token.text.lower())
        if token.kind == "datetime":
            return _Literal("datetime", _parse_datetime(token.text))
        if token.kind == "date":
            return _Literal("date", token.text)
        if token.kind == "number":
            try:
                return _Literal("number", Decimal(token.text.rstrip("mMdDfFlL")))
            except InvalidOperation as exc:
                raise FilterError(f"'{token.text}' is not a number.") from exc
        if token.kind == "name" and token.text in ("true", "false"):
            return _Literal("bool", token.text == "true")
        if token.kind == "name" and token.text == "null":
            return _Literal("null", None)
        raise FilterError(f"Expected a literal at position {token.position}, found '{token.text}'.")

    def _peek(self) -> _Token | None:
        return self._tokens[self._index] if self._index < len(self._tokens) else None

    def _peek_word(self, word: str) -> bool:
        token = self._peek()
        return token is not None and token.kind == "name" and token.text == word

    def _peek_kind(self, kind: str) -> bool:
        token = self._peek()
        return token is not None and token.kind == kind

    def _take(self) -> _Token:
        token = self._peek()
        if token is None:
            raise FilterError("Unexpected end of the $filter expression.")
        self._index += 1
        return token

    def _expect(self, kind: str) -> None:
        token = self._take()
        if token.kind != kind:
            raise FilterError(
                f"Syntax error at position {token.position}: unexpected '{token.text}'."
            )


def _either(first: Predicate, second: Predicate) -> Predicate:
    return lambda row: first(row) or second(row)


def _parse_datetime(text: str) -> datetime:
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:  # OData allows 7 digits, Python 6
        text = text.replace(fraction.group(1), fraction.group(1)[:6])
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as exc:
        raise FilterError(f"'{text}' is not a valid Edm.DateTimeOffset.") from exc


def _type_error(spec: EntitySetSpec, field: str, operator: str, literal: _Literal) -> FilterError:
    found = {
        "string": "Edm.String",
        "guid": "Edm.Guid",
        "datetime": "Edm.DateTimeOffset",
        "date": "Edm.Date",
        "number": "Edm.Decimal",
        "bool": "Edm.Boolean",
        "null": "null",
    }[literal.kind]
    return FilterError(
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{spec.fields[field].value}' and '{found}' for operator kind "
        f"'{_OPERATOR_NAMES.get(operator, operator)}'."
    )


def _coerce(spec: EntitySetSpec, field: str, operator: str, literal: _Literal) -> Any:
    """The literal as a value comparable with the stored field (for eq/in)."""
    kind = spec.fields[field]
    if kind is Kind.STRING and literal.kind == "string":
        return literal.value
    if kind is Kind.GUID and literal.kind in ("guid", "string"):
        return str(literal.value).lower()
    if kind in (Kind.NUMBER, Kind.INT) and literal.kind == "number":
        value: Decimal = literal.value
        return int(value) if value == value.to_integral_value() else float(value)
    if kind is Kind.BOOL and literal.kind == "bool":
        return literal.value
    if kind is Kind.DATE and literal.kind == "date":
        return literal.value
    if kind is Kind.DATETIME and literal.kind == "datetime":
        return format_timestamp(literal.value)
    raise _type_error(spec, field, operator, literal)


def _compare(spec: EntitySetSpec, field: str, operator: str, literal: _Literal) -> CompiledFilter:
    kind = spec.fields[field]
    if kind is Kind.DATETIME and literal.kind == "datetime":
        return _compare_datetime(field, operator, literal.value)
    if kind is Kind.BOOL and operator not in ("eq", "ne"):
        raise _type_error(spec, field, operator, literal)
    value = _coerce(spec, field, operator, literal)
    indexed = field if operator == "eq" and field in spec.indexed else None
    test = _OPERATORS[operator]
    if kind in (Kind.NUMBER, Kind.INT):
        number = value

        def numeric(row: Row) -> bool:
            stored = row.get(field)
            return stored is not None and test(stored, number)

        return CompiledFilter(numeric, indexed, (value,))

    def textual(row: Row) -> bool:
        stored = row.get(field)
        return stored is not None and test(stored, value)

    return CompiledFilter(textual, indexed, (value,))


def _compare_datetime(field: str, operator: str, moment: datetime) -> CompiledFilter:
    """Compare fixed-width millisecond timestamps as strings, exactly.

    Stored values have millisecond precision, so a literal with a finer fraction is turned
    into the equivalent bound on the millisecond grid (floor for gt/le, ceiling for ge/lt).
    """
    floor = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    exact = floor == moment
    ceiling = floor if exact else floor + timedelta(milliseconds=1)
    if operator in ("gt", "le"):
        bound = format_timestamp(floor)
    elif operator in ("ge", "lt"):
        bound = format_timestamp(ceiling)
    else:
        bound = format_timestamp(floor)
        if not exact:
            # No stored value can equal a sub-millisecond instant.
            never = operator == "eq"
            return CompiledFilter(lambda row: not never and row.get(field) is not None)
    lower_bound = None
    if field == "lastModifiedDateTime" and operator in ("gt", "ge"):
        lower_bound = (bound, operator == "ge")
    # One closure per operator: this runs once per row when a delta read scans a million.
    predicates: dict[str, Predicate] = {
        "gt": lambda row: (row.get(field) or "") > bound,
        "ge": lambda row: (row.get(field) or "") >= bound,
        "lt": lambda row: (stored := row.get(field)) is not None and stored < bound,
        "le": lambda row: (stored := row.get(field)) is not None and stored <= bound,
        "eq": lambda row: row.get(field) == bound,
        "ne": lambda row: (stored := row.get(field)) is not None and stored != bound,
    }
    return CompiledFilter(predicates[operator], modified_bound=lower_bound)


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
