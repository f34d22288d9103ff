"""Response types: OData JSON, Business Central's error envelope, and a deliberately lost answer."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from devtools.erp_sim.errors import ApiError

ODATA_MEDIA_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true"


class ODataJSON(Response):
    media_type = ODATA_MEDIA_TYPE

    def __init__(self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None):
        merged = {"OData-Version": "4.0", **(headers or {})}
        super().__init__(content, status_code=status_code, headers=merged)

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")


def error_response(error: ApiError) -> ODataJSON:
    return ODataJSON(error.body(), status_code=error.status, headers=error.headers)


class ResponseLost(Exception):
    """Raised after the status line went out, so the server drops the connection mid-answer."""


class LostResponse(Response):
    """Starts a 201 answer and then breaks the connection, as if the reply got lost on the way.

    The work was committed before; the client sees a transport error and cannot know it.
    """

    def __init__(self) -> None:
        super().__init__(status_code=201)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-type", ODATA_MEDIA_TYPE.encode("ascii")),
                    (b"content-length", b"4096"),
                ],
            }
        )
        raise ResponseLost("response deliberately lost after commit")
