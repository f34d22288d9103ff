"""A storefront catalog webhook simulator for local development and tests.

It receives the product's signed catalog batches per channel, verifies signatures with the
product's own signing module, keeps each channel's catalog, records every change it applied
and can be told to be slow, down, throttling or flaky. Never imported by the product.
"""

from devtools.storefront_sim.app import create_app
from devtools.storefront_sim.channels import DEFAULT_CHANNELS
from devtools.storefront_sim.server import SimulatorServer
from devtools.storefront_sim.state import SimulatorOptions, SimulatorState

__all__ = [
    "DEFAULT_CHANNELS",
    "SimulatorOptions",
    "SimulatorServer",
    "SimulatorState",
    "create_app",
]
