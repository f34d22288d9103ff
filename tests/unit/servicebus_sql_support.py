"""A message for the SQL evaluator made of plain dicts, so the rules are tested without AMQP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DictMessage:
    system_properties: dict[str, Any] = field(default_factory=dict)
    user_properties: dict[str, Any] = field(default_factory=dict)

    def system(self, name: str) -> Any:
        return self.system_properties.get(name)

    def has_user(self, name: str) -> bool:
        return name in self.user_properties

    def user(self, name: str) -> Any:
        return self.user_properties.get(name)

    def set_system(self, name: str, value: Any) -> None:
        self.system_properties[name] = value

    def set_user(self, name: str, value: Any) -> None:
        self.user_properties[name] = value

    def remove_user(self, name: str) -> None:
        self.user_properties.pop(name, None)
