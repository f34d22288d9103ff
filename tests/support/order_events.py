"""What ``order-status`` told the storefronts about one order, read from the end-to-end stack's
Service Bus the way a storefront reads it: the order's session on the ``storefront``
subscription."""

from __future__ import annotations

import json
from typing import Any

from azure.servicebus import ServiceBusClient

from tests.waiting import eventually


class Events:
    """Everything published on ``order-status`` for one order (its session), in order."""

    def __init__(self, bus: ServiceBusClient, order_id: str) -> None:
        self.bus, self.order_id = bus, order_id
        self.seen: list[dict[str, Any]] = []

    def drain(self, wait: float = 1.0) -> list[dict[str, Any]]:
        with self.bus.get_subscription_receiver(
            "order-status", "storefront", session_id=self.order_id, max_wait_time=wait
        ) as receiver:
            while messages := receiver.receive_messages(50, max_wait_time=wait):
                for message in messages:
                    self.seen.append(json.loads(str(message)))
                    receiver.complete_message(message)
        return self.seen

    def until(self, status: str, timeout: float = 60) -> dict[str, Any]:
        def arrived() -> dict[str, Any] | None:
            self.drain(0.5)
            return next((e for e in self.seen if e["status"] == status), None)

        return dict(eventually(arrived, timeout))
