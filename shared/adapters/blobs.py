"""Blob storage: one container client per process, block blobs written in staged blocks.

Locally a connection string (Azurite's Blob service); in Azure the storage account's blob
endpoint with the app's managed identity (it holds Storage Blob Data Owner on the account,
infra/modules/access.bicep). A blob written in blocks becomes visible only when its block list
is committed, so a reader never sees a half-written blob; metadata is set with the commit.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock
from azure.storage.blob.aio import BlobServiceClient, ContainerClient


@dataclass(frozen=True)
class StoredBlob:
    """A blob's bytes and the metadata committed with them."""

    content: bytes
    metadata: dict[str, str]


class BlobStore:
    """One container, created on first use."""

    def __init__(self, service: BlobServiceClient, container: str) -> None:
        self._service = service
        self._container_name = container
        self._container: ContainerClient | None = None

    @classmethod
    def from_connection_string(cls, connection: str, container: str) -> BlobStore:
        return cls(BlobServiceClient.from_connection_string(connection), container)

    @classmethod
    def from_account(cls, account_name: str, credential: Any, container: str) -> BlobStore:
        endpoint = f"https://{account_name}.blob.core.windows.net"
        return cls(BlobServiceClient(account_url=endpoint, credential=credential), container)

    async def _client(self) -> ContainerClient:
        if self._container is None:
            container = self._service.get_container_client(self._container_name)
            with contextlib.suppress(ResourceExistsError):
                await container.create_container()
            self._container = container
        return self._container

    async def stage_block(self, name: str, block_id: str, data: bytes) -> None:
        client = (await self._client()).get_blob_client(name)
        await client.stage_block(block_id, data, length=len(data))

    async def commit(self, name: str, block_ids: list[str], metadata: dict[str, str]) -> None:
        """Make the staged blocks the blob's content, with ``metadata``, in one request."""
        client = (await self._client()).get_blob_client(name)
        await client.commit_block_list(
            [BlobBlock(block_id=b) for b in block_ids], metadata=metadata
        )

    async def read(self, name: str) -> StoredBlob | None:
        client = (await self._client()).get_blob_client(name)
        try:
            downloader = await client.download_blob(max_concurrency=4)
        except ResourceNotFoundError:
            return None
        content = await downloader.readall()
        metadata = dict(downloader.properties.metadata or {})
        return StoredBlob(content, metadata)

    async def delete(self, name: str) -> None:
        client = (await self._client()).get_blob_client(name)
        with contextlib.suppress(ResourceNotFoundError):
            await client.delete_blob()

    async def names(self) -> list[str]:
        return [blob.name async for blob in (await self._client()).list_blobs()]

    async def close(self) -> None:
        if self._container is not None:
            await self._container.close()
        await self._service.close()
