"""ASP.NET-style route templates as the Functions host understands them.

Supported: literal segments (matched case-insensitively), `{name}`, optional `{name?}`,
defaults `{name=value}`, catch-all `{*rest}` / `{**rest}`, several parameters in one segment
(`{file}.{ext}`), and inline constraints (`{id:int}`, `{code:length(3)}`,
`{n:int:range(1,9)}`, `{s:regex(^a+$)}`, ...). A value that fails a constraint means the
route does not match, so the request falls through to 404 as on the real host.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

from devtools.runner.errors import AppIndexError

Check = Callable[[str], bool]
_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)


def _is_int(text: str, bounds: tuple[int, int]) -> bool:
    if not re.fullmatch(r"[+-]?\d+", text):
        return False
    return bounds[0] <= int(text) <= bounds[1]


def _is_decimal(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text) is not None


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text.strip("{}()"))
    except ValueError:
        return False
    return True


def _is_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _number_args(name: str, args: list[str], count: int) -> list[int]:
    if len(args) != count or not all(re.fullmatch(r"-?\d+", a.strip()) for a in args):
        raise AppIndexError(f"route constraint {name} needs {count} integer argument(s)")
    return [int(a) for a in args]


def _constraint(name: str, args: list[str]) -> Check:
    """One inline constraint as a predicate over the raw segment value."""
    simple: dict[str, Check] = {
        "int": lambda v: _is_int(v, _INT32),
        "long": lambda v: _is_int(v, _INT64),
        "bool": lambda v: v.lower() in {"true", "false"},
        "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
        "guid": _is_guid,
        "datetime": _is_datetime,
        "decimal": _is_decimal,
        "double": _is_decimal,
        "float": _is_decimal,
        "required": lambda v: v != "",
    }
    if name in simple:
        if args:
            raise AppIndexError(f"route constraint {name} takes no arguments")
        return simple[name]
    if name in {"min", "max"}:
        (limit,) = _number_args(name, args, 1)
        if name == "min":
            return lambda v: _is_int(v, _INT64) and int(v) >= limit
        return lambda v: _is_int(v, _INT64) and int(v) <= limit
    if name == "range":
        low, high = _number_args(name, args, 2)
        return lambda v: _is_int(v, _INT64) and low <= int(v) <= high
    if name in {"minlength", "maxlength"}:
        (size,) = _number_args(name, args, 1)
        if name == "minlength":
            return lambda v: len(v) >= size
        return lambda v: len(v) <= size
    if name == "length":
        if len(args) == 1:
            (exact,) = _number_args(name, args, 1)
            return lambda v: len(v) == exact
        low, high = _number_args(name, args, 2)
        return lambda v: low <= len(v) <= high
    if name == "regex":
        # Route templates escape braces inside a regex by doubling them.
        pattern_text = ",".join(args).replace("{{", "{").replace("}}", "}")
        try:
            pattern = re.compile(pattern_text, re.IGNORECASE)
        except re.error as exc:
            raise AppIndexError(
                f"route constraint regex({pattern_text}) is invalid: {exc}"
            ) from exc
        return lambda v: pattern.search(v) is not None
    raise AppIndexError(f"unknown route constraint {name!r}")


def _split_constraints(text: str) -> list[str]:
    """Split `int:range(1,5):regex(a:b)` at colons outside parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


@dataclass(frozen=True)
class RouteParameter:
    name: str
    optional: bool
    catch_all: bool
    default: str | None
    constraint_text: str
    checks: tuple[Check, ...]

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.checks)


def _parse_parameter(body: str, template: str) -> RouteParameter:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    default: str | None = None
    optional = False
    if "=" in body and "(" not in body.split("=", 1)[0]:
        body, default = body.split("=", 1)
        optional = True
    if body.endswith("?"):
        body = body[:-1]
        optional = True
    name, _, constraint_text = body.partition(":")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise AppIndexError(f"route {template!r}: bad parameter name {name!r}")
    checks: list[Check] = []
    if constraint_text:
        for part in _split_constraints(constraint_text):
            match = re.fullmatch(r"([A-Za-z]+)(?:\((.*)\))?", part, re.DOTALL)
            if match is None:
                raise AppIndexError(f"route {template!r}: bad constraint {part!r}")
            args = match.group(2).split(",") if match.group(2) is not None else []
            checks.append(_constraint(match.group(1).lower(), args))
    return RouteParameter(
        name=name,
        optional=optional or catch_all,
        catch_all=catch_all,
        default=default,
        constraint_text=constraint_text.lower(),
        checks=tuple(checks),
    )


