"""Table storage: one service client per process, table clients reused, keys encoded.

The product's state (idempotency keys, projections, published prices, watermarks) lives here.
Callers pass business identifiers as PartitionKey/RowKey; this layer encodes them on the way
in and decodes them on the way out, so ``AB/12#3`` works everywhere without callers thinking
about it. Conditional writes surface as named exceptions so services can retry on conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import EdmType, EntityProperty, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.adapters.table_keys import decode_key, encode_key
from shared.adapters.table_rest import (
    BatchOperation,
    Int64,
    RestStatusError,
    TableRestClient,
    substitute,
)

MAX_BATCH_OPERATIONS = 100
MAX_BATCH_BYTES = 4 * 1024 * 1024
# Headroom for the multipart envelope around each operation in a transaction.
_OPERATION_OVERHEAD_BYTES = 512

Entity = dict[str, Any]
OperationKind = Literal["create", "upsert", "update", "delete"]


class TableStoreError(RuntimeError):
    """Base for storage failures the services handle."""


class EntityExists(TableStoreError):
    """Create failed because the row exists (409): someone else holds the claim."""


class EntityChanged(TableStoreError):
    """A conditional write failed because the ETag no longer matches (412)."""


class EntityMissing(TableStoreError):
    """The row to update or delete does not exist."""


class TransactionFailed(TableStoreError):
    """An entity-group transaction was rejected; none of its operations were applied."""


@dataclass(frozen=True)
class Row:
    """An entity with decoded keys and the ETag needed for a conditional write."""

    entity: Entity
    etag: str

    @property
    def partition_key(self) -> str:
        return str(self.entity["PartitionKey"])

    @property
    def row_key(self) -> str:
        return str(self.entity["RowKey"])


@dataclass(frozen=True)
class TableOperation:
    """One operation of an entity-group transaction (keys are business identifiers)."""

    kind: OperationKind
    entity: Entity
    etag: str | None = None
    mode: UpdateMode = field(default=UpdateMode.REPLACE)

    @property
    def partition_key(self) -> str:
        return str(self.entity["PartitionKey"])

    def estimated_bytes(self) -> int:
        return len(json.dumps(self.entity, default=str).encode("utf-8")) + _OPERATION_OVERHEAD_BYTES


def chunk_operations(operations: Iterable[TableOperation]) -> list[list[TableOperation]]:
    """Split operations into transactions: one partition each, <= 100 operations, <= 4 MiB.

    Order within a partition is kept. Only each chunk is atomic, so callers that need one
    all-or-nothing write must keep it within a single chunk.
    """
    by_partition: dict[str, list[TableOperation]] = {}
    for operation in operations:
        by_partition.setdefault(operation.partition_key, []).append(operation)
    chunks: list[list[TableOperation]] = []
    for partition_ops in by_partition.values():
        current: list[TableOperation] = []
        size = 0
        for operation in partition_ops:
            op_size = operation.estimated_bytes()
            if op_size > MAX_BATCH_BYTES:
                raise ValueError("a single table operation is larger than a transaction allows")
            if current and (
                len(current) == MAX_BATCH_OPERATIONS or size + op_size > MAX_BATCH_BYTES
            ):
                chunks.append(current)
                current, size = [], 0
            current.append(operation)
            size += op_size
        if current:
            chunks.append(current)
    return chunks


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ValueOutOfRange(ValueError):
    """An integer that Table storage's widest integer type (Int64) cannot hold."""


def _encode_value(name: str, value: Any, lean: bool = False) -> Any:
    """Integers go out as Int64, whatever their size: a plain int would go as Int32 and a
    sequence number past 2^31 be refused (contracts allow up to 2^63 - 1).

    ``lean``: marked for the lean REST client (``Int64``) instead of the SDK."""
    if type(value) is str or isinstance(value, bool) or not isinstance(value, int):
        return value
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueOutOfRange(f"property {name!r}: {value} does not fit Table storage's Int64")
    return Int64(value) if lean else EntityProperty(value, EdmType.INT64)


def _decode_value(value: Any) -> Any:
    """Int64 properties come back as plain ints, like Int32 ones."""
    if isinstance(value, EntityProperty) and value.edm_type == EdmType.INT64:
        return int(value.value)
    return value


