"""Turning ERP responses into typed models, with one error type when the shape is wrong.

A ValidationError or KeyError escaping from here would look like a bug in the caller; an
``ErpContractError`` naming the entity set and the field tells operations what changed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.adapters.erp.errors import ErpContractError
from shared.adapters.erp.jsonio import JsonDecodeFailed, decode_json

ModelT = TypeVar("ModelT", bound=BaseModel)


class ODataCollection(BaseModel):
    """The envelope of a collection response: rows plus the link to the next page."""

    model_config = ConfigDict(extra="ignore")

    value: list[Any]
    next_link: str | None = Field(default=None, alias="@odata.nextLink")


def response_json(response: httpx.Response, entity_set: str) -> Any:
    """The decoded body (numbers with fractions as Decimal), or ``ErpContractError``."""
    try:
        return decode_json(response.content)
    except JsonDecodeFailed as exc:
        raise ErpContractError(
            f"{entity_set}: response is not JSON ({response.status_code})",
            status_code=response.status_code,
            entity_set=entity_set,
        ) from exc


def parse_collection(body: Any, entity_set: str) -> ODataCollection:
    """The collection envelope, or ``ErpContractError`` when ``value`` is missing."""
    try:
        return ODataCollection.model_validate(body)
    except ValidationError as exc:
        raise _contract_error(entity_set, exc, "collection") from exc


def parse_rows(model: type[ModelT], rows: list[Any], entity_set: str) -> list[ModelT]:
    """Validate a page of rows in one pass (much faster than row by row)."""
    try:
        return _list_adapter(model).validate_python(rows)
    except ValidationError as exc:
        raise _contract_error(entity_set, exc, "row") from exc


def parse_entity(model: type[ModelT], body: Any, entity_set: str) -> ModelT:
    """Validate a single entity response."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _contract_error(entity_set, exc, "entity") from exc


@lru_cache(maxsize=64)
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _contract_error(entity_set: str, exc: ValidationError, what: str) -> ErpContractError:
    first = exc.errors(include_url=False, include_input=False)[0]
    location = list(first["loc"])
    row = None
    if what == "row" and location and isinstance(location[0], int):
        row = location.pop(0)
    field = ".".join(str(part) for part in location) or "(body)"
    where = f" row {row}" if row is not None else ""
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return ErpContractError(
        f"{entity_set}{where}: field '{field}': {first['msg']}{more}",
        entity_set=entity_set,
    )
