"""Collection reads: ``$filter``, ``$select``, ``$expand``, ``$top``, ``$skip``, ``$count``,
``Prefer: odata.maxpagesize`` and ``@odata.nextLink`` with an opaque ``$skiptoken``.

``$orderby`` is accepted and ignored: rows always come in key order, which is what makes
the skiptoken stable (Business Central also pages in key order).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from devtools.erp_sim.errors import BadRequest
from devtools.erp_sim.odata_filter import FilterError, compile_filter
from devtools.erp_sim.paging import (
    SkipTokenError,
    count_matching,
    decode_skiptoken,
    encode_skiptoken,
    select_page,
)
from devtools.erp_sim.reference import MAX_PAGE_SIZE
from devtools.erp_sim.schema import EntitySetSpec
from devtools.erp_sim.store import EntitySet, Row

_KNOWN_OPTIONS = frozenset(
    {
        "$filter",
        "$select",
        "$expand",
        "$top",
        "$skip",
        "$skiptoken",
        "$orderby",
        "$count",
        "$format",
        "$schemaversion",
    }
)
_MAXPAGESIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class QueryOptions:
    filter_text: str | None
    select: tuple[str, ...] | None
    expand: str | None
    top: int | None
    skip: int
    after: str | None
    count: bool
    page_size: int
    page_size_applied: int | None  # echoed in Preference-Applied when the client asked


def parse_options(
    params: Mapping[str, str],
    prefer: str | None,
    spec: EntitySetSpec,
    default_page_size: int,
    expandable: tuple[str, ...] = (),
) -> QueryOptions:
    for name in params:
        if name.startswith("$") and name not in _KNOWN_OPTIONS:
            raise BadRequest(f"The query parameter '{name}' is not supported.")
    select = None
    if params.get("$select"):
        select = tuple(part.strip() for part in params["$select"].split(",") if part.strip())
        for name in select:
            if not spec.has(name) and name not in expandable:
                raise BadRequest(
                    f"Could not find a property named '{name}' on type "
                    f"'Microsoft.NAV.{spec.entity_type}'."
                )
    expand = params.get("$expand") or None
    if expand is not None and expand not in expandable:
        raise BadRequest(
            f"Could not find a navigation property named '{expand}' on type "
            f"'Microsoft.NAV.{spec.entity_type}'."
        )
    after = None
    if params.get("$skiptoken"):
        try:
            after = decode_skiptoken(params["$skiptoken"])
        except SkipTokenError as exc:
            raise BadRequest(str(exc)) from exc
    requested = None
    if prefer:
        match = _MAXPAGESIZE.search(prefer)
        if match:
            requested = int(match.group(1))
            if requested < 1:
                raise BadRequest("odata.maxpagesize must be at least 1.")
    page_size = min(requested or default_page_size, MAX_PAGE_SIZE)
    return QueryOptions(
        filter_text=params.get("$filter"),
        select=select,
        expand=expand,
        top=_non_negative(params, "$top"),
        skip=_non_negative(params, "$skip") or 0,
        after=after,
        count=params.get("$count", "").lower() == "true",
        page_size=page_size,
        page_size_applied=page_size if requested is not None else None,
    )


def _non_negative(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    if not text.isdigit():
        raise BadRequest(f"The value '{text}' of {name} is not a non-negative integer.")
    return int(text)


def read_collection(
    entity_set: EntitySet,
    options: QueryOptions,
    *,
    context: str,
    request_url: str,
    params: Mapping[str, str],
    expand_rows: Callable[[Row], Row] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """One page of the collection as a JSON body, plus the response headers."""
    spec = entity_set.spec
    predicate = None
    keys = entity_set.order
    if options.filter_text is not None:
        try:
            compiled = compile_filter(options.filter_text, spec)
        except FilterError as exc:
            raise BadRequest(str(exc)) from exc
        predicate = compiled.predicate
        if compiled.index_field is not None:
            keys = entity_set.candidate_ids(compiled.index_field, compiled.index_values)
        if compiled.modified_bound is not None:
            # A delta read past every generated timestamp only has to look at written rows.
            changed = entity_set.changed_since(*compiled.modified_bound)
            if changed is not None and len(changed) < len(keys):
                keys = changed
    limit = options.page_size if options.top is None else min(options.page_size, options.top)
    if limit == 0:
        rows: list[Row] = []
        has_more, last_key = False, None
    else:
        page = select_page(
            keys,
            entity_set.rows,
            after=options.after,
            skip=0 if options.after is not None else options.skip,
            limit=limit,
            predicate=predicate,
        )
        rows, last_key = page.rows, page.last_key
        has_more = page.has_more and (options.top is None or options.top > len(rows))
    body: dict[str, Any] = {"@odata.context": context}
    if options.count:
        body["@odata.count"] = count_matching(keys, entity_set.rows, predicate)
    body["value"] = [_shape(row, options, expand_rows) for row in rows]
    if has_more and last_key is not None:
        body["@odata.nextLink"] = _next_link(request_url, params, options, last_key, len(rows))
    headers = {}
    if options.page_size_applied is not None:
        headers["Preference-Applied"] = f"odata.maxpagesize={options.page_size_applied}"
    return body, headers


def shape_entity(row: Row, options: QueryOptions, expand_rows: Callable[[Row], Row] | None) -> Row:
    return _shape(row, options, expand_rows)


def _shape(row: Row, options: QueryOptions, expand_rows: Callable[[Row], Row] | None) -> Row:
    if options.expand and expand_rows is not None:
        row = expand_rows(row)
    if options.select is None:
        return row
    shaped: Row = {"@odata.etag": row.get("@odata.etag")}
    for name in options.select:
        shaped[name] = row.get(name)
    if options.expand and options.expand in row:
        shaped[options.expand] = row[options.expand]
    return shaped


def _next_link(
    request_url: str, params: Mapping[str, str], options: QueryOptions, last_key: str, returned: int
) -> str:
    kept = {
        name: value for name, value in params.items() if name not in ("$skip", "$skiptoken", "$top")
    }
    if options.top is not None:
        kept["$top"] = str(options.top - returned)
    kept["$skiptoken"] = encode_skiptoken(last_key)
    query = "&".join(
        f"{quote(name, safe='$')}={quote(value, safe=chr(39) + '(),:$')}"
        for name, value in kept.items()
    )
    return f"{request_url}?{query}"


def read_small_collection(
    rows: list[Row],
    spec: EntitySetSpec,
    options: QueryOptions,
    *,
    context: str,
) -> dict[str, Any]:
    """A short collection (document lines, one customer's details) in its natural order, unpaged."""
    chosen = rows
    if options.filter_text is not None:
        try:
            predicate = compile_filter(options.filter_text, spec).predicate
        except FilterError as exc:
            raise BadRequest(str(exc)) from exc
        chosen = [row for row in rows if predicate(row)]
    chosen = chosen[options.skip :]
    if options.top is not None:
        chosen = chosen[: options.top]
    body: dict[str, Any] = {"@odata.context": context}
    if options.count:
        body["@odata.count"] = len(chosen)
    body["value"] = [_shape(row, options, None) for row in chosen]
    return body
