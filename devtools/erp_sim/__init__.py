"""A Business Central-shaped ERP simulator for local development and tests.

It speaks the URL layout, entity shapes, paging, ETags, limits and error envelopes of
Business Central's API v2.0 and of the product's custom API pages, so the product's ERP
client needs only a different base URL to talk to a real tenant. Never imported by the
product itself.
"""

from devtools.erp_sim.app import create_app
from devtools.erp_sim.state import SimulatorOptions, SimulatorState

__all__ = ["SimulatorOptions", "SimulatorState", "create_app"]
