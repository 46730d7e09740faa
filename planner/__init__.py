"""planner: the community service-scene facility planner.

Walking-distance coverage of the eight service scenes of the 15-minute community
life circle (十五分钟社区生活圈), per community, from real OpenStreetMap data.

>>> import planner
>>> analysis = planner.analyze("district.osm.pbf", communities="communities.gpkg")
>>> planner.write_analysis(analysis, "out")

The public names are imported on first use, so that ``import planner`` (and the
command line's ``--help``) does not load the scientific stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: Public name → module that defines it.
_PUBLIC = {
    "Access": "planner.access",
    "Catalogue": "planner.catalogue", "classify": "planner.catalogue",
    "load_catalogue": "planner.catalogue",
    "PlannerError": "planner.errors",
    "WalkNetwork": "planner.network", "build_network": "planner.network",
    "read_results": "planner.outputs", "write_analysis": "planner.export",
    "Analysis": "planner.pipeline", "analyze": "planner.pipeline",
    "Area": "planner.sources", "download_area": "planner.sources",
    "load_area": "planner.sources", "read_layer": "planner.sources",
}

__all__ = [
    "Access", "Analysis", "Area", "Catalogue", "PlannerError", "WalkNetwork", "analyze",
    "build_network", "classify", "download_area", "load_area", "load_catalogue",
    "read_layer", "read_results", "write_analysis",
]
__version__ = "0.1.0"

if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from planner.access import Access
    from planner.catalogue import Catalogue, classify, load_catalogue
    from planner.errors import PlannerError
    from planner.export import write_analysis
    from planner.network import WalkNetwork, build_network
    from planner.outputs import read_results
    from planner.pipeline import Analysis, analyze
    from planner.sources import Area, download_area, load_area, read_layer


def __getattr__(name: str):
    if name not in _PUBLIC:
        message = f"module 'planner' has no attribute {name!r}"
        raise AttributeError(message)
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
