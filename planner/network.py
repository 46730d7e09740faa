"""The walking network as arrays: an undirected CSR matrix plus snapping.

Nodes are numbered ``0 .. n-1``; every edge is a straight segment between its
two nodes, so an offset along an edge is a distance in metres. Points
(residences, facilities, candidate sites) are snapped onto their nearest edge,
not their nearest node: a point in the middle of a long block is not moved to
a far corner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy import sparse
from scipy.sparse import csgraph

from planner import settings
from planner.catalogue_model import tag_number
from planner.errors import PlannerError
from planner.sources import Area

#: Spacing of the points sampled along edges for snapping, metres.
SNAP_SAMPLE_M = 30.0
#: Nearest samples examined per point when snapping.
SNAP_CANDIDATES = 12
#: Side of the grid cells that order the terminals of a :class:`Contraction`, metres.
TERMINAL_CELL_M = 200.0


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
    ground_preferred
        Points whose nearest edge was grade-separated and that were snapped
        onto a nearby ground-level edge instead (see :meth:`WalkNetwork.snap`).
    """

    edge: np.ndarray
    offset_m: np.ndarray
    access_m: np.ndarray
    ground_preferred: np.ndarray | None = None

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
    edge_name, edge_highway
        OSM ``name`` and ``highway`` of each edge (or None).
    edge_grade_separated
        Per edge: on a bridge, viaduct, tunnel or ``layer`` ≠ 0 (or None).
    fragments
        What :func:`build_network` dropped as disconnected fragments:
        ``n_dropped_fragments``, ``dropped_km``, ``dropped_at_extract_edge_km``.
    """

    node_ids: np.ndarray
    node_xy: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    crs: CRS
    edge_name: np.ndarray | None = None
    edge_highway: np.ndarray | None = None
    edge_grade_separated: np.ndarray | None = None
    fragments: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._tree: shapely.STRtree | None = None
        self._samples: tuple | None = None
        self._segments: tuple | None = None
        self._csr: sparse.csr_matrix | None = None
        self._edge_lines: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        return len(self.edge_u)

    @property
    def edge_geometry(self) -> np.ndarray:
        """Segments ``u → v`` as shapely LineStrings (built once; a copy of the array)."""
        if self._edge_lines is None:
            coords = np.stack([self.node_xy[self.edge_u], self.node_xy[self.edge_v]], axis=1)
            self._edge_lines = shapely.linestrings(coords)
        return self._edge_lines.copy()

    @property
    def csr(self) -> sparse.csr_matrix:
        """Symmetric ``n × n`` adjacency with lengths in metres."""
        if self._csr is None:
            self._csr = symmetric_csr(self.edge_u, self.edge_v, self.edge_length_m,
                                      self.n_nodes)
        return self._csr

    def snap(self, points, max_distance_m: float | None = None, *,
             prefer_ground: bool = True) -> Snap:
        """Snap points onto their nearest edge, preferring ground-level edges.

        Parameters
        ----------
        points
            Shapely points (array or GeoSeries) in the network's CRS.
        max_distance_m
            Points further from every edge stay unsnapped (``edge == -1``);
            :data:`planner.settings.max_snap_distance_m` when omitted.
        prefer_ground
            A point whose nearest edge is grade-separated (bridge, viaduct,
            tunnel, ``layer`` ≠ 0) goes to the nearest ground-level edge when
            that one is within :data:`planner.settings.elevated_snap_factor` ×
            the distance, or that distance plus
            :data:`planner.settings.elevated_snap_extra_m`: a home beside a
            viaduct is reached from the street below, not from the deck.

        Notes
        -----
        Candidates come from a k-d tree of the midpoints of edge pieces at
        most :data:`SNAP_SAMPLE_M` long: every point of an edge lies within
        half that length of one of the edge's midpoints, so when the k-th
        nearest sample is further than the best edge found plus half the
        spacing, no other edge can be nearer and the answer is exact. The
        points where this does not hold are examined again with four times
        as many candidates, and those still open (and non-point geometries)
        are answered by an R-tree of the edges. Of equally near edges the one
        with the lowest index is taken.
        """
        limit = settings.max_snap_distance_m if max_distance_m is None else max_distance_m
        geoms = np.asarray(getattr(points, "values", points), dtype=object)
        n_points = len(geoms)
        edge = np.full(n_points, -1, dtype=np.int64)
        offset_m = np.zeros(n_points)
        access_m = np.full(n_points, np.nan)
        moved = np.zeros(n_points, dtype=bool)
        if n_points == 0 or self.n_edges == 0:
            return Snap(edge, offset_m, access_m, moved)
        edge = self._nearest_edges(geoms, limit)
        if prefer_ground:
            moved = self._prefer_ground(geoms, edge)
        placed = np.flatnonzero(edge >= 0)
        xy = self._nearest_xy(geoms[placed], edge[placed])
        share, _, distance = self._project(edge[placed], xy)
        offset_m[placed] = share * self.edge_length_m[edge[placed]]
        access_m[placed] = distance
        return Snap(edge, offset_m, access_m, moved)

    def _prefer_ground(self, geoms: np.ndarray, edge: np.ndarray) -> np.ndarray:
        """Move points off grade-separated edges where a ground edge is near (in place)."""
        moved = np.zeros(len(geoms), dtype=bool)
        graded = self.edge_grade_separated
        if graded is None or not graded.any() or graded.all():
            return moved
        elevated = np.flatnonzero((edge >= 0) & graded[np.maximum(edge, 0)])
        if not len(elevated):
            return moved
        _, _, to_elevated = self._project(edge[elevated],
                                          self._nearest_xy(geoms[elevated], edge[elevated]))
        allowed = np.maximum(to_elevated * settings.elevated_snap_factor,
                             to_elevated + settings.elevated_snap_extra_m)
        # the nearest ground-level edge, from the same sample tree with the
        # grade-separated edges left out (no second tree of the whole network)
        found = self._nearest_edges(geoms[elevated], float(allowed.max()), usable=~graded)
        ok = np.flatnonzero(found >= 0)
        _, _, to_ground = self._project(found[ok], self._nearest_xy(geoms[elevated[ok]],
                                                                    found[ok]))
        ok = ok[to_ground <= allowed[ok]]
        edge[elevated[ok]] = found[ok]
        moved[elevated[ok]] = True
        return moved

    def _nearest_edges(self, geoms: np.ndarray, limit: float,
                       usable: np.ndarray | None = None) -> np.ndarray:
        """Index of the nearest edge of every geometry within ``limit`` (-1 beyond),
        of the ``usable`` edges only when given (a mask over the edges)."""
        n_points = len(geoms)
        edge = np.full(n_points, -1, dtype=np.int64)
        if n_points == 0 or self.n_edges == 0:
            return edge
        point_like = (shapely.get_type_id(geoms) == 0) & ~shapely.is_empty(geoms)
        rows = np.flatnonzero(point_like)
        xy = shapely.get_coordinates(geoms[rows])[:, :2]
        tree, sample_edge = self._sample_tree()
        undecided = [np.flatnonzero(~point_like)]
        k = SNAP_CANDIDATES
        while len(rows):  # more candidates for the points not decided yet, twice
            k = min(k, len(sample_edge))
            sample_distance, sample = tree.query(xy, k=k, workers=-1)
            candidates = sample_edge[sample.reshape(len(rows), k)]
            distance = self._share(candidates, xy[:, None, :])[2]
            if usable is not None:
                distance[~usable[candidates]] = np.inf
            best = distance.min(axis=1)
            nearest = np.where(distance == best[:, None], candidates, self.n_edges).min(axis=1)
            decided = (k == len(sample_edge)) | (
                sample_distance.reshape(len(rows), k)[:, -1]
                >= np.minimum(best, limit) + SNAP_SAMPLE_M / 2)
            near = decided & (best <= limit)
            edge[rows[near]] = nearest[near]
            rows, xy = rows[~decided], xy[~decided]
            if k >= 4 * SNAP_CANDIDATES:
                break
            k *= 4
        undecided = np.concatenate([rows, *undecided])
        if len(undecided):
            edges = None if usable is None else np.flatnonzero(usable)
            if edges is not None:  # rare: a few points near grade-separated edges
                tree = shapely.STRtree(self.edge_geometry[edges])
            else:
                if self._tree is None:
                    self._tree = shapely.STRtree(self.edge_geometry)
                tree = self._tree
            point_index, edge_index = tree.query_nearest(
                geoms[undecided], max_distance=limit, all_matches=True)
            if edges is not None:
                edge_index = edges[edge_index]
            # of equally near edges keep the lowest index, as above
            order = np.lexsort((edge_index, point_index))
            point_index, edge_index = point_index[order], edge_index[order]
            first = np.unique(point_index, return_index=True)[1]
            edge[undecided[point_index[first]]] = edge_index[first]
        return edge

    def _project(self, edge: np.ndarray, xy: np.ndarray):
        """Share along each edge of the foot of the perpendicular from ``xy``,
        the foot, and the distance (``edge`` of any shape, ``xy`` broadcast to it)."""
        share, (x0, y0, dx, dy), distance = self._share(edge, xy)
        foot = np.stack([x0 + share * dx, y0 + share * dy], axis=-1)
        return share, foot, distance

    def _share(self, edge: np.ndarray, xy: np.ndarray):
        """:meth:`_project` without the foot: share, the edges' start and span, distance."""
        if self._segments is None:
            start = self.node_xy[self.edge_u]
            along = self.node_xy[self.edge_v] - start
            seg_len2 = np.einsum("ij,ij->i", along, along)
            inverse = np.divide(1.0, seg_len2, out=np.zeros_like(seg_len2), where=seg_len2 > 0)
            # one row per edge: a single gather per candidate, not five
            self._segments = np.column_stack([start, along, inverse])
        segment = self._segments[edge]
        x0, y0, dx, dy, inverse = (segment[..., column] for column in range(5))
        px = xy[..., 0] - x0
        py = xy[..., 1] - y0
        share = np.clip((px * dx + py * dy) * inverse, 0.0, 1.0)
        gap_x, gap_y = px - share * dx, py - share * dy
        return share, (x0, y0, dx, dy), np.hypot(gap_x, gap_y)

    def _nearest_xy(self, geoms: np.ndarray, edge: np.ndarray) -> np.ndarray:
        """Coordinates of points; for other geometries, their point nearest to the edge."""
        xy = np.empty((len(geoms), 2))
        point = shapely.get_type_id(geoms) == 0
        xy[point] = shapely.get_coordinates(geoms[point])[:, :2]
        if not point.all():
            ends = np.stack([self.node_xy[self.edge_u[edge[~point]]],
                             self.node_xy[self.edge_v[edge[~point]]]], axis=1)
            nearest = shapely.shortest_line(geoms[~point], shapely.linestrings(ends))
            xy[~point] = shapely.get_coordinates(shapely.get_point(nearest, 0))[:, :2]
        return xy

    def _sample_tree(self):
        """k-d tree of the midpoints of edge pieces (cached) and the edge of each.

        Every edge is cut into equal pieces no longer than :data:`SNAP_SAMPLE_M`;
        every point of a piece is within half that length of its midpoint.
        """
        if self._samples is None:
            from scipy.spatial import cKDTree

            u_xy, v_xy = self.node_xy[self.edge_u], self.node_xy[self.edge_v]
            span = np.hypot(*(v_xy - u_xy).T)
            pieces = np.maximum(np.ceil(span / SNAP_SAMPLE_M).astype(np.int64), 1)
            sample_edge = np.repeat(np.arange(self.n_edges), pieces)
            step = np.arange(len(sample_edge)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
            share = (step + 0.5) / pieces[sample_edge]
            xy = u_xy[sample_edge] + share[:, None] * (v_xy - u_xy)[sample_edge]
            self._samples = (cKDTree(xy), sample_edge)
        return self._samples

    def edges_frame(self) -> gpd.GeoDataFrame:
        """Edges as a GeoDataFrame (``u``, ``v`` as OSM ids, ``length_m``)."""
        frame = {"u": self.node_ids[self.edge_u], "v": self.node_ids[self.edge_v],
                 "length_m": np.round(self.edge_length_m, 2)}
        if self.edge_highway is not None:
            frame["highway"] = self.edge_highway
        if self.edge_name is not None:
            frame["name"] = self.edge_name
        if self.edge_grade_separated is not None:
            frame["grade_separated"] = self.edge_grade_separated
        return gpd.GeoDataFrame(frame, geometry=self.edge_geometry, crs=self.crs)


def symmetric_csr(u: np.ndarray, v: np.ndarray, length_m: np.ndarray,
                  n_nodes: int) -> sparse.csr_matrix:
    """Undirected CSR adjacency keeping the minimum length per node pair.

    COO→CSR conversion *adds* duplicate entries, so duplicates are reduced to
    their minimum first; zero lengths are raised to
    :data:`planner.settings.min_edge_length_m` because csgraph reads an explicit
    zero as "no edge".
    """
    return min_csr(np.concatenate([u, v]), np.concatenate([v, u]),
                   np.concatenate([length_m, length_m]), n_nodes)


def min_csr(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray,
            n_nodes: int) -> sparse.csr_matrix:
    """Directed CSR adjacency ``rows → cols`` keeping the minimum weight per pair.

    Zero weights are raised to :data:`planner.settings.min_edge_length_m`
    (see :func:`symmetric_csr`).
    """
    rows = np.asarray(rows, dtype=np.int64)
    key = rows * n_nodes + np.asarray(cols, dtype=np.int64)
    weights = np.maximum(np.asarray(weights, dtype=float), settings.min_edge_length_m)
    order = np.argsort(key)
    key, weights = key[order], weights[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else \
        np.zeros(0, dtype=np.int64)
    weights = np.minimum.reduceat(weights, first) if len(first) else weights
    key = key[first]
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(key // n_nodes, minlength=n_nodes), out=indptr[1:])
    index_type = np.int32 if max(n_nodes, len(key)) < 2**31 else np.int64
    return sparse.csr_matrix((weights, (key % n_nodes).astype(index_type),
                              indptr.astype(index_type)), shape=(n_nodes, n_nodes))


@dataclass(frozen=True)
class Contraction:
    """A network with its chains of degree-two nodes replaced by single edges.

    OSM walking graphs are mostly degree-two nodes (curve points, crossings,
    the joints of footways): 57% of the nodes of the Helsinki demo graph. A
    shortest path enters such a chain only at one of its two ends, or starts
    on it, so a search on the graph of the remaining *terminals* (the nodes of
    degree other than two) gives the exact distances of the terminals, and a
    chain node's distance follows from its chain's ends ``a`` and ``b``:
    ``min(d[a] + offset, d[b] + length − offset)``, or from a source on the
    chain itself.

    Attributes
    ----------
    reduced
        Reduced index of every network node, -1 for the interior of a chain.
    terminals
        Network node index of every reduced node (nearby terminals get nearby
        reduced indices, see :data:`TERMINAL_CELL_M`).
    chain_a, chain_b, chain_m
        Per chain: reduced indices of its two ends and its length, metres.
    interior, interior_chain, offset_m
        Per chain interior node: network node index, chain, and distance
        along the chain from its ``a`` end, metres.
    edge_chain, edge_offset_u, edge_offset_v
        Per network edge: its chain (-1 between two terminals) and the
        offsets of its ``u`` and ``v`` ends along the chain.
    edge_u, edge_v, edge_length_m
        The reduced edges: direct edges between terminals, then one per
        chain (a chain that returns to its start is left out: it never
        shortens a path).
    """

    reduced: np.ndarray
    terminals: np.ndarray
    chain_a: np.ndarray
    chain_b: np.ndarray
    chain_m: np.ndarray
    interior: np.ndarray
    interior_chain: np.ndarray
    offset_m: np.ndarray
    edge_chain: np.ndarray
    edge_offset_u: np.ndarray
    edge_offset_v: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray

    @property
    def n_terminals(self) -> int:
        return len(self.terminals)

    @cached_property
    def _interior_ends(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per interior node: its chain's two ends and the length to the ``b`` end."""
        chain = self.interior_chain
        return (self.chain_a[chain], self.chain_b[chain], self.chain_m[chain] - self.offset_m)

    @cached_property
    def _terminals_ascending(self) -> tuple[np.ndarray, np.ndarray]:
        """``(order, terminals[order])`` with the network indices ascending: writing
        the terminals' values in that order walks a node column front to back."""
        order = np.argsort(self.terminals, kind="stable")
        return order, self.terminals[order]

    def to_nodes(self, values: np.ndarray, out: np.ndarray) -> None:
        """Write per-terminal ``values`` at the terminals' network indices of ``out``."""
        order, nodes = self._terminals_ascending
        out[nodes] = values[order]

    def at_terminals(self, node_values: np.ndarray) -> np.ndarray:
        """The values of the terminals (reduced order) in a per-network-node array."""
        order, nodes = self._terminals_ascending
        values = np.empty(len(order), dtype=node_values.dtype)
        values[order] = node_values[nodes]
        return values

    def position(self, edge: np.ndarray, offset_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chain and offset along it of points at ``offset_m`` from the ``u`` end of edges.

        Returns ``(chain, position)``; chain is -1 for edges between two terminals.
        """
        start, end = self.edge_offset_u[edge], self.edge_offset_v[edge]
        position = np.where(end >= start, start + offset_m, start - offset_m)
        return self.edge_chain[edge], position

    def expand(self, distance: np.ndarray, limit: float = np.inf,
               out: np.ndarray | None = None, on_chain: tuple | None = None) -> np.ndarray:
        """Distances of every network node from the distances of the terminals.

        Parameters
        ----------
        distance
            ``(n_terminals,)`` distances on the reduced graph (``inf`` unreached).
        limit
            Distances beyond it become ``inf``, as in a bounded search.
        out
            A ``(n_nodes,)`` array (or a column view) to write into.
        on_chain
            ``(interior_row, value)``: sources lying on chains, as candidate
            distances of interior nodes (rows of :attr:`interior`).
        """
        n_nodes = len(self.reduced)
        result = np.empty(n_nodes) if out is None else out
        self.to_nodes(distance[: self.n_terminals], result)
        end_a, end_b, rest = self._interior_ends
        inner = np.minimum(distance[end_a] + self.offset_m, distance[end_b] + rest)
        if on_chain is not None and len(on_chain[0]):
            rows = on_chain[0]
            if len(rows) > 1 and (rows[1:] > rows[:-1]).all():  # one value per row
                inner[rows] = np.minimum(inner[rows], on_chain[1])
            else:
                np.minimum.at(inner, rows, on_chain[1])
        inner[inner > limit] = np.inf
        result[self.interior] = inner
        return result


def contract(network: WalkNetwork) -> Contraction:
    """Replace chains of degree-two nodes by single edges (see :class:`Contraction`).

    Parameters
    ----------
    network
        The walking network (one edge per node pair, no self-loops).
    """
    n_nodes, n_edges = network.n_nodes, network.n_edges
    u, v, length = network.edge_u, network.edge_v, network.edge_length_m
    terminal = (np.bincount(u, minlength=n_nodes) + np.bincount(v, minlength=n_nodes)) != 2
    while True:  # a closed ring of degree-two nodes gets one terminal, then once more
        inner_edge = ~terminal[u] & ~terminal[v]
        _, label = csgraph.connected_components(
            sparse.coo_matrix((np.ones(int(inner_edge.sum())), (u[inner_edge], v[inner_edge])),
                              shape=(n_nodes, n_nodes)), directed=False)
        boundary = np.flatnonzero(terminal[u] != terminal[v])
        inside = np.where(terminal[u[boundary]], v[boundary], u[boundary])
        has_end = np.zeros(label.max() + 1, dtype=bool)
        has_end[label[inside]] = True
        ring = ~terminal & ~has_end[label]
        if not ring.any():
            break
        ring_nodes = np.flatnonzero(ring)
        terminal[ring_nodes[np.unique(label[ring_nodes], return_index=True)[1]]] = True
    # every chain has exactly two boundary edges: pair them up per chain
    order = np.argsort(label[inside], kind="stable")
    boundary, inside = boundary[order], inside[order]
    outside = np.where(terminal[u[boundary]], u[boundary], v[boundary])
    first, second = boundary[0::2], boundary[1::2]
    n_chains = len(first)
    # offsets along each chain: one search from a private copy of every chain's first end
    copies = n_nodes + np.arange(len(boundary))
    forest = symmetric_csr(np.concatenate([u[inner_edge], inside]),
                           np.concatenate([v[inner_edge], copies]),
                           np.concatenate([length[inner_edge], length[boundary]]),
                           n_nodes + len(boundary))
    along = (csgraph.dijkstra(forest, directed=True, indices=copies[0::2], min_only=True)
             if n_chains else np.zeros(n_nodes + len(boundary)))
    chain_m = along[copies[1::2]]
    chain_of_label = np.full(label.max() + 1, -1, dtype=np.int64)
    chain_of_label[label[inside[0::2]]] = np.arange(n_chains)
    terminals = _by_cell(np.flatnonzero(terminal), network.node_xy)
    reduced = np.full(n_nodes, -1, dtype=np.int64)
    reduced[terminals] = np.arange(len(terminals))
    chain_a, chain_b = reduced[outside[0::2]], reduced[outside[1::2]]
    interior = np.flatnonzero(~terminal)
    # per edge: chain and the offsets of its ends (a chain's first end at 0, its last at L)
    node_offset = along[:n_nodes]
    edge_chain = np.full(n_edges, -1, dtype=np.int64)
    edge_chain[inner_edge] = chain_of_label[label[u[inner_edge]]]
    edge_chain[boundary] = np.repeat(np.arange(n_chains), 2)
    edge_offset_u = np.where(terminal[u], 0.0, node_offset[u])
    edge_offset_v = np.where(terminal[v], 0.0, node_offset[v])
    u_last = terminal[u[second]]
    edge_offset_u[second[u_last]] = chain_m[u_last]
    edge_offset_v[second[~u_last]] = chain_m[~u_last]
    direct = terminal[u] & terminal[v]
    loop = chain_a == chain_b
    return Contraction(
        reduced=reduced, terminals=terminals, chain_a=chain_a, chain_b=chain_b,
        chain_m=chain_m, interior=interior,
        interior_chain=chain_of_label[label[interior]], offset_m=node_offset[interior],
        edge_chain=edge_chain, edge_offset_u=edge_offset_u, edge_offset_v=edge_offset_v,
        edge_u=np.concatenate([reduced[u[direct]], chain_a[~loop]]),
        edge_v=np.concatenate([reduced[v[direct]], chain_b[~loop]]),
        edge_length_m=np.concatenate([length[direct], chain_m[~loop]]))


def _by_cell(nodes: np.ndarray, node_xy: np.ndarray) -> np.ndarray:
    """The nodes ordered by grid cell of :data:`TERMINAL_CELL_M` (rows of cells, then
    index): neighbours get near indices, so a search on the reduced graph
    works on memory that is mostly in cache (about a tenth faster)."""
    if not len(nodes):
        return nodes
    xy = node_xy[nodes]
    cell = np.floor((xy - xy.min(axis=0)) / TERMINAL_CELL_M).astype(np.int64)
    return nodes[np.lexsort((cell[:, 0], cell[:, 1]))]


def build_network(area: Area, *, largest_component: bool = True) -> WalkNetwork:
    """Build the walking network of an area.

    Parallel segments collapse to one (a ground-level one where there is
    one); self-loops are dropped. With ``largest_component`` (the default)
    only the largest connected component is kept: fragments cut off at the
    extract's edge or inside closed compounds would otherwise trap the
    residences snapped to them. What is dropped is not silent: the network's
    :attr:`WalkNetwork.fragments` records how many fragments, how many
    kilometres of walkable ways, and how many of those run to within
    :data:`planner.settings.fragment_edge_margin_m` of the extract's edge.

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
    attributes = {"highway": edges["highway"].to_numpy(object)[keep],
                  "name": (edges["name"].to_numpy(object)[keep] if "name" in edges
                           else np.full(int(keep.sum()), None, dtype=object)),
                  "graded": grade_separated(edges)[keep]}
    u, v = u[keep], v[keep]
    xy = area.nodes[["x", "y"]].to_numpy(float)
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    # one edge per pair: geometry is the straight segment, so duplicates are
    # equal; a ground-level one comes first and is kept
    pair = lo.astype(np.int64) * len(node_ids) + hi
    order = np.lexsort((attributes["graded"], pair))
    first = order[np.r_[True, pair[order][1:] != pair[order][:-1]]] if len(order) else order
    first = np.sort(first)
    lo, hi = lo[first], hi[first]
    attributes = {key: value[first] for key, value in attributes.items()}
    if len(lo) == 0:
        message = "no walkable ways in the area"
        raise PlannerError(message)
    fragments = {"n_dropped_fragments": 0, "dropped_km": 0.0, "dropped_at_extract_edge_km": 0.0}
    if largest_component:
        on_main, fragments = _main_component(lo, hi, xy)
        lo, hi = lo[on_main], hi[on_main]
        attributes = {key: value[on_main] for key, value in attributes.items()}
    used_nodes = np.union1d(lo, hi)
    renumber = np.full(len(node_ids), -1, dtype=np.int64)
    renumber[used_nodes] = np.arange(len(used_nodes))
    xy = xy[used_nodes]
    lo, hi = renumber[lo], renumber[hi]
    length_m = np.hypot(*(xy[hi] - xy[lo]).T)
    return WalkNetwork(node_ids=node_ids[used_nodes], node_xy=xy, edge_u=lo, edge_v=hi,
                       edge_length_m=np.maximum(length_m, settings.min_edge_length_m),
                       crs=area.crs, edge_name=attributes["name"],
                       edge_highway=attributes["highway"],
                       edge_grade_separated=attributes["graded"], fragments=fragments)


def grade_separated(edges: pd.DataFrame) -> np.ndarray:
    """Per edge: on a bridge or viaduct, in a tunnel, or on a ``layer`` other than 0.

    ``tunnel=building_passage`` (a passage through a building at street level)
    and ``bridge``/``tunnel`` ``=no`` are ground level.
    """
    def tag(key: str) -> pd.Series:
        if key not in edges.columns:
            return pd.Series([None] * len(edges), index=edges.index, dtype=object)
        return edges[key].astype(object).where(edges[key].notna(), None)

    bridge, tunnel = tag("bridge"), tag("tunnel")
    layer = tag_number(tag("layer"), r"(-?\d+)")
    graded = bridge.notna() & bridge.ne("no")
    graded |= tunnel.notna() & ~tunnel.isin(["no", "building_passage"])
    graded |= layer.fillna(0).ne(0)
    return graded.to_numpy(dtype=bool)


def _main_component(lo: np.ndarray, hi: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, dict]:
    """Edges of the largest connected component, and what the others hold."""
    n_nodes = len(xy)
    adjacency = sparse.coo_matrix((np.ones(len(lo)), (lo, hi)), shape=(n_nodes, n_nodes))
    _, labels = csgraph.connected_components(adjacency, directed=False)
    used = np.zeros(n_nodes, dtype=bool)
    used[lo] = used[hi] = True
    counts = np.bincount(labels[used], minlength=labels.max() + 1)
    main = np.argmax(counts)
    on_main = labels[lo] == main
    length_m = np.hypot(*(xy[hi] - xy[lo]).T)
    dropped = ~on_main
    # a fragment near the bounding box of the extract's network runs out of the extract
    used_xy = xy[used]
    low, high = used_xy.min(axis=0), used_xy.max(axis=0)
    margin = settings.fragment_edge_margin_m
    near_edge = used & (np.any(xy - low < margin, axis=1) | np.any(high - xy < margin, axis=1))
    touches = np.zeros(labels.max() + 1, dtype=bool)
    touches[labels[near_edge]] = True
    at_edge = dropped & touches[labels[lo]]
    fragments = {
        "n_dropped_fragments": int(len(np.unique(labels[lo[dropped]]))),
        "dropped_km": round(float(length_m[dropped].sum()) / 1000, 3),
        "dropped_at_extract_edge_km": round(float(length_m[at_edge].sum()) / 1000, 3),
    }
    return on_main, fragments
