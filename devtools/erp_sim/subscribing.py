"""What Business Central checks before it keeps a webhook subscription.

- The resource must be on the API whose ``subscriptions`` endpoint received the request
  (``api/v2.0/...`` at ``api/v2.0/subscriptions``; a custom page's
  ``api/{publisher}/{group}/{version}/...`` at that API's own endpoint), name a company that
  exists and an entity set that API serves and that can be subscribed to.
- The notification URL must pass the validation handshake (``?validationToken=...`` answered
  200 with the token as the body), on create and again on renew.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import unquote, urlsplit

import httpx

from devtools.erp_sim.errors import BadRequest
from devtools.erp_sim.reference import COMPANY_ID
from devtools.erp_sim.schema import NESTED_ONLY, SPECS, SUBSCRIBABLE, Api

_RESOURCE = re.compile(
    r"^api/(?P<prefix>.+?)/companies\((?P<company>[^)]*)\)/(?P<set>[A-Za-z][A-Za-z0-9]*)$"
)
_ENVIRONMENT = re.compile(r"^/?v2\.0/[^/]+/[^/]+/(?P<rest>api/.*)$", re.IGNORECASE)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_resource(resource: str, endpoint_prefix: str, endpoint_api: Api) -> str:
    """The entity set the resource names, or ``BadRequest`` as BC refuses it."""
    path = resource.strip()
    if "://" in path:
        path = urlsplit(path).path
    path = unquote(path)
    environment = _ENVIRONMENT.match(path)
    path = (environment.group("rest") if environment else path).strip("/")
    match = _RESOURCE.match(path)
    if match is None:
        raise BadRequest(f"The resource '{resource}' is not a valid subscription resource.")
    if match.group("prefix").lower() != endpoint_prefix.lower():
        raise BadRequest(
            f"The resource '{resource}' is not served by the API 'api/{endpoint_prefix}'; "
            "subscribe at the subscriptions endpoint of the API that serves it."
        )
    company = match.group("company").strip("'").lower()
    if company != COMPANY_ID:
        raise BadRequest(f"The company '{company}' in the resource does not exist.")
    name = match.group("set")
    spec = SPECS.get(name)
    if spec is None or name in NESTED_ONLY or spec.api is not endpoint_api:
        raise BadRequest(f"The resource '{resource}' is not valid: '{name}' is not found.")
    if name not in SUBSCRIBABLE:
        raise BadRequest(
            f"The entity '{name}' does not support webhooks: the page must use a physical "
            "table with a single key (ODataKeyFields = SystemId)."
        )
    return name


async def validate_url(url: str, timeout_seconds: float = 5.0) -> None:
    """Run the validation handshake against ``url``; ``BadRequest`` if it fails."""
    if (urlsplit(url).hostname or "") not in _LOOPBACK_HOSTS:
        raise BadRequest("The notification URL is not reachable from the simulator (loopback).")
    token = secrets.token_urlsafe(16)
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds) as client:
            response = await client.post(url, params={"validationToken": token})
    except httpx.HTTPError as error:
        raise BadRequest(
            f"The subscription's notification URL could not be validated: {type(error).__name__}."
        ) from error
    if response.status_code != 200 or response.text != token:
        raise BadRequest(
            "The subscription's notification URL did not echo the validation token "
            f"(status {response.status_code})."
        )
