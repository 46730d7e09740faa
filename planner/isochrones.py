"""Walking service areas (isochrones) built from the network, not from circles.

For one facility type with threshold ``T`` and node distances ``d`` (walking
metres from the nearest facility of the type, :attr:`planner.access.Access.node_distance_m`),
the reachable part of an edge ``(u, v)`` of length ``L`` is

* from the ``u`` side, ``[0, T − d[u]]``;
* from the ``v`` side, ``[L − (T − d[v]), L]``;
* the whole edge when the two overlap (or either reaches across);
* and, for a facility of the type snapped onto the edge at offset ``s`` with
  an access leg ``a``, ``[s − (T − a), s + (T − a)]`` around it (a facility in
  the middle of a long block reaches along its own edge before it reaches
  either end), plus the access leg itself.

Three ways to draw it:

``"streets"`` (the default)
    The reachable pieces themselves: the streets within reach, as one
    MultiLineString per type (cut points computed with numpy, pieces joined
    into chains with :func:`shapely.line_merge` and simplified by
    ``settings.isochrone_simplify_m``). The map draws them as wide lines. This is what the
    analysis measures (a residence is covered when its own street is), it
    invents no area between streets, and it takes one vectorised pass per
    type: 0.2 s for the 55 types of a 20,000-node city, about 0.5 s at 250,000
    nodes, so that it is drawn at city scale too.

The other two widen the reachable network by ``settings.isochrone_buffer_m`` on either side
into polygons:

``"partition"``
    The whole network (with the facilities' access legs) is buffered and
    unioned **once**; points are sampled along every edge every
    ``settings.isochrone_sample_spacing_m`` and their Voronoi cells split that buffer into
    pieces, each belonging to its nearest stretch of street. A type's area is
    the coverage union (:func:`shapely.coverage_union_all`, linear time) of
    the cells of its reachable samples, clipped to the network buffer. Cuts
    fall within half a sample spacing of the exact cut point, and a point of
    the area belongs to the street it is nearest to: a residence drawn inside
    the area is one whose own street is reachable.
``"buffer"``
    The reachable pieces themselves become segments (cut points computed with
    numpy), joined into chains (:func:`shapely.line_merge`), buffered and
    merged with :func:`shapely.union_all`: the textbook construction, exact to
    the metre, but it unions thousands of overlapping polygons per type.

Measured on the Helsinki demo (6,700 edges, 34 types with facilities): 0.9–1.4 s
for ``partition`` against 4.5–6.3 s for ``buffer``; on a 20,000-node
synthetic city ``partition`` takes 7–70 s (dense facilities), ``streets`` well
under a second; the areas differ by 2–30%
(where a reachable street runs near an unreachable one, ``buffer`` paints
across to it, ``partition`` stops half-way). Buffering a whole
multilinestring in one GEOS call is slower still (15 s for one type). Both
are vectorised over edges; neither uses convex or concave hulls, which
overstate walkable areas.

Examples
--------
>>> areas = service_areas(analysis.network, analysis.access, analysis.catalogue.thresholds_m(),
...                       facility_points=analysis.facilities.geometry)
>>> areas.columns.tolist()
['type_id', 'threshold_m', 'geometry']
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner.access import Access
from planner.network import WalkNetwork

logger = logging.getLogger(__name__)

#: The methods :func:`service_areas` knows (``settings.isochrone_method``).
METHODS = ("streets", "partition", "buffer")


def reachable_segments(network: WalkNetwork, node_distance_m: np.ndarray, threshold_m: float,
                       *, facility_edge: np.ndarray | None = None,
                       facility_offset_m: np.ndarray | None = None,
                       facility_access_m: np.ndarray | None = None,
                       facility_xy: np.ndarray | None = None,
                       whole_edges: bool = True) -> np.ndarray:
    """The parts of the network within ``threshold_m`` of the nearest facility.

    Parameters
    ----------
    network
        The walking network (straight two-point edges).
    node_distance_m
        ``(n_nodes,)`` walking distance of every node from the nearest facility,
        metres; NaN or inf where it is beyond the search limit.
    threshold_m
        The walking threshold, metres.
    facility_edge, facility_offset_m, facility_access_m
        Where each facility of the type meets the network (a
        :class:`planner.network.Snap` restricted to snapped facilities of the
        type): its own edge is covered around it even when neither end is
        reached.
    facility_xy
        ``(n_facilities, 2)`` facility coordinates; adds their access legs.
    whole_edges
        Whether to include the edges reached from end to end
        (:func:`whole_edge_mask`); the ``streets`` drawing chains them itself.

    Returns
    -------
    numpy.ndarray
        ``(k, 2, 2)`` segment end coordinates, in the network's CRS.
    """
    facility = None if facility_edge is None else (
        facility_edge, facility_offset_m, facility_access_m, facility_xy)
    return _segments(network, _edge_reach(network, node_distance_m, threshold_m), threshold_m,
                     facility, whole_edges=whole_edges)


def _segments(network: WalkNetwork, reach: tuple[np.ndarray, np.ndarray, np.ndarray],
              threshold_m: float, facility: tuple | None, *,
              whole_edges: bool = True) -> np.ndarray:
    """:func:`reachable_segments` from :func:`_edge_reach` (``reach``) and the facilities'
    ``(edge, offset_m, access_m, xy)`` (``xy`` may be None)."""
    length = network.edge_length_m
    whole, from_u, from_v = reach
    part_u = ~whole & (from_u > 0)
    part_v = ~whole & (from_v > 0)
    edges = [np.flatnonzero(whole) if whole_edges else np.zeros(0, dtype=np.int64),
             np.flatnonzero(part_u), np.flatnonzero(part_v)]
    starts = [np.zeros(len(edges[0])), np.zeros(len(edges[1])),
              length[edges[2]] - from_v[edges[2]]]
    ends = [length[edges[0]], from_u[edges[1]], length[edges[2]]]
    legs = np.empty((0, 2, 2))
    if facility is not None and len(facility[0]):
        facility_edge, facility_offset_m, facility_access_m, facility_xy = facility
        remaining = threshold_m - facility_access_m
        inside = remaining > 0
        edge = facility_edge[inside]
        offset = facility_offset_m[inside]
        edges.append(edge)
        starts.append(np.maximum(offset - remaining[inside], 0.0))
        ends.append(np.minimum(offset + remaining[inside], length[edge]))
        if facility_xy is not None:
            foot = points_along(network, edge, offset)
            legs = np.stack([facility_xy[inside], foot], axis=1)
            legs = legs[facility_access_m[inside] > 0]
    edge = np.concatenate(edges).astype(np.int64)
    start, end = np.concatenate(starts), np.concatenate(ends)
    keep = end > start
    edge, start, end = edge[keep], start[keep], end[keep]
    # both ends as points_along computes each, the edges' ends and lengths taken once
    u_xy = network.node_xy[network.edge_u[edge]]
    step = network.node_xy[network.edge_v[edge]] - u_xy
    scale = np.maximum(length[edge], 1e-12)
    segments = np.empty((len(edge), 2, 2))
    segments[:, 0] = u_xy + np.clip(start / scale, 0.0, 1.0)[:, None] * step
    segments[:, 1] = u_xy + np.clip(end / scale, 0.0, 1.0)[:, None] * step
    return np.concatenate([segments, legs]) if len(legs) else segments


def _end_budgets(network: WalkNetwork, node_distance_m: np.ndarray,
                 threshold_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Walking metres left at the ``u`` and the ``v`` end of every edge (may be ≤ 0).

    ``threshold − distance`` once per node, then taken per edge end: the
    same values as per edge. An unreached node (NaN) leaves NaN, which every
    comparison made of it (``>``, ``>=``, also after a sum) treats like the
    −inf of an infinite distance.
    """
    budget = threshold_m - node_distance_m
    return budget[network.edge_u], budget[network.edge_v]


