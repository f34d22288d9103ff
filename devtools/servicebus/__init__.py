"""Local Service Bus stand-in: an AMQP 1.0 broker the real azure-servicebus client talks to.

Start it with ``python -m devtools.servicebus --port 5672 --config infra/servicebus-topology.json``
or, in tests, with :func:`devtools.servicebus.testing.running_standin`.
"""

from .server import StandinServer, StandinStartError, connection_string
from .topology import EmulatorConfig, TopologyError, load_topology, parse_topology

__all__ = [
    "EmulatorConfig",
    "StandinServer",
    "StandinStartError",
    "TopologyError",
    "connection_string",
    "load_topology",
    "parse_topology",
]
