"""Function and admin keys, as the host checks them on HTTP and admin routes."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

FUNCTION_KEY_SETTING = "LOCAL_FUNCTION_KEY"
ADMIN_KEY_SETTING = "LOCAL_ADMIN_KEY"
KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"


def _same(candidate: str | None, expected: str | None) -> bool:
    if not candidate or not expected:
        return False
    return hmac.compare_digest(candidate.encode(), expected.encode())


@dataclass(frozen=True)
class Keys:
    function_key: str | None
    admin_key: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Keys:
        source = os.environ if environ is None else environ
        return cls(
            function_key=source.get(FUNCTION_KEY_SETTING) or None,
            admin_key=source.get(ADMIN_KEY_SETTING) or None,
        )

    def allows(self, auth_level: str, presented: str | None) -> bool:
        """Anonymous needs nothing; function takes the function or admin key; admin only admin."""
        if auth_level == "anonymous":
            return True
        if _same(presented, self.admin_key):
            return True
        return auth_level == "function" and _same(presented, self.function_key)


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key a caller sent: the `x-functions-key` header, else the `code` query parameter."""
    return headers.get(KEY_HEADER) or query.get(KEY_QUERY) or None