def _whole_edges(length_m: np.ndarray, from_u: np.ndarray, from_v: np.ndarray) -> np.ndarray:
    """Edges reached end to end: across from either end, or from both ends together.

    :class:`planner.reach_cells.StreetReach` packs the same comparisons into bits.
    """
    return (from_u >= length_m) | (from_v >= length_m) | (
        (from_u > 0) & (from_v > 0) & (from_u + from_v >= length_m))


def _edge_reach(network: WalkNetwork, node_distance_m: np.ndarray,
                threshold_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges reached end to end, and the budget left at either end (metres, may be ≤ 0)."""
    from_u, from_v = _end_budgets(network, node_distance_m, threshold_m)
    return _whole_edges(network.edge_length_m, from_u, from_v), from_u, from_v


def whole_edge_mask(network: WalkNetwork, node_distance_m: np.ndarray,
                    threshold_m: float) -> np.ndarray:
    """``(n_edges,)`` whether each edge is within ``threshold_m`` from end to end."""
    return _edge_reach(network, node_distance_m, threshold_m)[0]


class StreetChains:
    """The network's edges in storage order, oriented so that runs of them join end to end.

    Consecutive edges of an OSM way are stored one after another, so most of
    a street is a run of edges where each one ends where the next begins.
    Drawing the whole edges a type reaches as such runs (one linestring per
    run instead of one per edge) takes the geometry count, the time and the
    file size down by an order of magnitude, with numpy only.
    """

    def __init__(self, network: WalkNetwork) -> None:
        u, v = network.edge_u, network.edge_v
        self.xy = network.node_xy
        n = len(u)
        # the node each edge shares with the next one (-1: none)
        shared = np.full(n, -1, dtype=np.int64)
        if n > 1:
            for mine in (u, v):  # two passes, whole arrays each
                for theirs in (u[1:], v[1:]):
                    hit = (mine[:-1] == theirs) & (shared[:-1] < 0)
                    shared[:-1][hit] = mine[:-1][hit]
        previous = np.r_[-1, shared[:-1]]
        # orient: end at the node shared with the next edge, else start at the one
        # shared with the previous edge, else keep u → v
        flip = np.where(shared >= 0, shared == u, previous == v)
        self.start = np.where(flip, v, u)
        self.end = np.where(flip, u, v)
        #: whether edge i ends where edge i + 1 starts
        self.link = np.r_[self.end[:-1] == self.start[1:], False] if n else np.zeros(0, bool)

    def lines(self, whole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ragged linestrings of the edges in ``whole``: ``(coords, line_offsets)``."""
        edge = np.flatnonzero(whole)
        if len(edge) == 0:
            return np.empty((0, 2)), np.zeros(1, dtype=np.int64)
        # an edge continues the line of the previous kept edge when they are stored
        # one after another and join
        joined = np.r_[False, (edge[1:] == edge[:-1] + 1) & self.link[edge[:-1]]]
        count = np.where(joined, 1, 2)  # a line's first edge brings its start node
        offsets = np.cumsum(count) - count
        nodes = np.empty(count.sum(), dtype=np.int64)
        nodes[offsets + count - 1] = self.end[edge]
        first = ~joined
        nodes[offsets[first]] = self.start[edge[first]]
        line_starts = offsets[first]
        return self.xy[nodes], np.r_[line_starts, len(nodes)]


def points_along(network: WalkNetwork, edge: np.ndarray, offset_m: np.ndarray) -> np.ndarray:
    """Points at ``offset_m`` from the ``u`` end of each edge."""
    u_xy = network.node_xy[network.edge_u[edge]]
    v_xy = network.node_xy[network.edge_v[edge]]
    share = offset_m / np.maximum(network.edge_length_m[edge], 1e-12)
    return u_xy + np.clip(share, 0.0, 1.0)[:, None] * (v_xy - u_xy)


#: The drawing options :func:`service_areas` accepts, and the module defaults they override.
DRAWING_DEFAULTS = {"width_m": "isochrone_buffer_m",
                    "segments_per_quarter": "isochrone_quad_segs",
                    "tolerance_m": "isochrone_simplify_m",
                    "spacing_m": "isochrone_sample_spacing_m"}


def service_areas(network: WalkNetwork, access: Access,
                  thresholds_m: Mapping[str, float] | None = None, *,
                  facility_points=None, how: str | None = None,
                  **drawing: float | None) -> gpd.GeoDataFrame:
    """The walking service area of every facility type, one (multi)polygon each.

    Parameters
    ----------
    network
        The walking network.
    access
        A solved :class:`planner.access.Access` on the same network.
    thresholds_m
        Threshold per type id, metres; the types to draw. By default the
        access search limits halved (:data:`planner.settings.search_limit_factor`).
    facility_points
        The facility points the access was built from (same order); adds
        each facility's access leg, so that a facility set back from the
        street lies inside its own area.
    how
        ``"streets"``, ``"partition"`` or ``"buffer"`` (``settings.isochrone_method``; see
        the module notes).
    **drawing
        ``width_m`` (buffer half-width, ``settings.isochrone_buffer_m``),
        ``segments_per_quarter`` (buffer ``quad_segs``, ``settings.isochrone_quad_segs``),
        ``tolerance_m`` (simplification, ``settings.isochrone_simplify_m``) and ``spacing_m``
        (sample spacing of ``partition``, ``settings.isochrone_sample_spacing_m``); None
        keeps the default.

    Returns
    -------
    geopandas.GeoDataFrame
        ``type_id``, ``threshold_m``, ``geometry`` (in the network's CRS:
        MultiLineStrings with ``streets``, else (Multi)Polygons), one row per
        type that has at least one facility on the network, in the order of
        ``thresholds_m``.
    """
    if access.node_distance_m is None:
        access.solve()
    how = settings.isochrone_method if how is None else how
    if how not in METHODS:
        message = f"unknown service-area method {how!r}"
        raise ValueError(message)
    options = _drawing_options(drawing)
    xy = None
    if facility_points is not None:
        xy = shapely.get_coordinates(np.asarray(getattr(facility_points, "values",
                                                        facility_points), dtype=object))
    drawn = drawn_types(network, access, thresholds_m, limited=how != "streets")
    if how == "streets":
        return street_areas(network, access, drawn, facility_xy=xy,
                            tolerance_m=options["tolerance_m"])
    area = _area_function(network, access, xy, how, options) if drawn else None

    def finish(item):
        geometry = area(*item)
        if options["tolerance_m"] > 0:
            geometry = shapely.simplify(geometry, options["tolerance_m"], preserve_topology=True)
        return geometry

    # GEOS releases the GIL: the per-type unions run side by side (same result)
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        areas = list(pool.map(finish, drawn))
    return gpd.GeoDataFrame({"type_id": [type_id for type_id, _ in drawn],
                             "threshold_m": [threshold for _, threshold in drawn]},
                            geometry=areas if areas else [], crs=network.crs)


def _drawing_options(drawing: Mapping[str, float | None]) -> dict[str, float]:
    """The drawing options with the module defaults filled in."""
    unknown = set(drawing) - set(DRAWING_DEFAULTS)
    if unknown:
        message = f"service_areas: unknown option(s) {', '.join(sorted(unknown))}"
        raise TypeError(message)
    return {name: getattr(settings, default) if drawing.get(name) is None else drawing[name]
            for name, default in DRAWING_DEFAULTS.items()}


def drawn_types(network: WalkNetwork, access: Access, thresholds_m: Mapping[str, float] | None,
                 *, limited: bool = True) -> list[tuple[str, float]]:
    """``(type_id, threshold)`` of the types to draw: with a facility on the network."""
    if thresholds_m is None:
        thresholds_m = dict(zip(access.type_ids,
                                access.limits_m / settings.search_limit_factor, strict=True))
    max_edges = settings.isochrone_max_edges
    if limited and max_edges is not None and network.n_edges > max_edges:
        logger.warning("service areas skipped: the network has %d edges (more than "
                       "planner.settings.isochrone_max_edges = %d)", network.n_edges, max_edges)
        return []
    # one hashing pass over the facilities, not one comparison of them all per type
    present = set(pd.unique(access.facility_type[access.facility_snap.snapped]))
    return [(type_id, float(threshold)) for type_id, threshold in thresholds_m.items()
            if type_id in access.type_ids and type_id in present]


def _area_function(network: WalkNetwork, access: Access, xy: np.ndarray | None, how: str,
                   options: Mapping[str, float]):
    """``area(type_id, threshold)``: the unsimplified service area of one type."""
    columns = {type_id: column for column, type_id in enumerate(access.type_ids)}
    snap = access.facility_snap
    width, quads = options["width_m"], int(options["segments_per_quarter"])
    if how == "partition":
        partition = _Partition(network, snap, xy, width, quads, options["spacing_m"])

        def area(type_id: str, threshold: float):
            return partition.area(access.node_distance_m[:, columns[type_id]], threshold,
                                  access.facility_type == type_id)
        return area

    def area(type_id: str, threshold: float):
        mask = (access.facility_type == type_id) & snap.snapped
        segments = reachable_segments(
            network, access.node_distance_m[:, columns[type_id]], threshold,
            facility_edge=snap.edge[mask], facility_offset_m=snap.offset_m[mask],
            facility_access_m=snap.access_m[mask], facility_xy=None if xy is None else xy[mask])
        if len(segments) == 0:
            return shapely.Polygon()
        chains = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(
            shapely.linestrings(segments))))
        return shapely.union_all(shapely.buffer(chains, width, quad_segs=quads))
    return area


