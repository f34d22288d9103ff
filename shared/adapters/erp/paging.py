"""Reading a whole entity set page by page, following ``@odata.nextLink`` to the very end.

One page is in memory at a time, so 250,000 rows stream through in constant memory. The
loop ends only when BC stops sending a nextLink (the classic bug is stopping after page one).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TypeVar

from pydantic import BaseModel

from shared.adapters.erp.contract import parse_collection, parse_rows, response_json
from shared.adapters.erp.errors import ErpContractError
from shared.adapters.erp.odata import ErpUrls
from shared.adapters.erp.request_pipeline import RequestPipeline

ModelT = TypeVar("ModelT", bound=BaseModel)


async def iter_pages(
    pipeline: RequestPipeline,
    urls: ErpUrls,
    first_url: str,
    model: type[ModelT],
    *,
    entity_set: str,
    page_size: int,
    read_only: bool,
    correlation_id: str | None,
) -> AsyncGenerator[list[ModelT]]:
    """Yield validated pages until the server has no next page."""
    url: str | None = first_url
    followed: set[str] = set()
    while url is not None:
        response = await pipeline.send(
            "GET",
            url,
            entity_set=entity_set,
            read_only=read_only,
            page_size=page_size,
            correlation_id=correlation_id,
        )
        page = parse_collection(response_json(response, entity_set), entity_set)
        yield parse_rows(model, page.value, entity_set)
        url = _checked_next_link(page.next_link, urls, followed, entity_set)


def _checked_next_link(
    link: str | None, urls: ErpUrls, followed: set[str], entity_set: str
) -> str | None:
    if link is None:
        return None
    # The link is absolute and followed as given, but never to another host: it carries our token.
    if not urls.is_same_origin(link):
        raise ErpContractError(f"{entity_set}: nextLink points elsewhere", entity_set=entity_set)
    if link in followed:
        raise ErpContractError(f"{entity_set}: nextLink repeats a page", entity_set=entity_set)
    followed.add(link)
    return link
