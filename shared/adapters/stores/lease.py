"""A lease in Table storage so two runs of one job never work at the same time.

Timers run on one instance, but a slow run can overlap the next one, and an operator can start
a run by hand. The lease row is claimed with a create (409: someone has it) or, once expired,
with an ETag-conditional update (412: someone else took it first). A crashed holder's lease
simply expires, so nothing needs cleaning up.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

from shared.adapters.ports import TableStorage
from shared.adapters.tables import EntityChanged, EntityExists, EntityMissing

LEASES_TABLE = "Leases"


class LeaseHeld(RuntimeError):
    """Another run holds the lease; this run should stop without doing anything."""


class Lease:
    """A held lease; ``renew`` extends it during a long run, ``release`` ends it early."""

    def __init__(self, tables: TableStorage, job: str, owner: str, etag: str) -> None:
        self._tables = tables
        self.job = job
        self.owner = owner
        self._etag = etag

    async def renew(self, duration: timedelta) -> None:
        """Extend the lease; ``LeaseHeld`` if it was lost (expired and taken by another run)."""
        try:
            self._etag = await self._tables.update(
                LEASES_TABLE, _row(self.job, self.owner, duration), self._etag
            )
        except (EntityChanged, EntityMissing) as error:
            raise LeaseHeld(f"lease on {self.job} was lost") from error

    async def release(self) -> None:
        """Let the next run start at once instead of waiting for expiry."""
        # Already taken over or gone: then there is nothing of ours to release.
        with contextlib.suppress(EntityChanged, EntityMissing):
            await self._tables.update(
                LEASES_TABLE, _row(self.job, self.owner, timedelta(0)), self._etag
            )


def _row(job: str, owner: str, duration: timedelta) -> dict[str, object]:
    return {
        "PartitionKey": "lease",
        "RowKey": job,
        "owner": owner,
        "expiresAt": datetime.now(UTC) + duration,
    }


async def acquire(tables: TableStorage, job: str, duration: timedelta) -> Lease:
    """Take the lease on ``job`` for ``duration`` or raise ``LeaseHeld``."""
    owner = uuid.uuid4().hex
    existing = await tables.get(LEASES_TABLE, "lease", job)
    try:
        if existing is None:
            etag = await tables.create(LEASES_TABLE, _row(job, owner, duration))
        else:
            expires_at = existing.entity["expiresAt"]
            if expires_at > datetime.now(UTC):
                raise LeaseHeld(f"{job} is running elsewhere until {expires_at.isoformat()}")
            etag = await tables.update(LEASES_TABLE, _row(job, owner, duration), existing.etag)
    except (EntityExists, EntityChanged) as error:
        raise LeaseHeld(f"{job} was claimed by another run just now") from error
    return Lease(tables, job, owner, etag)
