"""A local, deterministic and deliberately strict simulator of the TikTok Marketing API v1.3.

See README.md in this package for the modelled behaviour, fault kinds and control endpoints.
"""

from .app import DEFAULT_TOKEN, SimulatorApp
from .faults import FaultPlan
from .metrics import METRICS, Kind, metrics_for_level
from .server import SimulatorServer
from .world import World

__all__ = [
    "DEFAULT_TOKEN",
    "METRICS",
    "FaultPlan",
    "Kind",
    "SimulatorApp",
    "SimulatorServer",
    "World",
    "metrics_for_level",
]
