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
from planner.snapping import SNAP_CANDIDATES, SNAP_SAMPLE_M, EdgeSnapper  # noqa: F401  (re-exported)
from planner.sources import Area

#: Side of the grid cells that order the terminals of a :class:`Contraction`, metres.
TERMINAL_CELL_M = 200.0
#: Steps of the joint walk along all chains of a :class:`Contraction` before the
#: chains still unfinished (the longest) are measured by a shortest-path search.
CHAIN_WALK_STEPS = 256


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
        self._snapper: EdgeSnapper | None = None
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
        most :data:`~planner.snapping.SNAP_SAMPLE_M` long: every point of an edge lies within
        half that length of one of the edge's midpoints, so when the k-th
        nearest sample is further than the best edge found plus half the
        spacing, no other edge can be nearer and the answer is exact. The
        points where this does not hold are examined again with four times
        as many candidates, and those still open (and non-point geometries)
        are answered by an R-tree of the edges. Of equally near edges the one
        with the lowest index is taken (see :mod:`planner.snapping`).
        """
        limit = settings.max_snap_distance_m if max_distance_m is None else max_distance_m
        geoms = np.asarray(getattr(points, "values", points), dtype=object)
        graded = self.edge_grade_separated if prefer_ground else None
        return Snap(*self.snapper.snap(geoms, limit, graded, self.edge_length_m))

    @property
    def snapper(self) -> EdgeSnapper:
        """The nearest-edge search (its segment table and sample tree are built once)."""
        if getattr(self, "_snapper", None) is None:  # None also in networks pickled before
            self._snapper = EdgeSnapper(self.node_xy, self.edge_u, self.edge_v)
        return self._snapper

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
    chain_of_label = np.full(label.max() + 1, -1, dtype=np.int64)
    chain_of_label[label[inside[0::2]]] = np.arange(n_chains)
    along, chain_m = _chain_offsets(network, terminal, boundary, inside, chain_of_label[label])
    terminals = _by_cell(np.flatnonzero(terminal), network.node_xy)
    reduced = np.full(n_nodes, -1, dtype=np.int64)
    reduced[terminals] = np.arange(len(terminals))
    chain_a, chain_b = reduced[outside[0::2]], reduced[outside[1::2]]
    interior = np.flatnonzero(~terminal)
    # per edge: chain and the offsets of its ends (a chain's first end at 0, its last at L)
    node_offset = along
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


def _chain_offsets(network: WalkNetwork, terminal: np.ndarray, boundary: np.ndarray,
                   inside: np.ndarray, node_chain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of every chain node from its chain's first end, and each chain's length.

    ``boundary`` holds the two edges of every chain from a terminal into it
    (the first one first), ``inside`` their chain ends, ``node_chain`` the
    chain of every node (-1 for terminals). All chains are walked at once, a
    node per step from their first end, adding the edge lengths in the order
    a shortest-path search from that end adds them (so the sums are the same
    to the last bit, without a search's heap); the chains still open after
    :data:`CHAIN_WALK_STEPS` steps are measured by such a search.
    """
    u, v, length = network.edge_u, network.edge_v, network.edge_length_m
    weight = np.maximum(length, settings.min_edge_length_m)  # as in the search's graph
    ends = np.concatenate([u, v])
    inner = ~terminal[ends]
    # a chain node has two edges: XOR their indices once, then XOR the edge a walk
    # came by gives the edge it leaves by
    edge_xor = np.zeros(len(terminal), dtype=np.int64)
    np.bitwise_xor.at(edge_xor, ends[inner], np.tile(np.arange(len(u)), 2)[inner])
    along = np.full(len(terminal), np.inf)
    chain_m = np.zeros(len(boundary) // 2)
    chain, edge, node = np.arange(len(chain_m)), boundary[0::2], inside[0::2]
    distance = weight[edge]
    for _ in range(CHAIN_WALK_STEPS):
        if not len(chain):
            break
        along[node] = distance
        edge = edge_xor[node] ^ edge
        node = u[edge] + v[edge] - node
        distance = distance + weight[edge]
        end = terminal[node]
        chain_m[chain[end]] = distance[end]
        chain, edge, node, distance = chain[~end], edge[~end], node[~end], distance[~end]
    if len(chain):  # a few very long chains: one search from a copy of each first end
        on_rest = np.zeros(len(chain_m) + 1, dtype=bool)
        on_rest[chain] = True
        on_rest = on_rest[node_chain]  # node_chain -1 reads the last, False
        inner_edge = np.flatnonzero(on_rest[u] & on_rest[v])
        pairs = np.stack([boundary[0::2][chain], boundary[1::2][chain]], axis=1).ravel()
        into = np.stack([inside[0::2][chain], inside[1::2][chain]], axis=1).ravel()
        copies = len(terminal) + np.arange(len(pairs))
        forest = symmetric_csr(np.concatenate([u[inner_edge], into]),
                               np.concatenate([v[inner_edge], copies]),
                               np.concatenate([length[inner_edge], length[pairs]]),
                               len(terminal) + len(pairs))
        reached = csgraph.dijkstra(forest, directed=True, indices=copies[0::2], min_only=True)
        along[on_rest] = reached[:len(terminal)][on_rest]
        chain_m[chain] = reached[copies[1::2]]
    return along, chain_m


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
    u, v = np.split(_positions(node_ids, np.concatenate(
        [edges["u"].to_numpy(np.int64), edges["v"].to_numpy(np.int64)])), 2)
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
    used = np.zeros(len(node_ids), dtype=bool)  # np.union1d hashes: 20 times slower
    used[lo] = used[hi] = True
    used_nodes = np.flatnonzero(used)
    renumber = np.full(len(node_ids), -1, dtype=np.int64)
    renumber[used_nodes] = np.arange(len(used_nodes))
    xy = xy[used_nodes]
    lo, hi = renumber[lo], renumber[hi]
    length_m = np.hypot(*(xy[hi] - xy[lo]).T)
    network = WalkNetwork(node_ids=node_ids[used_nodes], node_xy=xy, edge_u=lo, edge_v=hi,
                          edge_length_m=np.maximum(length_m, settings.min_edge_length_m),
                          crs=area.crs, edge_name=attributes["name"],
                          edge_highway=attributes["highway"],
                          edge_grade_separated=attributes["graded"], fragments=fragments)
    # every analysis snaps: the snapping index is built here, where analyze() builds the
    # network on a thread beside the classification, not later on the main path
    network.snapper.prepare()
    return network


def _positions(node_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each of ``ids`` in ``node_ids`` (unique), -1 where absent."""
    if len(node_ids):
        low, high = int(node_ids.min()), int(node_ids.max())
        # dense ids (renumbered or synthetic extracts): a lookup table beats hashing
        if high - low < 4 * len(node_ids) + 1024 and pd.Index(node_ids).is_unique:
            table = np.full(high - low + 1, -1, dtype=np.intp)
            table[node_ids - low] = np.arange(len(node_ids))
            inside = (ids >= low) & (ids <= high)
            position = np.full(len(ids), -1, dtype=np.intp)
            position[inside] = table[ids[inside] - low]
            return position
    return pd.Index(node_ids).get_indexer(ids)


def grade_separated(edges: pd.DataFrame) -> np.ndarray:
    """Per edge: on a bridge or viaduct, in a tunnel, or on a ``layer`` other than 0.

    ``tunnel=building_passage`` (a passage through a building at street level)
    and ``bridge``/``tunnel`` ``=no`` are ground level.
    """
    keys = [key for key in ("bridge", "tunnel", "layer") if key in edges.columns]
    tagged = edges[keys].notna().to_numpy().any(axis=1)
    graded = np.zeros(len(edges), dtype=bool)
    if tagged.any():  # most edges carry none of the three tags: only the others are read
        graded[tagged] = _grade_separated(edges[tagged])
    return graded


def _grade_separated(edges: pd.DataFrame) -> np.ndarray:
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
    dropped = ~on_main
    length_m = np.hypot(*(xy[hi[dropped]] - xy[lo[dropped]]).T)
    # a fragment near the bounding box of the extract's network runs out of the extract
    used_xy = xy[used]
    low, high = used_xy.min(axis=0), used_xy.max(axis=0)
    margin = settings.fragment_edge_margin_m
    off_main = np.flatnonzero(used & (labels != main))  # only the fragments' nodes matter
    off_xy = xy[off_main]
    near_edge = np.any(off_xy - low < margin, axis=1) | np.any(high - off_xy < margin, axis=1)
    touches = np.zeros(labels.max() + 1, dtype=bool)
    touches[labels[off_main[near_edge]]] = True
    at_edge = touches[labels[lo[dropped]]]
    fragments = {
        "n_dropped_fragments": int(len(np.unique(labels[lo[dropped]]))),
        "dropped_km": round(float(length_m.sum()) / 1000, 3),
        "dropped_at_extract_edge_km": round(float(length_m[at_edge].sum()) / 1000, 3),
    }
    return on_main, fragments
