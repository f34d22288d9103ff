"""Which storefront channels the simulator serves and the secrets each one accepts."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# The demo configuration: a web shop selling from every location and a narrower B2B site.
DEFAULT_CHANNELS: Mapping[str, str] = {
    "web": "local-web-secret",
    "b2b-eu": "local-b2b-eu-secret",
}
CHANNELS_ENV_VAR = "STOREFRONT_SIM_CHANNELS"

_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

ChannelSecrets = dict[str, tuple[bytes, ...]]


class ChannelSpecInvalid(ValueError):
    """A `name=secret` channel specification that cannot be used."""


def parse_channel_specs(specs: Iterable[str]) -> ChannelSecrets:
    """`["web=s1", "b2b-eu=s2", "web=s0"]` -> secrets per channel.

    Naming a channel twice accepts every secret given for it, which is how a secret
    rotation is rehearsed locally (old and new both valid for a while).
    """
    channels: ChannelSecrets = {}
    for spec in specs:
        name, separator, secret = spec.partition("=")
        name = name.strip()
        if not separator or not secret:
            raise ChannelSpecInvalid(f"channel {spec!r} is not name=secret")
        if not _CHANNEL_NAME.match(name):
            raise ChannelSpecInvalid(f"channel name {name!r} must match {_CHANNEL_NAME.pattern}")
        channels[name] = (*channels.get(name, ()), secret.encode())
    return channels


def channels_from_env(value: str | None) -> ChannelSecrets | None:
    """The channels in `STOREFRONT_SIM_CHANNELS` (comma-separated name=secret), if set."""
    if value is None or not value.strip():
        return None
    return parse_channel_specs(part for part in value.split(",") if part.strip())


def default_channels() -> ChannelSecrets:
    """The demo channels with their documented local secrets."""
    return {name: (secret.encode(),) for name, secret in DEFAULT_CHANNELS.items()}