# Segment kinds, lowest first = most specific, as ASP.NET orders candidate routes.
_LITERAL, _COMPLEX, _CONSTRAINED, _PARAMETER, _OPTIONAL, _CATCH_ALL = range(6)


@dataclass(frozen=True)
class _Segment:
    parts: tuple[str | RouteParameter, ...]

    @property
    def kind(self) -> int:
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return _LITERAL
        if len(self.parts) > 1:
            return _COMPLEX
        parameter = self.parts[0]
        assert isinstance(parameter, RouteParameter)
        if parameter.catch_all:
            return _CATCH_ALL
        if parameter.optional:
            return _OPTIONAL
        return _CONSTRAINED if parameter.checks else _PARAMETER

    @property
    def shape(self) -> str:
        """The segment with parameter names erased, for duplicate detection."""
        out = ""
        for part in self.parts:
            if isinstance(part, str):
                out += part.lower()
            else:
                marker = "*" if part.catch_all else ""
                out += "{" + marker + part.constraint_text + ("?" if part.optional else "") + "}"
        return out


def _parse_segment(text: str, template: str) -> _Segment:
    parts: list[str | RouteParameter] = []
    position = 0
    while position < len(text):
        start = text.find("{", position)
        if start == -1:
            parts.append(text[position:])
            break
        if start > position:
            parts.append(text[position:start])
        depth = 0
        end = start
        for end in range(start, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    break
        if depth != 0:
            raise AppIndexError(f"route {template!r}: unbalanced braces")
        parts.append(_parse_parameter(text[start + 1 : end], template))
        position = end + 1
    if not parts:
        raise AppIndexError(f"route {template!r}: empty segment")
    if "}" in "".join(p for p in parts if isinstance(p, str)):
        raise AppIndexError(f"route {template!r}: unbalanced braces")
    return _Segment(tuple(parts))


@dataclass(frozen=True)
class RouteTemplate:
    """A parsed route template that matches request paths (without the route prefix)."""

    template: str
    segments: tuple[_Segment, ...]
    _pattern: re.Pattern[str]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        cleaned = template.strip().strip("/")
        segments = tuple(_parse_segment(s, template) for s in cleaned.split("/")) if cleaned else ()
        names = [p.name.lower() for s in segments for p in s.parts if isinstance(p, RouteParameter)]
        if len(names) != len(set(names)):
            raise AppIndexError(f"route {template!r}: a parameter name is used twice")
        for index, segment in enumerate(segments):
            kind = segment.kind
            if kind == _CATCH_ALL and index != len(segments) - 1:
                raise AppIndexError(f"route {template!r}: a catch-all must be the last segment")
            if kind == _OPTIONAL and any(s.kind < _OPTIONAL for s in segments[index + 1 :]):
                raise AppIndexError(f"route {template!r}: only trailing segments may be optional")
        return cls(template=template, segments=segments, _pattern=cls._compile(segments))

    @staticmethod
    def _compile(segments: tuple[_Segment, ...]) -> re.Pattern[str]:
        regex = ""
        for segment in segments:
            piece = ""
            for part in segment.parts:
                if isinstance(part, str):
                    piece += re.escape(part)
                elif part.catch_all:
                    piece += f"(?P<{part.name}>.*)"
                else:
                    lazy = "?" if len(segment.parts) > 1 else ""
                    piece += f"(?P<{part.name}>[^/]+{lazy})"
            if segment.kind in (_OPTIONAL, _CATCH_ALL):
                regex += f"(?:/{piece})?"
            else:
                regex += f"/{piece}"
        return re.compile(f"^{regex}/?$", re.IGNORECASE | re.DOTALL)

    @property
    def parameters(self) -> list[RouteParameter]:
        return [p for s in self.segments for p in s.parts if isinstance(p, RouteParameter)]

    @property
    def shape(self) -> str:
        return "/".join(s.shape for s in self.segments)

    @property
    def precedence(self) -> tuple[int, ...]:
        """Sort key: more specific templates first (literal before parameter before catch-all)."""
        return (*(s.kind for s in self.segments), 99)

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Route values for a percent-encoded path below the prefix, or None."""
        path = "/" + raw_path.strip("/") if raw_path.strip("/") else ""
        found = self._pattern.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for parameter in self.parameters:
            raw = found.group(parameter.name)
            if raw is None:
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                continue
            value = unquote(raw)
            if not parameter.accepts(value):
                return None
            values[parameter.name] = value
        return values
