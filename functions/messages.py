"""What every Service Bus trigger shares: body parsing and the dead-letter signal.

A message that can never succeed (unparseable, unknown kind) must reach the dead-letter queue
at once with a reason instead of burning ten deliveries. Handlers raise ``DeadLetter``; the
local runner settles such a message as dead-lettered with that reason and description.
"""

from __future__ import annotations

from typing import TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from shared.json_input import JsonRejected, read_json

Model = TypeVar("Model", bound=BaseModel)


class DeadLetter(Exception):
    """Settle this message as dead-lettered: retrying cannot help."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason
        self.description = description[:1024]


def parse_message(message: func.ServiceBusMessage, model: type[Model]) -> Model:
    """Validate a JSON message body, or raise ``DeadLetter`` naming what is wrong."""
    try:
        data = read_json(message.get_body())
    except JsonRejected as refused:
        raise DeadLetter("InvalidJson", f"body refused: {refused}") from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}"
            for item in error.errors(include_url=False)
        )
        raise DeadLetter("InvalidMessage", problems) from None


def delivery_count_of(message: func.ServiceBusMessage) -> int:
    """1 on the first delivery, as the Functions host reports it."""
    return int(message.delivery_count or 1)
