"""Run one of Microsoft's azure-servicebus samples, unchanged, against the local stand-in.

    python tests/conformance/run_sample.py path/to/sample.py

The samples authenticate with ``DefaultAzureCredential`` (Entra ID) over TLS on port 5671. The
stand-in has neither TLS nor Entra ID and accepts every CBS token, so before the sample runs
this swaps two things of its environment, and nothing else:
- ``azure.identity[.aio].DefaultAzureCredential`` becomes a credential that hands out a fixed
  local token (the real client still sends it through CBS put-token);
- ``ServiceBusClient`` (sync and async) defaults to ``use_tls=False``, what the client does
  itself for a connection string with ``UseDevelopmentEmulator=true``.
"""

from __future__ import annotations

import functools
import runpy
import sys
import time
from typing import Any

from azure.core.credentials import AccessToken

_TOKEN_LIFETIME = 3600


class LocalCredential:
    """Stands in for DefaultAzureCredential: the stand-in does not check tokens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("local-standin-token", int(time.time()) + _TOKEN_LIFETIME)

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalCredential:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


class AsyncLocalCredential:
    """The async twin of :class:`LocalCredential` (azure.identity.aio)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("local-standin-token", int(time.time()) + _TOKEN_LIFETIME)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> AsyncLocalCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pass


def _plain_tcp(client_class: type) -> None:
    original = client_class.__init__

    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("use_tls", False)
        original(self, *args, **kwargs)

    client_class.__init__ = init  # type: ignore[misc]


def prepare_environment() -> None:
    import azure.identity
    import azure.identity.aio
    import azure.servicebus
    import azure.servicebus.aio

    azure.identity.DefaultAzureCredential = LocalCredential  # type: ignore[misc,assignment]
    azure.identity.aio.DefaultAzureCredential = AsyncLocalCredential  # type: ignore[misc,assignment]
    _plain_tcp(azure.servicebus.ServiceBusClient)
    _plain_tcp(azure.servicebus.aio.ServiceBusClient)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: run_sample.py SAMPLE.py\n")
        return 2
    prepare_environment()
    sys.argv = [argv[1]]
    runpy.run_path(argv[1], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
