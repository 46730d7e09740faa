"""Distances for a large area, tile by tile, with bounded memory.

The access stage holds one distance per network node and facility type; for a
whole city that matrix dominates memory. Here the residences are split into
square tiles, and each tile is solved on the part of the network within
``margin = largest search limit + maximum snapping distance`` of the tile.

Why no distance is cut short: a walk of length ≤ L from a residence never
leaves the disc of radius L around its snapping point (network distance is at
least the straight-line distance), and that point is within the snapping
distance of the residence; so every edge of such a walk, and the nearest edge
of every residence in the tile, intersects the tile grown by the margin.
Facilities near the border of the grown tile may snap differently there, but
they lie further than L from every residence of the tile, so they cannot
produce a distance within the limit. The tiled distances therefore equal the
untiled ones (``tests/test_tiling.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import shapely

from planner import settings
from planner.access import Access
from planner.network import WalkNetwork


def subset_network(network: WalkNetwork, edges: np.ndarray) -> WalkNetwork:
    """The network made of the given edge indices, nodes renumbered."""
    edges = np.sort(np.asarray(edges, dtype=np.int64))
    used = np.union1d(network.edge_u[edges], network.edge_v[edges])
    renumber = np.full(network.n_nodes, -1, dtype=np.int64)
    renumber[used] = np.arange(len(used))
    return WalkNetwork(
        node_ids=network.node_ids[used], node_xy=network.node_xy[used],
        edge_u=renumber[network.edge_u[edges]], edge_v=renumber[network.edge_v[edges]],
        edge_length_m=network.edge_length_m[edges], crs=network.crs,
        edge_name=None if network.edge_name is None else network.edge_name[edges],
        edge_highway=None if network.edge_highway is None else network.edge_highway[edges],
        edge_grade_separated=None if network.edge_grade_separated is None
        else network.edge_grade_separated[edges])


def tile_bounds(points_xy: np.ndarray, tile_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Tile index of every point and the ``(k, 4)`` bounds of the occupied tiles."""
    origin = np.floor(points_xy.min(axis=0) / tile_m) * tile_m
    cell = np.floor((points_xy - origin) / tile_m).astype(np.int64)
    occupied, tile_of_point = np.unique(cell, axis=0, return_inverse=True)
    lower = origin + occupied * tile_m
    return tile_of_point.ravel(), np.column_stack([lower, lower + tile_m])


def tiled_point_distances(network: WalkNetwork, facility_points, facility_type,
                          limits_m: Mapping[str, float], points, tile_m: float) -> np.ndarray:
    """Like ``Access(...).point_distances(points)``, solved tile by tile.

    Parameters
    ----------
    network, facility_points, facility_type, limits_m
        As for :class:`planner.access.Access`.
    points
        Shapely points (array or GeoSeries) in the network's CRS.
    tile_m
        Side of the square tiles, metres.

    Returns
    -------
    numpy.ndarray
        ``(n_points, n_types)`` metres, NaN beyond the limit, as untiled.
    """
    points = np.asarray(getattr(points, "values", points), dtype=object)
    facility_points = np.asarray(getattr(facility_points, "values", facility_points),
                                 dtype=object)
    facility_type = np.asarray(facility_type, dtype=object)
    result = np.full((len(points), len(limits_m)), np.nan)
    if len(points) == 0:
        return result
    margin = max(limits_m.values(), default=0.0) + settings.max_snap_distance_m
    tile_of_point, bounds = tile_bounds(shapely.get_coordinates(points), tile_m)
    edge_tree = shapely.STRtree(network.edge_geometry)
    facility_tree = shapely.STRtree(facility_points)
    for tile, (xmin, ymin, xmax, ymax) in enumerate(bounds):
        grown = shapely.box(xmin - margin, ymin - margin, xmax + margin, ymax + margin)
        edges = edge_tree.query(grown, predicate="intersects")
        if len(edges) == 0:
            continue
        inside = np.flatnonzero(tile_of_point == tile)
        nearby = np.sort(facility_tree.query(grown, predicate="intersects"))
        access = Access(subset_network(network, edges), facility_points[nearby],
                        facility_type[nearby], limits_m)
        result[inside] = access.point_distances(points[inside])
    return result
