"""Parsing Business Central API paths into what they address.

``/v2.0/{tenant}/{env}/api/v2.0/companies({id})/items({id})`` (standard API) and
``/v2.0/{tenant}/{env}/api/{publisher}/{group}/{version}/companies({id})/priceListLines``
(custom API pages). The path is split before percent-decoding, so a key such as
``('AB%2F12%233')`` stays one segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from devtools.erp_sim.errors import NotFound
from devtools.erp_sim.schema import NESTED_ONLY, SPECS, Api, EntitySetSpec

_SEGMENT = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_.]*)(?:\((?P<key>.*)\))?$", re.DOTALL)


@dataclass(frozen=True)
class Segment:
    name: str
    key: str | None


@dataclass(frozen=True)
class Target:
    api: Api
    api_root: str  # absolute URL up to and including the API version
    company_id: str | None
    segments: tuple[Segment, ...]  # what follows companies(...) or the root

    @property
    def stats_name(self) -> str:
        if not self.segments:
            return "companies" if self.company_id is None else "company"
        return self.segments[-1].name

    def context(self, suffix: str) -> str:
        company = f"companies({self.company_id})/" if self.company_id else ""
        return f"{self.api_root}/$metadata#{company}{suffix}"

    def url(self, suffix: str) -> str:
        company = f"companies({self.company_id})/" if self.company_id else ""
        return f"{self.api_root}/{company}{suffix}"


def parse_target(origin: str, raw_path: str) -> Target:
    """Parse the part of ``raw_path`` after ``/v2.0/{tenant}/{env}/api/``."""
    raw_segments = raw_path.split("/")[1:]
    if len(raw_segments) < 5 or raw_segments[0].lower() != "v2.0" or raw_segments[3] != "api":
        raise NotFound(f"No HTTP resource was found that matches the request URI '{raw_path}'.")
    rest = [unquote(segment) for segment in raw_segments[4:]]
    if rest and rest[-1] == "":
        rest.pop()  # tolerate a trailing slash
    start = next(
        (
            i
            for i, text in enumerate(rest)
            if _parse_segment(text).name in ("companies", "subscriptions")
        ),
        None,
    )
    if start is None:
        raise NotFound(f"No HTTP resource was found that matches the request URI '{raw_path}'.")
    prefix = rest[:start]
    if [p.lower() for p in prefix] == ["v2.0"]:
        api = Api.STANDARD
    elif len(prefix) == 3 and all(prefix):
        api = Api.CUSTOM
    else:
        raise NotFound(f"No HTTP resource was found that matches the request URI '{raw_path}'.")
    api_root = f"{origin}/" + "/".join(raw_segments[: 4 + start])
    head = _parse_segment(rest[start])
    tail = tuple(_parse_segment(text) for text in rest[start + 1 :])
    if head.name == "subscriptions":
        # Every API has its own subscriptions endpoint (standard and each custom API).
        if tail:
            raise NotFound("Resource not found for the segment 'subscriptions'.")
        return Target(api, api_root, None, (head,))
    if head.key is None:
        if tail:
            raise NotFound("Resource not found for the segment 'companies'.")
        return Target(api, api_root, None, ())
    return Target(api, api_root, head.key.lower(), tail)


def api_prefix(target: Target) -> str:
    """``v2.0`` or ``{publisher}/{group}/{version}``: which API a target is on."""
    return target.api_root.split("/api/", 1)[1].strip("/")


def _parse_segment(text: str) -> Segment:
    match = _SEGMENT.match(text)
    if match is None:
        raise NotFound(f"Resource not found for the segment '{text}'.")
    key = match.group("key")
    if key is not None:
        key = key.strip()
        if key.startswith("id="):
            key = key[3:]
        if len(key) >= 2 and key[0] == "'" and key[-1] == "'":
            key = key[1:-1].replace("''", "'")
    return Segment(match.group("name"), key)


def entity_set_spec(target: Target, segment: Segment) -> EntitySetSpec:
    """The spec of a top-level entity set reachable on the target's API, or 404."""
    spec = SPECS.get(segment.name)
    if (
        spec is None
        or segment.name in NESTED_ONLY
        or segment.name == "subscriptions"
        or spec.api is not target.api
    ):
        raise NotFound(f"Resource not found for the segment '{segment.name}'.")
    return spec
