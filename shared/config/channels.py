"""Storefront channels: what each sells, from where, in which currency and locale.

One declared configuration (the ``CHANNELS`` setting, JSON) is read by availability (which
locations a channel may sell from), order intake (where to reserve) and content sync (which
categories to push, where, signed with which secret).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")]
Code = Annotated[str, StringConstraints(min_length=1, max_length=20)]


class Channel(BaseModel):
    """One storefront channel."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    locations: Literal["*"] | tuple[Code, ...] = "*"
    categories: Literal["*"] | tuple[Code, ...] = "*"
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    locale: str = Field("en-US", min_length=2, max_length=20)
    # Path of the channel's catalog webhook below STOREFRONT_BASE_URL (or an absolute URL).
    catalog_webhook: str = Field("", alias="catalogWebhook", max_length=500)

    def sells_from(self, location: str) -> bool:
        return self.locations == "*" or location in self.locations

    def sells_category(self, category: str) -> bool:
        return self.categories == "*" or category in self.categories


Channels = dict[ChannelName, Channel]
_CHANNELS = TypeAdapter(Channels)

DEMO_CHANNELS = (
    '{"web": {"locations": "*", "categories": "*", "currency": "USD", "locale": "en-US",'
    ' "catalogWebhook": "/channels/web/catalog/batch"},'
    ' "b2b-eu": {"locations": ["MAIN", "EAST"], "categories": ["CHAIR", "DESK", "LAMP",'
    ' "STORAGE", "TABLE"], "currency": "EUR", "locale": "de-DE",'
    ' "catalogWebhook": "/channels/b2b-eu/catalog/batch"}}'
)


def parse_channels(raw: str) -> Channels:
    """Validate the ``CHANNELS`` JSON; raises pydantic's ValidationError naming the field."""
    return _CHANNELS.validate_json(raw)
