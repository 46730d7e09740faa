"""Walking distances from candidate sites to residences.

A candidate site enters the walking graph exactly like a facility of
:class:`planner.access.Access` (a virtual node on its nearest edge, from
``Access._augmented_graph``). One bounded Dijkstra from every site
(``scipy.sparse.csgraph.dijkstra(min_only=False, limit=…)``, in chunks so that
the dense block stays small) gives node distances; residences snapped on edge
(u, v) at offset r with access leg a are then at ``a + min(d[u] + r, d[v] +
len − r)``, or directly along the edge when the site lies on the same edge,
as :meth:`planner.access.Access.point_distances` measures them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from planner import settings
from planner.access import Access
from planner.network import Snap, WalkNetwork


def site_distances(network: WalkNetwork, sites, residences, limit_m: float, *,
                   block_elements: int = 1 << 23) -> sparse.csr_matrix:
    """Walking distances from candidate sites to residences, up to a limit.

    Parameters
    ----------
    network
        The walking network.
    sites, residences
        Shapely points in the network's CRS, or their :class:`~planner.network.Snap`.
    limit_m
        Longest distance kept, metres.
    block_elements
        Size of the dense block of one Dijkstra chunk (sites × graph nodes, or
        sites × twice the residences if more); bounds memory. Only the reached
        nodes are kept, and residences are joined to them through their edge's
        end nodes, so the work beyond Dijkstra grows with the pairs found, not
        with sites × residences.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_sites, n_residences)`` metres, an entry for every pair within
        ``limit_m`` (a zero distance is stored as
        :data:`planner.settings.min_edge_length_m`); sites or residences off the
        network have no entries. Equal to what
        :meth:`planner.access.Access.point_distances` gives for one facility at
        the site.
    """
    site_snap = sites if isinstance(sites, Snap) else network.snap(sites)
    res_snap = residences if isinstance(residences, Snap) else network.snap(residences)
    n_sites, n_res = len(site_snap.edge), len(res_snap.edge)
    on_site = np.flatnonzero(site_snap.snapped)
    on_res = np.flatnonzero(res_snap.snapped)
    if len(on_site) == 0 or len(on_res) == 0:
        return sparse.csr_matrix((n_sites, n_res))
    graph = site_graph(network, site_snap)
    hanging = _Hanging(network, res_snap, on_res)
    # one dense Dijkstra block per chunk of sites; only reached nodes are kept. The
    # chunk also bounds the expansion below (at most every residence twice per site).
    chunk = max(1, block_elements // max(graph.shape[0], len(hanging.residence)))
    parts = []
    for start in range(0, len(on_site), chunk):
        sources = on_site[start:start + chunk]
        reached = dijkstra(graph, directed=True, indices=network.n_nodes + sources,
                           limit=limit_m, min_only=False)[:, :network.n_nodes]
        site, node = np.nonzero(np.isfinite(reached))
        parts.append(hanging.expand(sources[site], node, reached[site, node], limit_m))
    parts.append(_same_edge(site_snap, on_site, res_snap, on_res, limit_m))
    rows, cols, values = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.lexsort((values, cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    values = np.maximum(values[first], settings.min_edge_length_m)
    return sparse.csr_matrix((values, (rows[first], cols[first])), shape=(n_sites, n_res))


def site_graph(network: WalkNetwork, snap: Snap) -> sparse.csr_matrix:
    """The walking graph of :class:`~planner.access.Access` with the sites as facilities.

    Site ``i`` is the virtual node ``network.n_nodes + i`` (isolated when the
    site is off the network).
    """
    # Access snaps the facility points it is given; the sites are snapped already,
    # so the model is built empty and handed their snap.
    access = Access(network, np.empty(0, dtype=object), [], {})
    access.facility_snap = snap
    access.facility_type = np.zeros(len(snap.edge), dtype=object)
    return access._augmented_graph()


class _Hanging:
    """Residences hanging from both end nodes of their edge, grouped by node."""

    def __init__(self, network: WalkNetwork, snap: Snap, on_res: np.ndarray) -> None:
        edge = snap.edge[on_res]
        node = np.concatenate([network.edge_u[edge], network.edge_v[edge]])
        metres = np.concatenate([snap.offset_m[on_res],
                                 network.edge_length_m[edge] - snap.offset_m[on_res]])
        order = np.argsort(node, kind="stable")
        self.residence = np.concatenate([on_res, on_res])[order]
        self.metres = metres[order]
        self.start = np.concatenate([[0], np.cumsum(np.bincount(node,
                                                                minlength=network.n_nodes))])
        self.access = np.zeros(len(snap.edge))
        self.access[on_res] = snap.access_m[on_res]

    def expand(self, site: np.ndarray, node: np.ndarray, node_m: np.ndarray,
               limit_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(site, residence, metres)`` of every residence hanging from a reached node."""
        count = self.start[node + 1] - self.start[node]
        pair = np.repeat(np.arange(len(node)), count)
        position = self.start[node][pair] + np.arange(len(pair)) - np.repeat(
            np.cumsum(count) - count, count)
        home = self.residence[position]
        distance = node_m[pair] + self.metres[position] + self.access[home]
        near = distance <= limit_m
        return site[pair[near]], home[near], distance[near]


def _same_edge(site_snap: Snap, on_site: np.ndarray, res_snap: Snap, on_res: np.ndarray,
               limit_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Site–residence pairs on one edge, reached directly along it.

    The rule of ``Access._same_edge``, kept per pair: Access reduces it to the
    nearest facility per type in a dense points × types array, while every
    site here is its own "type" (a dense residences × sites array).
    """
    sites = pd.DataFrame({"edge": site_snap.edge[on_site], "site_off": site_snap.offset_m[on_site],
                          "site_access": site_snap.access_m[on_site], "site": on_site})
    homes = pd.DataFrame({"edge": res_snap.edge[on_res], "off": res_snap.offset_m[on_res],
                          "access": res_snap.access_m[on_res], "res": on_res})
    homes = homes[homes["edge"].isin(sites["edge"])]
    pairs = homes.merge(sites, on="edge")
    direct = (np.abs(pairs["off"] - pairs["site_off"]) + pairs["access"]
              + pairs["site_access"]).to_numpy(float)
    near = direct <= limit_m
    return (pairs["site"].to_numpy(np.int64)[near], pairs["res"].to_numpy(np.int64)[near],
            direct[near])
