"""The walking network as arrays: an undirected CSR matrix plus snapping.

Nodes are numbered ``0 .. n-1``; every edge is a straight segment between its
two nodes, so an offset along an edge is a distance in metres. Points
(residences, facilities, candidate sites) are snapped onto their nearest edge,
not their nearest node: a point in the middle of a long block is not moved to
a far corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy import sparse
from scipy.sparse import csgraph

from planner import settings
from planner.errors import PlannerError
from planner.sources import Area


@dataclass(frozen=True)
class Snap:
    """Where points meet the network.

    Attributes
    ----------
    edge
        Index of the nearest edge per point (-1 where the point is too far).
    offset_m
        Distance along the edge from its ``u`` end, metres.
    access_m
        Straight-line distance from the point to the edge, metres.
    """

    edge: np.ndarray
    offset_m: np.ndarray
    access_m: np.ndarray

    @property
    def snapped(self) -> np.ndarray:
        """Mask of points that lie on the network."""
        return self.edge >= 0


@dataclass
class WalkNetwork:
    """An undirected walking graph in a metric CRS.

    Attributes
    ----------
    node_ids
        OSM id per node index.
    node_xy
        ``(n, 2)`` node coordinates, metres.
    edge_u, edge_v
        Node index of each edge's two ends (``edge_u < edge_v``; one edge per pair).
    edge_length_m
        Edge length, metres (the shortest segment where OSM had parallel ones).
    crs
        The metric CRS.
    """

    node_ids: np.ndarray
    node_xy: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    crs: CRS
    edge_name: np.ndarray | None = None
    edge_highway: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._tree: shapely.STRtree | None = None
        self._csr: sparse.csr_matrix | None = None

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        return len(self.edge_u)

    @property
    def edge_geometry(self) -> np.ndarray:
        """Segments ``u → v`` as shapely LineStrings."""
        coords = np.stack([self.node_xy[self.edge_u], self.node_xy[self.edge_v]], axis=1)
        return shapely.linestrings(coords)

    @property
    def csr(self) -> sparse.csr_matrix:
        """Symmetric ``n × n`` adjacency with lengths in metres."""
        if self._csr is None:
            self._csr = symmetric_csr(self.edge_u, self.edge_v, self.edge_length_m,
                                      self.n_nodes)
        return self._csr

    def snap(self, points, max_distance_m: float | None = None) -> Snap:
        """Snap points onto their nearest edge.

        Parameters
        ----------
        points
            Shapely points (array or GeoSeries) in the network's CRS.
        max_distance_m
            Points further from every edge stay unsnapped (``edge == -1``);
            :data:`planner.settings.max_snap_distance_m` when omitted.
        """
        limit = settings.max_snap_distance_m if max_distance_m is None else max_distance_m
        geoms = np.asarray(getattr(points, "values", points), dtype=object)
        n_points = len(geoms)
        edge = np.full(n_points, -1, dtype=np.int64)
        offset_m = np.zeros(n_points)
        access_m = np.full(n_points, np.nan)
        if n_points == 0 or self.n_edges == 0:
            return Snap(edge, offset_m, access_m)
        if self._tree is None:
            self._tree = shapely.STRtree(self.edge_geometry)
        point_index, edge_index = self._tree.query_nearest(
            geoms, max_distance=limit, all_matches=False)
        # query_nearest returns ties in tree order; keep the first per point
        first = np.unique(point_index, return_index=True)[1]
        point_index, edge_index = point_index[first], edge_index[first]
        u_xy = self.node_xy[self.edge_u[edge_index]]
        v_xy = self.node_xy[self.edge_v[edge_index]]
        xy = shapely.get_coordinates(geoms[point_index])
        along = v_xy - u_xy
        seg_len2 = np.einsum("ij,ij->i", along, along)
        t = np.where(seg_len2 > 0, np.einsum("ij,ij->i", xy - u_xy, along)
                     / np.where(seg_len2 > 0, seg_len2, 1), 0.0)
        t = np.clip(t, 0.0, 1.0)
        foot = u_xy + t[:, None] * along
        edge[point_index] = edge_index
        offset_m[point_index] = t * self.edge_length_m[edge_index]
        access_m[point_index] = np.hypot(*(xy - foot).T)
        return Snap(edge, offset_m, access_m)

    def edges_frame(self) -> gpd.GeoDataFrame:
        """Edges as a GeoDataFrame (``u``, ``v`` as OSM ids, ``length_m``)."""
        frame = {"u": self.node_ids[self.edge_u], "v": self.node_ids[self.edge_v],
                 "length_m": np.round(self.edge_length_m, 2)}
        if self.edge_highway is not None:
            frame["highway"] = self.edge_highway
        if self.edge_name is not None:
            frame["name"] = self.edge_name
        return gpd.GeoDataFrame(frame, geometry=self.edge_geometry, crs=self.crs)


def symmetric_csr(u: np.ndarray, v: np.ndarray, length_m: np.ndarray,
                  n_nodes: int) -> sparse.csr_matrix:
    """Undirected CSR adjacency keeping the minimum length per node pair.

    COO→CSR conversion *adds* duplicate entries, so duplicates are reduced to
    their minimum first; zero lengths are raised to
    :data:`planner.settings.min_edge_length_m` because csgraph reads an explicit
    zero as "no edge".
    """
    rows = np.concatenate([u, v]).astype(np.int64)
    cols = np.concatenate([v, u]).astype(np.int64)
    weights = np.maximum(np.concatenate([length_m, length_m]), settings.min_edge_length_m)
    key = rows * n_nodes + cols
    order = np.lexsort((weights, key))
    key, weights = key[order], weights[order]
    keep = np.ones(len(key), dtype=bool)
    keep[1:] = key[1:] != key[:-1]
    key, weights = key[keep], weights[keep]
    return sparse.csr_matrix((weights, (key // n_nodes, key % n_nodes)),
                             shape=(n_nodes, n_nodes))


def build_network(area: Area, *, largest_component: bool = True) -> WalkNetwork:
    """Build the walking network of an area.

    Parallel segments collapse to the shortest; self-loops are dropped. With
    ``largest_component`` (the default) only the largest connected component
    is kept: fragments cut off at the extract's edge or inside closed
    compounds would otherwise trap the residences snapped to them.

    Raises
    ------
    PlannerError
        When no walkable edge is left.
    """
    edges = area.edges
    node_ids = area.nodes.index.to_numpy(np.int64)
    position = pd.Index(node_ids)
    u = position.get_indexer(edges["u"].to_numpy(np.int64))
    v = position.get_indexer(edges["v"].to_numpy(np.int64))
    keep = (u >= 0) & (v >= 0) & (u != v)
    u, v = u[keep], v[keep]
    highway = edges["highway"].to_numpy(object)[keep]
    name = edges["name"].to_numpy(object)[keep] if "name" in edges else None
    xy = area.nodes[["x", "y"]].to_numpy(float)
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    # one edge per pair: geometry is the straight segment, so duplicates are equal
    pair = lo.astype(np.int64) * len(node_ids) + hi
    _, first = np.unique(pair, return_index=True)
    lo, hi, highway = lo[first], hi[first], highway[first]
    name = name[first] if name is not None else None
    if len(lo) == 0:
        raise PlannerError("no walkable ways in the area")
    if largest_component:
        adjacency = sparse.coo_matrix((np.ones(len(lo)), (lo, hi)),
                                      shape=(len(node_ids), len(node_ids)))
        _, labels = csgraph.connected_components(adjacency, directed=False)
        used = np.zeros(len(node_ids), dtype=bool)
        used[lo] = used[hi] = True
        counts = np.bincount(labels[used], minlength=labels.max() + 1)
        main = np.argmax(counts)
        on_main = labels[lo] == main
        lo, hi, highway = lo[on_main], hi[on_main], highway[on_main]
        name = name[on_main] if name is not None else None
    used_nodes = np.union1d(lo, hi)
    renumber = np.full(len(node_ids), -1, dtype=np.int64)
    renumber[used_nodes] = np.arange(len(used_nodes))
    xy = xy[used_nodes]
    lo, hi = renumber[lo], renumber[hi]
    length_m = np.hypot(*(xy[hi] - xy[lo]).T)
    return WalkNetwork(node_ids=node_ids[used_nodes], node_xy=xy, edge_u=lo, edge_v=hi,
                       edge_length_m=np.maximum(length_m, settings.min_edge_length_m),
                       crs=area.crs, edge_name=name, edge_highway=highway)