def _encode_entity(entity: Mapping[str, Any], lean: bool = False) -> Entity:
    encoded = {name: _encode_value(name, value, lean) for name, value in entity.items()}
    encoded["PartitionKey"] = encode_key(str(entity["PartitionKey"]))
    encoded["RowKey"] = encode_key(str(entity["RowKey"]))
    return encoded


def _lean_row(entity: Entity, etag: str) -> Row:
    entity["PartitionKey"] = decode_key(entity["PartitionKey"])
    entity["RowKey"] = decode_key(entity["RowKey"])
    return Row(entity=entity, etag=etag)


def _to_row(entity: Any) -> Row:
    data = {name: _decode_value(value) for name, value in dict(entity).items()}
    data["PartitionKey"] = decode_key(data["PartitionKey"])
    data["RowKey"] = decode_key(data["RowKey"])
    return Row(entity=data, etag=entity.metadata["etag"])


# What aiohttp reads from the environment when it trusts it (proxies, .netrc credentials).
_ENVIRONMENT_SETTINGS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "WS_PROXY", "WSS_PROXY", "NETRC")


def _transport() -> AioHttpTransport:
    """The SDK's aiohttp transport, trusting the environment only when it says something.

    With ``trust_env`` aiohttp looks for proxy settings and a ``.netrc`` on every request, in
    the thread pool (two executor hops and a file lookup per request: about a third of the
    client's CPU per Table request). Where no proxy or netrc variable is set there is nothing
    to find, so the lookup is skipped; set one and it is honoured as before.
    """
    names = {name.upper() for name in os.environ}
    use_env = any(name in names for name in _ENVIRONMENT_SETTINGS)
    return AioHttpTransport(use_env_settings=use_env)


def _etag_of(result: Mapping[str, Any]) -> str:
    return str(result.get("etag", ""))