def street_areas(network: WalkNetwork, access: Access, drawn: list[tuple[str, float]], *,
                 facility_xy: np.ndarray | None = None, tolerance_m: float | None = None,
                 whole_bits: np.ndarray | None = None) -> gpd.GeoDataFrame:
    """The ``streets`` drawing of :func:`service_areas`: the streets within reach of each type.

    Parameters
    ----------
    network, access
        As for :func:`service_areas` (``access`` solved).
    drawn
        ``(type_id, threshold)`` of the types to draw (:func:`drawn_types`).
    facility_xy
        ``(n_facilities, 2)`` coordinates of the facilities the access was
        built from; adds their access legs.
    tolerance_m
        Simplification, metres (``settings.isochrone_simplify_m``).
    whole_bits
        ``(n_edges, ⌈len(drawn) / 8⌉)`` the edges every drawn type reaches end
        to end, little-endian bits in the order of ``drawn``
        (:class:`planner.reach_cells.StreetReach` computes them with the same
        comparisons): read instead of compared again.

    Returns
    -------
    geopandas.GeoDataFrame
        ``type_id``, ``threshold_m``, ``geometry`` (one MultiLineString per
        type, in the network's CRS), in the order of ``drawn``.
    """
    tolerance_m = settings.isochrone_simplify_m if tolerance_m is None else tolerance_m
    return gpd.GeoDataFrame(
        {"type_id": [type_id for type_id, _ in drawn],
         "threshold_m": [threshold for _, threshold in drawn]},
        geometry=_street_areas(network, access, facility_xy, drawn, tolerance_m, whole_bits),
        crs=network.crs)


