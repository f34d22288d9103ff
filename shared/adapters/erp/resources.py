"""The entity sets the client reads in bulk: each one's name, row model and API, in one table.

The ``iter_*`` methods of ``ErpClient`` name a row here instead of repeating the triple, so a
new resource is one line here and a one-line method there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from shared.adapters.erp.models import (
    Customer,
    Item,
    ItemAvailability,
    ItemCategory,
    ItemContent,
    Location,
    PriceListLine,
)
from shared.adapters.erp.odata import Api

RowT = TypeVar("RowT", bound=BaseModel)


@dataclass(frozen=True)
class Resource(Generic[RowT]):
    """One entity set: what BC calls it, what a row validates as, and which API serves it."""

    entity_set: str
    model: type[RowT]
    api: Api = Api.STANDARD


ITEMS = Resource("items", Item)
CUSTOMERS = Resource("customers", Customer)
ITEM_CATEGORIES = Resource("itemCategories", ItemCategory)
LOCATIONS = Resource("locations", Location)
# BC has no standard API for these: the extension's custom pages serve them.
PRICE_LIST_LINES = Resource("priceListLines", PriceListLine, Api.CUSTOM)
ITEM_AVAILABILITY = Resource("itemAvailabilityByLocation", ItemAvailability, Api.CUSTOM)
ITEM_CONTENT = Resource("itemContent", ItemContent, Api.CUSTOM)