class TableStore:
    """Reused table clients over one ``TableServiceClient``.

    Tables are created on first use (once per process) so a fresh Azurite or storage account
    needs no set-up step. ``prefix`` isolates environments or test runs sharing one account.
    """

    def __init__(
        self,
        service: TableServiceClient,
        prefix: str = "",
        rest: TableRestClient | None = None,
        *,
        rest_for_updates_only: bool = False,
    ) -> None:
        self._service = service
        self._prefix = prefix
        # Entity operations go through the lean REST client when there is one (the SDK
        # only creates tables); ``rest_for_updates_only`` is the earlier routing (only
        # conditional updates), kept for the stock benchmark's side by side.
        self._rest = rest
        self._lean = None if rest_for_updates_only else rest
        self._clients: dict[str, TableClient] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def from_connection_string(cls, connection: str, prefix: str = "") -> TableStore:
        return cls(
            TableServiceClient.from_connection_string(connection, transport=_transport()),
            prefix,
            TableRestClient.from_connection_string(connection),
        )

    @classmethod
    def from_account(cls, account_name: str, credential: Any, prefix: str = "") -> TableStore:
        endpoint = f"https://{account_name}.table.core.windows.net"
        return cls(
            TableServiceClient(endpoint=endpoint, credential=credential, transport=_transport()),
            prefix,
            TableRestClient(endpoint, account_name, credential=credential),
        )

    def table_name(self, name: str) -> str:
        return f"{self._prefix}{name}"

    async def client(self, name: str) -> TableClient:
        """The reused client for a table, creating the table the first time it is asked for."""
        client = self._clients.get(name)
        if client is not None:
            return client
        async with self._lock:
            client = self._clients.get(name)
            if client is None:
                full_name = self.table_name(name)
                with contextlib.suppress(ResourceExistsError):
                    await self._service.create_table(full_name)
                client = self._service.get_table_client(full_name)
                self._clients[name] = client
        return client

    async def get(self, table: str, partition_key: str, row_key: str) -> Row | None:
        client = await self.client(table)
        if self._lean is not None:
            found = await self._lean.get(
                self.table_name(table), encode_key(partition_key), encode_key(row_key)
            )
            return None if found is None else _lean_row(*found)
        try:
            entity = await client.get_entity(encode_key(partition_key), encode_key(row_key))
        except ResourceNotFoundError:
            return None
        return _to_row(entity)

    async def create(self, table: str, entity: Mapping[str, Any]) -> str:
        """Insert a new row; ``EntityExists`` if it is already there (an atomic claim)."""
        client = await self.client(table)
        if self._lean is not None:
            try:
                return await self._lean.create(self.table_name(table), _encode_entity(entity, True))
            except RestStatusError as error:
                if error.status == 409:
                    raise EntityExists(f"{table}: row exists") from error
                raise
        try:
            result = await client.create_entity(_encode_entity(entity))
        except ResourceExistsError as error:
            raise EntityExists(f"{table}: row exists") from error
        return _etag_of(result)

    async def upsert(
        self, table: str, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.REPLACE
    ) -> str:
        """Last-writer-wins write; only for rows this process owns outright."""
        client = await self.client(table)
        if self._lean is not None:
            return await self._lean.update(
                self.table_name(table),
                _encode_entity(entity, True),
                None,
                merge=mode == UpdateMode.MERGE,
            )
        result = await client.upsert_entity(_encode_entity(entity), mode=mode)
        return _etag_of(result)

    async def update(
        self,
        table: str,
        entity: Mapping[str, Any],
        etag: str,
        mode: UpdateMode = UpdateMode.REPLACE,
    ) -> str:
        """Write only if the row still has ``etag``; ``EntityChanged`` otherwise."""
        client = await self.client(table)
        if self._rest is not None:
            try:
                return await self._rest.update(
                    self.table_name(table),
                    _encode_entity(entity, self._lean is not None),
                    etag,
                    merge=mode == UpdateMode.MERGE,
                )
            except RestStatusError as error:
                if error.status == 412:
                    raise EntityChanged(f"{table}: row changed since it was read") from error
                if error.status == 404:
                    raise EntityMissing(f"{table}: row is gone") from error
                raise
        try:
            result = await client.update_entity(
                _encode_entity(entity),
                mode=mode,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError as error:
            raise EntityChanged(f"{table}: row changed since it was read") from error
        except ResourceNotFoundError as error:
            raise EntityMissing(f"{table}: row is gone") from error
        return _etag_of(result)

    async def delete(
        self, table: str, partition_key: str, row_key: str, etag: str | None = None
    ) -> None:
        """Delete a row (conditionally when ``etag`` is given); a missing row is not an error."""
        client = await self.client(table)
        if self._lean is not None:
            try:
                await self._lean.delete(
                    self.table_name(table),
                    encode_key(partition_key),
                    encode_key(row_key),
                    etag or "*",
                )
            except RestStatusError as error:
                if error.status == 412:
                    raise EntityChanged(f"{table}: row changed since it was read") from error
                if error.status != 404:
                    raise
            return
        kwargs: dict[str, Any] = {}
        if etag is not None:
            kwargs = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            await client.delete_entity(encode_key(partition_key), encode_key(row_key), **kwargs)
        except ResourceModifiedError as error:
            raise EntityChanged(f"{table}: row changed since it was read") from error

    async def query(
        self,
        table: str,
        filter_text: str,
        parameters: Mapping[str, Any] | None = None,
        select: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Row]:
        """Rows matching an OData filter; key values in ``parameters`` must be pre-encoded."""
        client = await self.client(table)
        if self._lean is not None:
            found = self._lean.query(
                self.table_name(table),
                substitute(filter_text, parameters),
                select=select,
                page_size=page_size,
            )
            async for entity, etag in found:
                yield _lean_row(entity, etag)
            return
        pages = client.query_entities(
            filter_text,
            parameters=dict(parameters or {}),
            select=list(select) if select else None,
            results_per_page=page_size,
        )
        async for entity in pages:
            yield _to_row(entity)

    def partition(self, table: str, partition_key: str) -> AsyncIterator[Row]:
        """Every row of one partition."""
        return self.query(table, "PartitionKey eq @pk", {"pk": encode_key(partition_key)})

    async def all_rows(
        self, table: str, page_size: int = 1000, select: Sequence[str] | None = None
    ) -> AsyncIterator[Row]:
        """Every row of the table, page by page, never all in memory."""
        client = await self.client(table)
        if self._lean is not None:
            found = self._lean.query(
                self.table_name(table), None, select=select, page_size=page_size
            )
            async for entity, etag in found:
                yield _lean_row(entity, etag)
            return
        entities = client.list_entities(
            results_per_page=page_size, select=list(select) if select else None
        )
        async for entity in entities:
            yield _to_row(entity)

    async def transact(
        self, table: str, operations: Iterable[TableOperation], concurrency: int = 1
    ) -> int:
        """Apply operations as entity-group transactions (chunked); returns how many ran.

        Each chunk is all-or-nothing; chunks of different partitions run up to ``concurrency``
        at a time. A failing chunk raises ``TransactionFailed`` (or ``EntityChanged`` /
        ``EntityExists`` when that was the cause); chunks already sent stay applied.
        """
        client = await self.client(table)
        chunks = chunk_operations(operations)
        if concurrency <= 1 or len(chunks) <= 1:
            for chunk in chunks:
                await self._submit(client, table, chunk)
        else:
            gate = asyncio.Semaphore(concurrency)

            async def submit(chunk: list[TableOperation]) -> None:
                async with gate:
                    await self._submit(client, table, chunk)

            await asyncio.gather(*(submit(chunk) for chunk in chunks))
        return sum(len(chunk) for chunk in chunks)

    async def _submit(self, client: TableClient, table: str, chunk: list[TableOperation]) -> None:
        if self._lean is not None:
            await self._submit_lean(self._lean, table, chunk)
            return
        batch: list[Any] = []
        for operation in chunk:
            entity = _encode_entity(operation.entity)
            if operation.kind == "delete":
                entity = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}
            options: dict[str, Any] = {}
            if operation.kind in ("update", "delete") and operation.etag:
                options = {"etag": operation.etag, "match_condition": MatchConditions.IfNotModified}
            if operation.kind in ("upsert", "update"):
                options["mode"] = operation.mode
            batch.append((operation.kind, entity, options))
        try:
            await client.submit_transaction(batch)
        except TableTransactionError as error:
            raise _transaction_error(table, error) from error
        except HttpResponseError as error:
            raise TransactionFailed(f"{table}: transaction rejected: {error.message}") from error

    async def _submit_lean(
        self, rest: TableRestClient, table: str, chunk: list[TableOperation]
    ) -> None:
        operations = []
        for operation in chunk:
            entity = _encode_entity(operation.entity, True)
            if operation.kind == "delete":
                entity = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}
            operations.append(
                BatchOperation(
                    operation.kind,
                    entity,
                    operation.etag,
                    merge=operation.mode == UpdateMode.MERGE,
                )
            )
        try:
            await rest.transact(self.table_name(table), operations)
        except RestStatusError as error:
            if error.status == 412 or error.code == "UpdateConditionNotSatisfied":
                raise EntityChanged(
                    f"{table}: a row in the transaction changed since it was read"
                ) from error
            if error.status == 409 or error.code == "EntityAlreadyExists":
                raise EntityExists(f"{table}: a row in the transaction already exists") from error
            raise TransactionFailed(f"{table}: transaction rejected: {error}") from error

    async def delete_table(self, name: str) -> None:
        """Drop a table (tests and resets only)."""
        self._clients.pop(name, None)
        await self._service.delete_table(self.table_name(name))

    async def list_tables(self) -> list[str]:
        return [table.name async for table in self._service.list_tables()]

    async def close(self) -> None:
        if self._rest is not None:
            await self._rest.close()
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        await self._service.close()


def _transaction_error(table: str, error: TableTransactionError) -> TableStoreError:
    code = str(getattr(error, "error_code", "") or "")
    if error.status_code == 412 or code == "UpdateConditionNotSatisfied":
        return EntityChanged(f"{table}: a row in the transaction changed since it was read")
    if error.status_code == 409 or code == "EntityAlreadyExists":
        return EntityExists(f"{table}: a row in the transaction already exists")
    return TransactionFailed(f"{table}: transaction rejected: {error.message}")