def _street_areas(network: WalkNetwork, access: Access, xy: np.ndarray | None,
                  drawn: list[tuple[str, float]], tolerance_m: float,
                  whole_bits: np.ndarray | None = None) -> np.ndarray:
    """The streets within reach of every drawn type, one MultiLineString each.

    Whole edges come as runs of :class:`StreetChains`, the cut pieces, the
    stretches around facilities and the access legs as two-point lines
    (:func:`reachable_segments`); all types become geometries in one
    :func:`shapely.from_ragged_array` call. The ends' budgets are computed
    once per type and serve both; the whole edges are read from
    ``whole_bits`` when given (:func:`street_areas`).
    """
    if not drawn:
        return np.array([], dtype=object)
    chains = StreetChains(network)
    columns = {type_id: column for column, type_id in enumerate(access.type_ids)}
    snap = access.facility_snap
    length = network.edge_length_m
    # each facility's drawn type (-1: none, or off the network), hashed once for all types
    code = np.where(snap.snapped, pd.Index([type_id for type_id, _ in drawn]).get_indexer(
        access.facility_type), -1)
    coords, line_sizes, lines_per_type = [], [], []
    for index, (type_id, threshold) in enumerate(drawn):  # one vectorised pass per type
        from_u, from_v = _end_budgets(network, access.node_distance_m[:, columns[type_id]],
                                      threshold)
        if whole_bits is None:
            whole = _whole_edges(length, from_u, from_v)
        else:
            whole = (whole_bits[:, index >> 3] & np.uint8(1 << (index & 7))) != 0
        mask = code == index
        run_xy, run_offsets = chains.lines(whole)
        pieces = _segments(network, (whole, from_u, from_v), threshold,
                           (snap.edge[mask], snap.offset_m[mask], snap.access_m[mask],
                            None if xy is None else xy[mask]), whole_edges=False)
        coords += [run_xy, pieces.reshape(-1, 2)]
        line_sizes += [np.diff(run_offsets), np.full(len(pieces), 2, dtype=np.int64)]
        lines_per_type.append(len(run_offsets) - 1 + len(pieces))
    line_offsets = np.r_[0, np.cumsum(np.concatenate(line_sizes))]
    type_offsets = np.r_[0, np.cumsum(lines_per_type)]
    geometries = shapely.from_ragged_array(
        shapely.GeometryType.MULTILINESTRING, np.concatenate(coords),
        (line_offsets, type_offsets))
    if tolerance_m > 0:
        # lines need no topology check: plain Douglas-Peucker, several times faster
        geometries = shapely.simplify(geometries, tolerance_m, preserve_topology=False)
    return geometries


