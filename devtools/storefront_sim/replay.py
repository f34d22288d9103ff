"""Signed requests already seen, kept only while their timestamp could still verify."""

from __future__ import annotations

import hashlib
import heapq
from datetime import timedelta


class ReplayCache:
    """Remembers each (channel, timestamp, signed body) once.

    Keyed on the signed bytes rather than the header text: the digest's hex case or extra
    signature entries can be changed without breaking verification, so the header text alone
    would let a replay through. An entry can be dropped once its timestamp falls outside
    the tolerance, because the signature check then refuses it anyway.
    """

    def __init__(self, tolerance: timedelta) -> None:
        self._tolerance_seconds = tolerance.total_seconds()
        self._seen: set[tuple[str, int, str]] = set()
        self._expiry: list[tuple[int, tuple[str, int, str]]] = []

    def first_time(self, channel: str, timestamp: int, body: bytes, now_seconds: int) -> bool:
        """True (and remembered) the first time; False for a replay."""
        self._forget_expired(now_seconds)
        key = (channel, timestamp, hashlib.sha256(body).hexdigest())
        if key in self._seen:
            return False
        self._seen.add(key)
        heapq.heappush(self._expiry, (timestamp, key))
        return True

    def clear(self) -> None:
        self._seen.clear()
        self._expiry.clear()

    def __len__(self) -> int:
        return len(self._seen)

    def _forget_expired(self, now_seconds: int) -> None:
        while self._expiry and self._expiry[0][0] + self._tolerance_seconds < now_seconds:
            _, key = heapq.heappop(self._expiry)
            self._seen.discard(key)
