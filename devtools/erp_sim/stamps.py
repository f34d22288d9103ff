"""Identity and change stamps: UUIDs, ETags and lastModifiedDateTime values.

Every write gets a new ETag and a new timestamp, as Business Central does. Timestamps use a
fixed-width ISO-8601 form (milliseconds, ``Z``) so they compare correctly as strings, which
keeps ``$filter=lastModifiedDateTime gt ...`` cheap over a million rows.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from datetime import UTC, datetime

_UUID_VERSION_MASK = ~(0xF000 << 64) & ((1 << 128) - 1)
_UUID_VARIANT_MASK = ~(0xC000 << 48) & ((1 << 128) - 1)


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (deterministic for a seeded rng)."""
    value = rng.getrandbits(128)
    value = (value & _UUID_VERSION_MASK) | (0x4000 << 64)
    value = (value & _UUID_VARIANT_MASK) | (0x8000 << 48)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def format_timestamp(moment: datetime) -> str:
    """``2026-01-31T09:15:02.123Z``: UTC, millisecond precision, fixed width."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utc_now() -> datetime:
    return datetime.now(UTC)


def etag_for_version(version: int) -> str:
    """An opaque weak ETag in Business Central's style (base64 of a quoted row version)."""
    text = str(version)
    payload = f"'{len(text)};{text};00;'".encode("ascii")
    return 'W/"' + base64.b64encode(payload).decode("ascii") + '"'


class Stamper:
    """Hands out row versions (hence ETags) and write timestamps.

    One instance per dataset, so a reset with the same seed produces the same ETags.
    """

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._version = 0
        self._clock = clock

    def next_etag(self) -> str:
        self._version += 1
        return etag_for_version(self._version)

    def now_text(self) -> str:
        return format_timestamp(self._clock())

    def now(self) -> datetime:
        return self._clock()

    def touch(self, row: dict[str, object], *, modified: bool = True) -> None:
        """Give ``row`` a new ETag and, when it has one, a new lastModifiedDateTime."""
        row["@odata.etag"] = self.next_etag()
        if modified and "lastModifiedDateTime" in row:
            row["lastModifiedDateTime"] = self.now_text()
