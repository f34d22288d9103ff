"""The order-status contract in infra/servicebus-topology.json: SessionId = order id."""

from __future__ import annotations

from devtools.servicebus.topology import load_topology
from shared.services.operations.audit.connectivity import SESSION_ENTITIES
from tests.infra.bicep import INFRA


def test_order_status_is_read_per_order_through_sessions() -> None:
    """``order-status/storefront`` requires sessions, and the connectivity audit skips peeking
    exactly the entities that require sessions (a peek would lock a consumer's session)."""
    namespace = load_topology(INFRA / "servicebus-topology.json").namespace
    sessions = {
        f"{topic.name}:{sub.name}"
        for topic in namespace.topics
        for sub in topic.subscriptions
        if sub.properties.requires_session
    } | {queue.name for queue in namespace.queues if queue.properties.requires_session}
    assert "order-status:storefront" in sessions
    assert sessions == SESSION_ENTITIES
