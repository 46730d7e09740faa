"""Walking distance to the nearest facility of every type.

One bounded multi-source Dijkstra per facility type
(``scipy.sparse.csgraph.dijkstra(indices=<all facilities of the type>,
min_only=True, limit=<search limit>)``) on the walking graph augmented with one
virtual node per facility: a facility snapped onto edge (u, v) at offset s is
joined to u by ``access + s`` and to v by ``access + length − s``. Virtual
nodes have degree two and their detour is never shorter than the edge itself,
so they add no shortcut.

A point (residence, candidate site) snapped onto edge (u, v) at offset r with
access leg a is at ``a + min(d[u] + r, d[v] + length − r)``; a facility of the
same type on the same edge is also reached directly along it.
Distances beyond the search limit are NaN: unreachable is explicit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.sparse.csgraph import dijkstra

from planner.network import Snap, WalkNetwork, symmetric_csr


class Access:
    """Nearest-facility distances on a walking network, per facility type.

    Parameters
    ----------
    network
        The walking network.
    facility_points
        Facility locations (shapely points in the network's CRS), one per
        (facility, type) pair.
    facility_type
        The type id of each point.
    limits_m
        Search limit per type id, metres; every type to report must appear,
        also those without facilities (their distances are all NaN).

    Examples
    --------
    >>> access = Access(network, points, type_ids, {"kindergarten": 600}).solve()
    >>> access.point_distances(residence_points)          # (n_points, n_types), metres
    """

    def __init__(self, network: WalkNetwork, facility_points, facility_type: Sequence[str],
                 limits_m: Mapping[str, float]) -> None:
        self.network = network
        self.type_ids = list(limits_m)
        self.limits_m = np.array([float(limits_m[type_id]) for type_id in self.type_ids])
        self.facility_type = np.asarray(facility_type, dtype=object)
        self.facility_snap = network.snap(facility_points)
        self.node_distance_m: np.ndarray | None = None
        self._graph = self._augmented_graph()

    @property
    def n_facilities_snapped(self) -> int:
        return int(self.facility_snap.snapped.sum())

    def _augmented_graph(self):
        net, snap = self.network, self.facility_snap
        on_net = np.flatnonzero(snap.snapped)
        virtual = net.n_nodes + np.arange(len(self.facility_type))
        edge = snap.edge[on_net]
        to_u = snap.access_m[on_net] + snap.offset_m[on_net]
        to_v = snap.access_m[on_net] + net.edge_length_m[edge] - snap.offset_m[on_net]
        u = np.concatenate([net.edge_u, virtual[on_net], virtual[on_net]])
        v = np.concatenate([net.edge_v, net.edge_u[edge], net.edge_v[edge]])
        length = np.concatenate([net.edge_length_m, to_u, to_v])
        return symmetric_csr(u, v, length, net.n_nodes + len(self.facility_type))

    def sources(self, type_id: str) -> np.ndarray:
        """Virtual-node indices of the snapped facilities of one type."""
        mask = (self.facility_type == type_id) & self.facility_snap.snapped
        return self.network.n_nodes + np.flatnonzero(mask)

    def solve(self) -> Access:
        """Run one bounded multi-source Dijkstra per type; fills :attr:`node_distance_m`."""
        n_nodes = self.network.n_nodes
        distance = np.full((n_nodes, len(self.type_ids)), np.inf)
        for column, (type_id, limit) in enumerate(zip(self.type_ids, self.limits_m,
                                                      strict=True)):
            sources = self.sources(type_id)
            if len(sources) == 0:
                continue
            reached = dijkstra(self._graph, directed=True, indices=sources, min_only=True,
                               limit=limit)
            distance[:, column] = reached[:n_nodes]
        self.node_distance_m = distance
        return self

    def point_distances(self, points=None, *, snap: Snap | None = None) -> np.ndarray:
        """Distance from points to the nearest facility of every type.

        Parameters
        ----------
        points
            Shapely points in the network's CRS (or give ``snap``).
        snap
            A precomputed :meth:`WalkNetwork.snap` of the points.

        Returns
        -------
        numpy.ndarray
            ``(n_points, n_types)`` metres, in the order of :attr:`type_ids`;
            NaN beyond the type's search limit or for points off the network.
        """
        if self.node_distance_m is None:
            self.solve()
        net = self.network
        if snap is None:
            snap = net.snap(points)
        n_points = len(snap.edge)
        result = np.full((n_points, len(self.type_ids)), np.inf)
        on_net = np.flatnonzero(snap.snapped)
        edge = snap.edge[on_net]
        offset = snap.offset_m[on_net]
        via_u = self.node_distance_m[net.edge_u[edge]] + offset[:, None]
        via_v = self.node_distance_m[net.edge_v[edge]] + (
            net.edge_length_m[edge] - offset)[:, None]
        result[on_net] = np.minimum(via_u, via_v) + snap.access_m[on_net, None]
        self._same_edge(snap, on_net, result)
        result[result > self.limits_m[None, :]] = np.nan
        return result

    def _same_edge(self, snap: Snap, on_net: np.ndarray, result: np.ndarray) -> None:
        """Lower distances where a facility lies on the same edge as the point."""
        facilities = self.facility_snap
        snapped = np.flatnonzero(facilities.snapped)
        if len(snapped) == 0 or len(on_net) == 0:
            return
        column = pd.Index(self.type_ids).get_indexer(self.facility_type[snapped])
        fac = pd.DataFrame({"edge": facilities.edge[snapped],
                            "fac_offset": facilities.offset_m[snapped],
                            "fac_access": facilities.access_m[snapped], "column": column})
        fac = fac[fac["column"] >= 0]
        pts = pd.DataFrame({"edge": snap.edge[on_net], "offset": snap.offset_m[on_net],
                            "access": snap.access_m[on_net], "row": on_net})
        pts = pts[pts["edge"].isin(fac["edge"])]
        if len(pts) == 0:
            return
        pairs = pts.merge(fac, on="edge")
        direct = (np.abs(pairs["offset"] - pairs["fac_offset"]) + pairs["access"]
                  + pairs["fac_access"]).to_numpy()
        rows, columns = pairs["row"].to_numpy(), pairs["column"].to_numpy()
        np.minimum.at(result, (rows, columns), direct)
