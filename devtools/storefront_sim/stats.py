"""Webhook requests counted per channel and HTTP status, for `GET /_sim/stats`."""

from __future__ import annotations

from collections import Counter


class RequestStats:
    def __init__(self) -> None:
        self._by_channel: dict[str, Counter[int]] = {}

    def record(self, channel: str, status: int) -> None:
        self._by_channel.setdefault(channel, Counter())[status] += 1

    def clear(self) -> None:
        self._by_channel.clear()

    def to_json(self) -> dict[str, object]:
        channels = {
            name: {
                "requests": counts.total(),
                "byStatus": {str(status): n for status, n in sorted(counts.items())},
            }
            for name, counts in sorted(self._by_channel.items())
        }
        total = sum(counts.total() for counts in self._by_channel.values())
        return {"totalRequests": total, "channels": channels}
