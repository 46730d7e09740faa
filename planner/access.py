"""Walking distance to the nearest facility of every type.

One bounded multi-source Dijkstra per facility type (from all facilities of
the type, up to the type's search limit; :mod:`planner.search`) on the walking
graph augmented with one virtual node per facility: a facility snapped onto
edge (u, v) at offset s is joined to u by ``access + s`` and to v by
``access + length − s``. Virtual nodes have degree two and their detour is
never shorter than the edge itself, so they add no shortcut.

A point (residence, candidate site) snapped onto edge (u, v) at offset r with
access leg a is at ``a + min(d[u] + r, d[v] + length − r)``; a facility of the
same type on the same edge is also reached directly along it.
Distances beyond the search limit are NaN: unreachable is explicit.

Three measures keep a whole city fast (``benchmarks/``): the searches run on
the contracted graph (:func:`planner.network.contract`: chains of degree-two
nodes become single edges, exact distances restored afterwards), they are
compiled (:class:`planner.search.TerminalGraph`: twice as fast as scipy's
Dijkstra, same distances, and free of the GIL), and on a large graph the
types are shared among threads. There the compiled code is loaded and the
network contracted on a second thread while the facilities are snapped.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import shapely
from scipy import sparse

from planner import settings
from planner.network import Contraction, Snap, WalkNetwork, contract, min_csr, symmetric_csr

#: Networks with at least this many nodes are contracted on a second thread
#: while the facilities are snapped.
PARALLEL_MIN_NODES = 100_000
#: Networks with at least this many nodes are searched by the compiled search
#: (:mod:`planner.search`), on as many threads as cores (it releases the GIL);
#: smaller ones by scipy (:mod:`planner.search_scipy`) on this thread. Loading
#: numba (its import and cache, ~0.7 s) costs more than it saves below: on a
#: 250,000-node city the search took 0.9–1.1 s with scipy and 1.1–1.5 s
#: compiled; on the 1M-node city the compiled search takes 2.25× less CPU.
COMPILED_MIN_NODES = 400_000


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
    workers
        Threads searching the types at once; by default every available core
        on a large reduced graph searched by the compiled search
        (:data:`PARALLEL_MIN_NODES`, :data:`COMPILED_MIN_NODES`), else one.

    Examples
    --------
    >>> access = Access(network, points, type_ids, {"kindergarten": 600}).solve()
    >>> access.point_distances(residence_points)          # (n_points, n_types), metres
    """

    def __init__(self, network: WalkNetwork, facility_points, facility_type: Sequence[str],
                 limits_m: Mapping[str, float], *, workers: int | None = None) -> None:
        self.network = network
        self.type_ids = list(limits_m)
        self.limits_m = np.array([float(limits_m[type_id]) for type_id in self.type_ids])
        self.facility_type = np.asarray(facility_type, dtype=object)
        # a city's network is contracted (and the compiled search loaded: numba's
        # import and cache take a second) beside the snapping, which leaves a core idle
        self._ahead = _Ahead(_prepare_search, network) \
            if network.n_nodes >= PARALLEL_MIN_NODES and len(self.facility_type) else None
        self.facility_snap = _snap_unique(network, facility_points)
        self.node_distance_m: np.ndarray | None = None
        self.workers = workers
        self._type_column: np.ndarray | None = None
        self._full_graph: sparse.csr_matrix | None = None
        self._contraction: Contraction | None = None
        self._reduced_graph: sparse.csr_matrix | None = None
        self._terminal_graph = None  # (graph to search, expansion): see _searcher
        self._chain_pairs: tuple | None = None
        self._chain_by_type: dict | None = None
        #: ``(n_nodes, n_types)`` facility reached first by every node (-1:
        #: none), kept by :meth:`solve` for the detour index
        #: (:meth:`nearest_facilities`).
        self._node_source: np.ndarray | None = None

    @property
    def _graph(self) -> sparse.csr_matrix:
        """The uncontracted augmented graph (network nodes, then one per facility)."""
        if self._full_graph is None:
            self._full_graph = self._augmented_graph()
        return self._full_graph

    def _augmented_graph(self) -> sparse.csr_matrix:
        net, snap = self.network, self.facility_snap
        on_net = np.flatnonzero(snap.snapped)
        virtual = net.n_nodes + on_net
        edge = snap.edge[on_net]
        to_u = snap.access_m[on_net] + snap.offset_m[on_net]
        to_v = snap.access_m[on_net] + net.edge_length_m[edge] - snap.offset_m[on_net]
        return symmetric_csr(np.concatenate([net.edge_u, virtual, virtual]),
                             np.concatenate([net.edge_v, net.edge_u[edge], net.edge_v[edge]]),
                             np.concatenate([net.edge_length_m, to_u, to_v]),
                             net.n_nodes + len(self.facility_type))

    def _reduce(self) -> None:
        """Contract the network and join the facilities to the reduced graph.

        A facility on an edge between two terminals is joined to them as in
        the full graph; one on a chain is joined to the chain's two ends by
        its access leg plus the walk along the chain, and reaches the chain's
        own nodes directly (:meth:`_on_chain`).
        """
        net, snap = self.network, self.facility_snap
        if self._ahead is not None:
            reduced, self._ahead = self._ahead.result(), None
        else:
            reduced = contract(net)
        self._contraction = reduced
        on_net = np.flatnonzero(snap.snapped)
        edge, access = snap.edge[on_net], snap.access_m[on_net]
        chain, position = reduced.position(edge, snap.offset_m[on_net])
        on_chain = chain >= 0
        n_terminals = reduced.n_terminals
        virtual = n_terminals + on_net
        ends_a = reduced.reduced[net.edge_u[edge]]
        ends_b = reduced.reduced[net.edge_v[edge]]
        to_a = access + snap.offset_m[on_net]
        to_b = access + net.edge_length_m[edge] - snap.offset_m[on_net]
        along = chain[on_chain]
        ends_a[on_chain], ends_b[on_chain] = reduced.chain_a[along], reduced.chain_b[along]
        # as in the full graph: the leg to the nearer end of the facility's own edge
        # (never shorter than settings.min_edge_length_m), then along the chain
        start, end = reduced.edge_offset_u[edge], reduced.edge_offset_v[edge]
        low, high = np.minimum(start, end), np.maximum(start, end)
        leg_low = np.maximum(access + position - low, settings.min_edge_length_m)
        leg_high = np.maximum(access + high - position, settings.min_edge_length_m)
        to_a[on_chain] = leg_low[on_chain] + low[on_chain]
        to_b[on_chain] = leg_high[on_chain] + (reduced.chain_m[along] - high[on_chain])
        # facility legs point one way, out of the facility: a search from one
        # type's facilities never enters another type's virtual nodes
        self._reduced_graph = min_csr(
            np.concatenate([reduced.edge_u, reduced.edge_v, virtual, virtual]),
            np.concatenate([reduced.edge_v, reduced.edge_u, ends_a, ends_b]),
            np.concatenate([reduced.edge_length_m, reduced.edge_length_m, to_a, to_b]),
            n_terminals + len(self.facility_type))
        # facility × interior node of the same chain, for the direct walk along it
        facility = on_net[on_chain]
        chain, low, high = chain[on_chain], low[on_chain], high[on_chain]
        leg_low, leg_high = leg_low[on_chain], leg_high[on_chain]
        rows = np.argsort(reduced.interior_chain, kind="stable")
        per_chain = np.bincount(reduced.interior_chain, minlength=len(reduced.chain_m))
        starts, counts = (np.cumsum(per_chain) - per_chain)[chain], per_chain[chain]
        pair_facility = np.repeat(np.arange(len(facility)), counts)
        pair_row = rows[np.repeat(starts, counts) + np.arange(counts.sum())
                        - np.repeat(np.cumsum(counts) - counts, counts)]
        offset = reduced.offset_m[pair_row]
        below = offset <= low[pair_facility]
        self._chain_pairs = (facility[pair_facility], pair_row, np.where(
            below, leg_low[pair_facility] + (low[pair_facility] - offset),
            leg_high[pair_facility] + (offset - high[pair_facility])))

    def _on_chain(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per type column, ``(interior_row, distance, facility)`` from its facilities on chains.

        One entry per interior row (ascending): the nearest of the type's
        facilities on the row's chain, the lowest index on ties. Computed once.
        """
        if self._chain_by_type is not None:
            return self._chain_by_type
        facility, row, value = self._chain_pairs
        column = self._columns()[facility]
        kept = column >= 0
        facility, row, value, column = facility[kept], row[kept], value[kept], column[kept]
        # the pairs come by ascending facility: the first nearest is the lowest index
        chosen = _first_smallest(column * np.int64(len(self._contraction.interior)) + row, value)
        column, row, value, facility = column[chosen], row[chosen], value[chosen], facility[chosen]
        bounds = np.searchsorted(column, np.arange(len(self.type_ids) + 1))
        self._chain_by_type = {
            index: (row[start:stop], value[start:stop], facility[start:stop])
            for index, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))}
        return self._chain_by_type

    def _columns(self) -> np.ndarray:
        """Type column of every facility point (-1: a type not reported), computed once."""
        if self._type_column is None:
            self._type_column = pd.Index(self.type_ids).get_indexer(self.facility_type)
        return self._type_column

    def sources(self, type_id: str) -> np.ndarray:
        """Virtual-node indices of the snapped facilities of one type."""
        mask = (self.facility_type == type_id) & self.facility_snap.snapped
        return self.network.n_nodes + np.flatnonzero(mask)

    def solve(self) -> Access:
        """Run one bounded multi-source Dijkstra per type; fills :attr:`node_distance_m`.

        The searches run on the contracted graph; with more than one worker
        and a large graph they are spread over threads (the compiled search
        releases the GIL).
        """
        if self._contraction is None:
            self._reduce()
        reduced, graph = self._contraction, self._reduced_graph
        n_types = len(self.type_ids)
        # the longest searches first: the threads end together
        jobs = sorted(((column, facilities, self.limits_m[column])
                       for column, facilities in self._facilities_by_type().items()),
                      key=lambda job: -job[2])
        workers = self._workers(graph.shape[0], len(jobs))
        n_nodes = self.network.n_nodes
        # column-major: each type's column is written in one contiguous block;
        # a searched type's columns are written whole by its search: only the
        # others are filled here (and the pages are first touched in parallel)
        idle = np.setdiff1d(np.arange(n_types), [job[0] for job in jobs])
        distance = _node_matrix(n_nodes, n_types, np.inf, columns=idle)
        # the facility each node is reached from first costs the search almost
        # nothing and spares the detour index a second search per type
        source = _node_matrix(n_nodes, n_types, -1, dtype=np.int32, columns=idle)
        for _ in _search(_Job(self._searcher(), reduced, (distance, source),
                              self._on_chain()), jobs, workers):
            pass
        self.node_distance_m = distance
        self._node_source = source
        return self

    def _searcher(self):
        """The reduced graph ready to search (built once) and the expansion to all nodes.

        A large city's is searched by the compiled search (:mod:`planner.search`),
        a district's or a smaller city's by scipy (:mod:`planner.search_scipy`):
        loading the compiled code costs more than it saves below
        :data:`COMPILED_MIN_NODES` nodes.
        """
        if self._terminal_graph is None:
            if _compiled(self.network):  # numba: imported only here
                from planner.search import TerminalGraph, expand
            else:
                from planner.search_scipy import ScipyTerminalGraph as TerminalGraph
                from planner.search_scipy import expand
            self._terminal_graph = (TerminalGraph(self._reduced_graph,
                                                  self._contraction.n_terminals), expand)
        return self._terminal_graph

    def _facilities_by_type(self) -> dict[int, np.ndarray]:
        """Per type column with a facility on the network, its facilities' indices."""
        column = np.where(self.facility_snap.snapped, self._columns(), -1)
        order = np.argsort(column, kind="stable")
        bounds = np.searchsorted(column[order], np.arange(len(self.type_ids) + 1))
        return {index: order[begin:end]
                for index, (begin, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
                if end > begin}

    def _workers(self, n_graph_nodes: int, n_jobs: int) -> int:
        if self.workers is not None:
            return max(1, min(int(self.workers), n_jobs))
        if n_graph_nodes < PARALLEL_MIN_NODES or n_jobs < 2 or not _compiled(self.network):
            return 1
        return max(1, min(_available_cores(), n_jobs))

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
        rest = net.edge_length_m[edge] - offset
        u, v, access = net.edge_u[edge], net.edge_v[edge], snap.access_m[on_net]
        # one type column at a time: gathering whole rows of the column-major
        # matrix touches one cache line per type and node
        for column in range(len(self.type_ids)):
            distance = self.node_distance_m[:, column]
            result[on_net, column] = np.minimum(distance[u] + offset, distance[v] + rest) + access
        self._same_edge(snap, on_net, result)
        result[result > self.limits_m[None, :]] = np.nan
        return result

    def nearest_facilities(self, snap: Snap) -> np.ndarray:
        """Which facility each point reaches first, per type (for the detour index).

        The searches of :meth:`solve` on the contracted graph keep the
        facility every terminal was reached from; an interior node of a chain
        takes the one of the chain end it is reached through (or a facility
        on the chain itself when that is strictly nearer), and a point the
        one of the end of its edge it is reached through. A facility on the
        point's own edge that is nearer along the edge is not considered.
        Without :meth:`solve` (a tiled run) each type is searched here, one
        at a time, so the whole distance matrix is never held.

        Parameters
        ----------
        snap
            The points' :meth:`WalkNetwork.snap`.

        Returns
        -------
        numpy.ndarray
            ``(n_points, n_types)`` indices into the facility points, -1 where
            none is within the type's search limit or the point is off the network.
        """
        net = self.network
        result = np.full((len(snap.edge), len(self.type_ids)), -1, dtype=np.int64)
        on_net = np.flatnonzero(snap.snapped)
        if not len(on_net):
            return result
        if self._contraction is None:
            self._reduce()
        edge, offset = snap.edge[on_net], snap.offset_m[on_net]
        rest = net.edge_length_m[edge] - offset
        u, v = net.edge_u[edge], net.edge_v[edge]
        on_chain = self._on_chain()
        for column in range(len(self.type_ids)):
            found = self._node_sources(column, on_chain[column])
            if found is None:
                continue
            distance, source = found
            result[on_net, column] = np.where(distance[u] + offset <= distance[v] + rest,
                                              source[u], source[v])
        return result

    def _node_sources(self, column: int, on_chain: tuple) -> tuple | None:
        """Distance and first-reached facility (-1: none) of every network node, one type.

        None when the type has no facility on the network.
        """
        if self.node_distance_m is not None:  # kept by solve
            return self.node_distance_m[:, column], self._node_source[:, column]
        # a tiled run never solved the whole area
        reduced = self._contraction
        facilities = self.sources(self.type_ids[column]) - self.network.n_nodes
        if not len(facilities):
            return None
        graph, expand = self._searcher()
        reached, terminal_source = graph.search(facilities, self.limits_m[column])
        return expand(reduced, reached, terminal_source, on_chain, self.limits_m[column])

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


# --------------------------------------------------------------------------- searches


def _snap_unique(network: WalkNetwork, points) -> Snap:
    """:meth:`WalkNetwork.snap` of points, each distinct location snapped once.

    A facility of several types is one point per type; the snap of a point
    depends on its location only, so the copies share it.
    """
    geoms = np.asarray(getattr(points, "values", points), dtype=object)
    if not len(geoms) or not (shapely.get_type_id(geoms) == 0).all() \
            or shapely.is_empty(geoms).any():
        return network.snap(geoms)
    xy = shapely.get_coordinates(geoms)
    order = np.lexsort((xy[:, 1], xy[:, 0]))  # a third of np.unique(axis=0)'s time
    ordered = xy[order]
    new = np.r_[True, (ordered[1:] != ordered[:-1]).any(axis=1)]
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    first = order[new]
    snap = network.snap(geoms[first])
    moved = None if snap.ground_preferred is None else snap.ground_preferred[inverse]
    return Snap(snap.edge[inverse], snap.offset_m[inverse], snap.access_m[inverse], moved)


def _first_smallest(key: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per distinct key (ascending), the position of its smallest value, the first on ties.

    One stable sort by key (a lexicographic sort by key, value and position
    costs twice as much).
    """
    order = np.argsort(key, kind="stable")
    if not len(order):
        return order
    key, value = key[order], value[order]
    new = np.r_[True, key[1:] != key[:-1]]
    group = np.cumsum(new) - 1
    at_min = np.flatnonzero(value == np.minimum.reduceat(value, np.flatnonzero(new))[group])
    at_min_group = group[at_min]
    return order[at_min[np.r_[True, at_min_group[1:] != at_min_group[:-1]]]]


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _node_matrix(n_nodes: int, n_types: int, fill: float, *, dtype=float,
                 columns: np.ndarray | None = None) -> np.ndarray:
    """``(n_nodes, n_types)`` column-major matrix of ``fill``.

    With ``columns``, only those columns are filled (the others are left for
    the caller to write whole).
    """
    matrix = np.empty((n_nodes, n_types), dtype=dtype, order="F")
    if columns is None:
        matrix.fill(fill)
    else:
        for column in columns:
            matrix[:, column] = fill
    return matrix


class _Job:
    """What every type's search needs: the reduced graph (ready to search), the
    contraction to expand the terminals' results to all nodes, the node matrices to write
    them into (distance, and facility reached first for the detour index), and
    the facilities on chains per type column."""

    def __init__(self, searcher: tuple, contraction: Contraction,
                 matrices: tuple[np.ndarray, np.ndarray], on_chain: dict) -> None:
        (self.graph, self.expand), self.contraction = searcher, contraction
        self.distance, self.source = matrices
        self.on_chain = on_chain

    def __call__(self, job: tuple) -> int:
        """Search one ``(column, facilities, limit)`` and write its columns."""
        column, facilities, limit = job
        reached, origin = self.graph.search(facilities, limit)
        self.expand(self.contraction, reached, origin, self.on_chain[column], limit,
                    out=(self.distance[:, column], self.source[:, column]))
        return column


def _search(run: _Job, jobs: list, workers: int):
    """Run each ``(column, facilities, limit)`` job (see :class:`_Job`), yielding its
    column when done.

    With ``workers > 1`` the jobs are shared among that many threads: the
    compiled search and expansion release the GIL, and the threads write their
    columns straight into the shared matrices (no process to fork, no matrix
    to map into other processes).
    """
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="planner-search") as pool:
            yield from pool.map(run, jobs)
        return
    for job in jobs:
        yield run(job)


def _compiled(network: WalkNetwork) -> bool:
    """Whether the network is searched by the compiled search (:data:`COMPILED_MIN_NODES`)."""
    return network.n_nodes >= COMPILED_MIN_NODES


def _prepare_search(network: WalkNetwork) -> Contraction:
    """The network's contraction, with the compiled search loaded when it will search
    (on the second thread)."""
    contraction = contract(network)
    if _compiled(network):
        from planner.search import compile_search
        compile_search()
    return contraction


class _Ahead:
    """``function(*args)`` run on a second thread; :meth:`result` waits for it.

    A process is never forked while such a thread runs (the child would
    inherit its import locks held): :func:`os.fork` waits for it first.
    """

    _running: weakref.WeakSet = weakref.WeakSet()

    def __init__(self, function: Callable, *args) -> None:
        self._value, self._error = None, None
        self._thread: threading.Thread | None = threading.Thread(
            target=self._run, args=(function, args), name="planner-access-ahead", daemon=True)
        _Ahead._running.add(self)
        self._thread.start()

    def _run(self, function: Callable, args: tuple) -> None:
        try:
            self._value = function(*args)
        except BaseException as error:  # noqa: BLE001 - raised again by result()
            self._error = error

    def result(self):
        """The function's value (its exception is raised here)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            _Ahead._running.discard(self)
        if self._error is not None:
            raise self._error
        return self._value

    def __getstate__(self) -> dict:
        self.result()
        return {"_value": self._value, "_error": None, "_thread": None}

    @classmethod
    def wait_all(cls) -> None:
        """Wait for every running thread (before a fork)."""
        for ahead in list(cls._running):
            if ahead._thread is not None:
                ahead._thread.join()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_Ahead.wait_all)