class _Partition:
    """Street samples, their Voronoi cells and the buffered network, shared by all types.

    Samples sit every ``spacing_m`` (at most) inside every edge, and along each
    facility's access leg (reachable for the facility's own type, and for
    any type that reaches the leg's foot on the street).
    """

    def __init__(self, network: WalkNetwork, snap, facility_xy: np.ndarray | None,
                 width: float, quads: int, spacing_m: float) -> None:
        self.network = network
        self.snap = snap
        length = network.edge_length_m
        spacing = max(float(spacing_m), float(length.sum()) / settings.isochrone_max_samples)
        count = np.maximum(1, np.ceil(length / spacing).astype(np.int64))
        edge = np.repeat(np.arange(network.n_edges), count)
        rank = np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
        offset = (rank + 0.5) * length[edge] / count[edge]
        points = [points_along(network, edge, offset)]
        owner = [np.full(len(edge), -1)]
        edges, offsets = [edge], [offset]
        lines = [shapely.get_parts(shapely.line_merge(shapely.multilinestrings(
            network.edge_geometry)))]
        on_net = np.flatnonzero(snap.snapped)
        if facility_xy is not None and len(on_net):
            foot = points_along(network, snap.edge[on_net], snap.offset_m[on_net])
            leg = snap.access_m[on_net]
            per_leg = np.ceil(leg / spacing).astype(np.int64) + 1  # + the facility itself
            row = np.repeat(np.arange(len(on_net)), per_leg)
            rank = np.arange(len(row)) - np.repeat(np.cumsum(per_leg) - per_leg, per_leg)
            share = np.minimum((rank + 0.5) / (per_leg[row] - 1).clip(min=1), 1.0)
            share[rank == per_leg[row] - 1] = 1.0
            points.append(foot[row] + share[:, None] * (facility_xy[on_net][row] - foot[row]))
            owner.append(on_net[row])
            edges.append(snap.edge[on_net][row])
            offsets.append(snap.offset_m[on_net][row])
            has_leg = leg > 0
            if has_leg.any():
                lines.append(shapely.linestrings(np.stack(
                    [foot[has_leg], facility_xy[on_net][has_leg]], axis=1)))
        xy = np.concatenate(points)
        self.edge = np.concatenate(edges)
        self.offset = np.concatenate(offsets)
        self.owner = np.concatenate(owner)
        # equal points share one cell (a Voronoi diagram needs distinct sites)
        unique, self.site = np.unique(np.round(xy, 3), axis=0, return_inverse=True)
        self.site = self.site.ravel()
        self.network_area = shapely.union_all(shapely.buffer(np.concatenate(lines), width,
                                                             quad_segs=quads))
        extent = shapely.buffer(shapely.envelope(self.network_area), 10 * width + 100)
        if len(unique) >= 2:
            self.cells = shapely.get_parts(shapely.voronoi_polygons(
                shapely.multipoints(unique), extend_to=extent, ordered=True))
        else:
            self.cells = np.array([extent], dtype=object)
        order = np.argsort(self.edge, kind="stable")
        self._by_edge = order
        self._edge_sorted = self.edge[order]

    def reach(self, node_distance_m: np.ndarray, threshold_m: float,
              of_type: np.ndarray) -> np.ndarray:
        """Which samples lie within ``threshold_m`` of the nearest facility."""
        net = self.network
        distance = np.where(np.isfinite(node_distance_m), node_distance_m, np.inf)
        length = net.edge_length_m[self.edge]
        reach = (self.offset <= threshold_m - distance[net.edge_u[self.edge]]) | (
            length - self.offset <= threshold_m - distance[net.edge_v[self.edge]])
        snap = self.snap
        own = np.flatnonzero(of_type & snap.snapped)
        reach |= (self.owner >= 0) & of_type[np.maximum(self.owner, 0)] & (
            snap.access_m[np.maximum(self.owner, 0)] <= threshold_m)
        if len(own):  # along a facility's own edge, before either end is reached
            low = np.searchsorted(self._edge_sorted, snap.edge[own], side="left")
            high = np.searchsorted(self._edge_sorted, snap.edge[own], side="right")
            count = high - low
            which = np.repeat(np.arange(len(own)), count)
            rank = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
            sample = self._by_edge[low[which] + rank]
            near = np.abs(self.offset[sample] - snap.offset_m[own][which]) <= (
                threshold_m - snap.access_m[own][which])
            reach[sample[near]] = True
        return reach

    def area(self, node_distance_m: np.ndarray, threshold_m: float, of_type: np.ndarray):
        """The service area: reachable samples' cells, clipped to the network buffer."""
        reach = self.reach(node_distance_m, threshold_m, of_type)
        sites = np.bincount(self.site, weights=reach, minlength=len(self.cells)) > 0
        if not sites.any():
            return shapely.Polygon()
        return shapely.intersection(shapely.coverage_union_all(self.cells[sites]),
                                    self.network_area)


def analysis_service_areas(analysis, **kwargs) -> gpd.GeoDataFrame:
    """:func:`service_areas` of every catalogue type of a :class:`planner.pipeline.Analysis`."""
    return service_areas(analysis.network, analysis.access, analysis.catalogue.thresholds_m(),
                         facility_points=analysis.facilities.geometry, **kwargs)
