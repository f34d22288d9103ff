"""Request counters for external suites: by entity set, method and status, plus limits."""

from __future__ import annotations

from collections import defaultdict


class Stats:
    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.requests: defaultdict[str, defaultdict[str, defaultdict[int, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        self.total = 0
        self.throttled = 0
        self.outage_refusals = 0
        self.injected_errors = 0
        self.dropped_responses = 0
        # Requests still running keep counting; they finish after the reset.
        self.in_flight_max = self.in_flight

    def arrived(self) -> None:
        # Counted before admission, so inFlightMax shows the demand a client created,
        # including requests that were then refused for exceeding maxConcurrent.
        self.in_flight += 1
        self.in_flight_max = max(self.in_flight_max, self.in_flight)

    def finished(self, entity_set: str, method: str, status: int) -> None:
        self.in_flight -= 1
        self.total += 1
        self.requests[entity_set][method][status] += 1
        if status == 429:
            self.throttled += 1

    def as_json(self) -> dict[str, object]:
        return {
            "total": self.total,
            "throttled": self.throttled,
            "outageRefusals": self.outage_refusals,
            "injectedErrors": self.injected_errors,
            "droppedResponses": self.dropped_responses,
            "inFlight": self.in_flight,
            "inFlightMax": self.in_flight_max,
            "requests": {
                entity_set: {
                    method: {str(status): count for status, count in sorted(statuses.items())}
                    for method, statuses in sorted(methods.items())
                }
                for entity_set, methods in sorted(self.requests.items())
            },
        }
