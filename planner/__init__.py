"""planner: the community service-scene facility planner.

Walking-distance coverage of the eight service scenes of the 15-minute community
life circle (十五分钟社区生活圈), per community, from real OpenStreetMap data.

>>> import planner
>>> analysis = planner.analyze("district.osm.pbf", communities="communities.gpkg")
>>> planner.write_analysis(analysis, "out")
"""

from planner.access import Access
from planner.catalogue import Catalogue, classify, load_catalogue
from planner.errors import PlannerError
from planner.network import WalkNetwork, build_network
from planner.outputs import read_results, write_analysis
from planner.pipeline import Analysis, analyze
from planner.sources import Area, download_area, load_area, read_layer

__all__ = [
    "Access", "Analysis", "Area", "Catalogue", "PlannerError", "WalkNetwork", "analyze",
    "build_network", "classify", "download_area", "load_area", "load_catalogue",
    "read_layer", "read_results", "write_analysis",
]
__version__ = "0.1.0"
