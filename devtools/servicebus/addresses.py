"""Link addresses as the client sends them, reduced to the node they name.

The Python client uses full URIs (``amqps://127.0.0.1:5672/orders``), the control nodes are
``$cbs`` and ``<entity>/$management``, and dead-letter queues are ``<entity>/$deadletterqueue``.
Service Bus compares paths case-insensitively, so everything is lower-cased here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import urlsplit

_CBS = "$cbs"
_MANAGEMENT = "$management"
_DEAD_LETTER = "$deadletterqueue"


class NodeKind(enum.Enum):
    CBS = "cbs"
    MANAGEMENT = "management"
    ENTITY = "entity"


@dataclass(frozen=True)
class NodeAddress:
    """``entity_path`` is the queue, topic or ``topic/subscriptions/name`` path, lower-cased."""

    kind: NodeKind
    entity_path: str = ""
    dead_letter: bool = False

    @property
    def display(self) -> str:
        path = self.entity_path + ("/$deadletterqueue" if self.dead_letter else "")
        if self.kind is NodeKind.MANAGEMENT:
            return path + "/$management"
        return path if self.kind is NodeKind.ENTITY else _CBS


def node_path(address: str | None) -> str:
    """The path part of an address, without scheme, host or surrounding slashes, lower-cased."""
    if not address:
        return ""
    text = address.strip()
    if "://" in text:
        text = urlsplit(text).path
    return text.strip("/").lower()


def parse_node_address(address: str | None) -> NodeAddress:
    """Classify a link address; an empty entity path means the address names nothing usable."""
    path = node_path(address)
    if path == _CBS:
        return NodeAddress(NodeKind.CBS)
    kind = NodeKind.ENTITY
    if path.endswith("/" + _MANAGEMENT):
        kind = NodeKind.MANAGEMENT
        path = path[: -len(_MANAGEMENT) - 1]
    dead_letter = False
    if path.endswith("/" + _DEAD_LETTER):
        dead_letter = True
        path = path[: -len(_DEAD_LETTER) - 1]
    return NodeAddress(kind, path, dead_letter)
