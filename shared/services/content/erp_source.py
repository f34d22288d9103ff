"""Reading items, item content and categories from Business Central for the content sync.

Rows are validated one by one, not page by page: one malformed row (a media entry that is a
number, a missing field) must cost that SKU, not the run. A page is first validated in one
pass (fast); only when that fails are its rows validated singly to find the bad ones.

The other side of a product's join is read by number, ``in (...)`` filters of
``lookup_size`` numbers at a time (the OData ``in`` operator, supported by Business Central
since 2024 wave 1), never one request per item.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, RootModel, TypeAdapter, ValidationError

from shared.adapters.erp import models as erp
from shared.adapters.erp.client import ErpClient
from shared.adapters.erp.odata import Api, odata_string_literal
from shared.domain.content.source import (
    SourceAttribute,
    SourceContent,
    SourceItem,
    SourceMedia,
)

RecordT = TypeVar("RecordT")
ModelT = TypeVar("ModelT", bound=BaseModel)
# Lookups in flight at once: the client allows 5 per principal; leave one for the rest.
_LOOKUP_CONCURRENCY = 4


class _RawRow(RootModel[dict[str, Any]]):
    """A row exactly as the ERP sent it; checked later, row by row."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """An ERP row that cannot become a source record, and why (sku None: unreadable)."""

    sku: str | None
    reason: str


@dataclass
class SourcePage(Generic[RecordT]):
    """The records of one ERP page (or lookup), the rows that failed, the newest change."""

    records: list[RecordT] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    newest: datetime | None = None
    rows: int = 0
    requests: int = 0

    def absorb(self, other: SourcePage[RecordT]) -> None:
        self.records.extend(other.records)
        self.problems.extend(other.problems)
        self.rows += other.rows
        self.requests += other.requests
        if other.newest is not None and (self.newest is None or other.newest > self.newest):
            self.newest = other.newest


class ErpContentSource:
    """Items, content and categories for the content sync, validated per row."""

    def __init__(self, erp_client: ErpClient, page_size: int, lookup_size: int) -> None:
        self._erp = erp_client
        self._page_size = page_size
        self._lookup_size = lookup_size

    async def categories(self) -> SourcePage[tuple[str, str]]:
        """Every item category as (code, display name): a handful of rows, read each run."""
        result: SourcePage[tuple[str, str]] = SourcePage()
        async for rows in self._pages("itemCategories", Api.STANDARD, None):
            result.absorb(_convert(rows, erp.ItemCategory, _category_of, "code"))
        return result

    async def item_pages(self, since: datetime | None) -> AsyncGenerator[SourcePage[SourceItem]]:
        """Items changed since ``since`` (all when None), a page at a time."""
        async for rows in self._pages("items", Api.STANDARD, since):
            yield _convert(rows, erp.Item, _item_of, "number")

    async def content_pages(
        self, since: datetime | None
    ) -> AsyncGenerator[SourcePage[SourceContent]]:
        """Item content rows changed since ``since`` (all when None), a page at a time."""
        async for rows in self._pages("itemContent", Api.CUSTOM, since):
            yield _convert(rows, erp.ItemContent, _content_of, "itemNumber")

    async def items_by_number(self, numbers: Iterable[str]) -> SourcePage[SourceItem]:
        return await self._lookup(
            "items", Api.STANDARD, "number", numbers, lambda r: _convert(r, erp.Item, _item_of)
        )

    async def content_by_number(self, numbers: Iterable[str]) -> SourcePage[SourceContent]:
        return await self._lookup(
            "itemContent",
            Api.CUSTOM,
            "itemNumber",
            numbers,
            lambda r: _convert(r, erp.ItemContent, _content_of, "itemNumber"),
        )

    async def _pages(
        self,
        entity_set: str,
        api: Api,
        since: datetime | None,
        filter: str | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        pages = self._erp.iter_pages(
            entity_set,
            _RawRow,
            api=api,
            filter=filter,
            modified_since=since,
            page_size=self._page_size,
        )
        async for rows in pages:
            yield [row.root for row in rows]

    async def _lookup(
        self,
        entity_set: str,
        api: Api,
        key_field: str,
        numbers: Iterable[str],
        convert: Callable[[list[dict[str, Any]]], SourcePage[RecordT]],
    ) -> SourcePage[RecordT]:
        unique = list(dict.fromkeys(numbers))
        chunks = [
            unique[start : start + self._lookup_size]
            for start in range(0, len(unique), self._lookup_size)
        ]
        gate = asyncio.Semaphore(_LOOKUP_CONCURRENCY)

        async def read(chunk: Sequence[str]) -> SourcePage[RecordT]:
            found: SourcePage[RecordT] = SourcePage()
            async with gate:
                async for rows in self._pages(entity_set, api, None, in_filter(key_field, chunk)):
                    found.absorb(convert(rows))
            return found

        result: SourcePage[RecordT] = SourcePage()
        for found in await asyncio.gather(*(read(chunk) for chunk in chunks)):
            result.absorb(found)
        return result


def in_filter(field_name: str, values: Sequence[str]) -> str:
    """``number in ('A','O''NEIL-1')``: each value quoted the OData way."""
    return f"{field_name} in ({','.join(odata_string_literal(v) for v in values)})"


def _convert(
    rows: list[dict[str, Any]],
    model: type[ModelT],
    to_record: Callable[[ModelT], RecordT],
    key_field: str = "number",
) -> SourcePage[RecordT]:
    result: SourcePage[RecordT] = SourcePage(rows=len(rows), requests=1)
    for row, parsed in zip(rows, _validate_rows(model, rows), strict=True):
        if isinstance(parsed, str):
            key = row.get(key_field) if isinstance(row, dict) else None
            result.problems.append(RowProblem(key if isinstance(key, str) else None, parsed))
            continue
        result.records.append(to_record(parsed))
        modified = getattr(parsed, "last_modified_date_time", None)
        if modified is not None and (result.newest is None or modified > result.newest):
            result.newest = modified
    return result


def _validate_rows(model: type[ModelT], rows: list[dict[str, Any]]) -> list[ModelT | str]:
    """Every row as a model, or the reason it is not one."""
    try:
        return list(_list_adapter(model).validate_python(rows))
    except ValidationError:
        pass
    checked: list[ModelT | str] = []
    for row in rows:
        try:
            checked.append(model.model_validate(row))
        except ValidationError as error:
            checked.append(_reason(error))
    return checked


_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}


def _list_adapter(model: type[BaseModel]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return adapter


def _reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(part) for part in item["loc"]) or "row"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "ERP row malformed: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _category_of(row: erp.ItemCategory) -> tuple[str, str]:
    return (row.code, row.display_name)


def _item_of(row: erp.Item) -> SourceItem:
    return SourceItem(
        sku=row.number,
        name=row.display_name,
        category_code=row.item_category_code,
        gtin=row.gtin,
        unit_of_measure=row.base_unit_of_measure_code,
        unit_price=row.unit_price,
        price_includes_tax=row.price_includes_tax,
        blocked=row.blocked,
    )


def _content_of(row: erp.ItemContent) -> SourceContent:
    return SourceContent(
        sku=row.item_number,
        description=row.description,
        marketing_text=row.marketing_text,
        attributes=tuple(SourceAttribute(a.name, a.value) for a in row.attributes),
        media=tuple(SourceMedia(m.id, m.url, m.mime_type) for m in row.media),
    )
