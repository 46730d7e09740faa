"""Walking distances: against networkx on the real demo graph, and by properties."""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.access import Access
from planner.settings import min_edge_length_m


def networkx_distances(net, facility_points, residence_points):
    """Reference: split every edge at the points on it, then multi-source Dijkstra.

    Snapping is done here by brute force with shapely, independently of
    ``WalkNetwork.snap``.
    """
    geometry = net.edge_geometry
    graph = nx.Graph()
    for u, v, length in zip(net.edge_u, net.edge_v, net.edge_length_m, strict=True):
        graph.add_edge(int(u), int(v), weight=float(length))
    on_edge: dict[int, list] = {}
    for label, index, point in [*(("f", i, p) for i, p in enumerate(facility_points)),
                                *(("r", i, p) for i, p in enumerate(residence_points))]:
        edge = int(np.argmin(shapely.distance(geometry, point)))
        offset = shapely.line_locate_point(geometry[edge], point)
        access = shapely.distance(geometry[edge], point)
        on_edge.setdefault(edge, []).append((offset, (label, index), access))
    for edge, entries in on_edge.items():
        u, v = int(net.edge_u[edge]), int(net.edge_v[edge])
        graph.remove_edges_from([(u, v)])
        chain = [(0.0, u)] + [(off, ("at", key)) for off, key, _ in sorted(entries)] \
            + [(float(net.edge_length_m[edge]), v)]
        for (a_off, a), (b_off, b) in zip(chain, chain[1:], strict=False):
            graph.add_edge(a, b, weight=max(b_off - a_off, 0.0))
        for _, key, access in entries:
            graph.add_edge(key, ("at", key), weight=float(access))
    sources = [("f", index) for index in range(len(facility_points))]
    lengths = nx.multi_source_dijkstra_path_length(graph, sources, weight="weight")
    return np.array([lengths.get(("r", index), np.inf) for index in range(len(residence_points))])


def test_distances_match_networkx_on_the_demo_graph(helsinki_analysis):
    analysis = helsinki_analysis
    # the reference snaps to the nearest edge; grade-separated edges are tested apart
    net = dataclasses.replace(analysis.network, edge_grade_separated=None)
    rng = np.random.default_rng(7)
    residences = analysis.residences
    sample = residences.iloc[np.sort(rng.choice(len(residences), 150, replace=False))]
    facilities = analysis.facilities
    checked = 0
    for type_id in facilities["type_id"].value_counts().index[:6]:
        points = facilities.loc[facilities["type_id"] == type_id, "geometry"].to_numpy()
        access = Access(net, points, [type_id] * len(points), {type_id: 1e9}).solve()
        ours = access.point_distances(sample.geometry)[:, 0]
        reference = networkx_distances(net, points, sample.geometry.to_numpy())
        # csgraph needs positive weights: zero legs count as settings.min_edge_length_m (1 cm)
        np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=2.01 * min_edge_length_m)
        checked += 1
    assert checked >= 3


def test_pipeline_distances_are_the_access_distances(helsinki_analysis):
    analysis = helsinki_analysis
    thresholds = analysis.catalogue.thresholds_m()
    for column, type_id in zip(analysis.distance_columns, analysis.catalogue.type_ids,
                               strict=True):
        values = analysis.residences[column].to_numpy(float)
        finite = values[~np.isnan(values)]
        assert np.all(finite >= 0)
        assert np.all(finite <= thresholds[type_id] * 2 + 0.1)  # search limit = 2 × threshold


def random_points(net, fractions):
    (xmin, ymin), (xmax, ymax) = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    xy = np.array(fractions, dtype=float).reshape(-1, 2) * [xmax - xmin, ymax - ymin]
    return shapely.points(xy + [xmin, ymin])


fractions = st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=8)


@settings(max_examples=30, deadline=None)
@given(facilities=fractions, extra=st.tuples(st.floats(0, 1), st.floats(0, 1)),
       residents=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1,
                          max_size=40))
def test_adding_a_facility_never_increases_a_distance(helsinki_network, facilities, extra,
                                                      residents):
    net = helsinki_network
    homes = random_points(net, residents)
    before_points = random_points(net, facilities)
    after_points = random_points(net, [*facilities, extra])
    limit = {"x": 5000.0}
    before = Access(net, before_points, ["x"] * len(before_points), limit).point_distances(homes)
    after = Access(net, after_points, ["x"] * len(after_points), limit).point_distances(homes)
    before, after = np.nan_to_num(before, nan=np.inf), np.nan_to_num(after, nan=np.inf)
    assert np.all(after <= before + 1e-9)


@settings(max_examples=30, deadline=None)
@given(facilities=fractions, residents=fractions)
def test_distance_is_at_least_the_straight_line(helsinki_network, facilities, residents):
    net = helsinki_network
    homes = random_points(net, residents)
    sites = random_points(net, facilities)
    walked = Access(net, sites, ["x"] * len(sites), {"x": 1e9}).point_distances(homes)[:, 0]
    straight = shapely.distance(homes[:, None], sites[None, :]).min(axis=1)
    assert np.all(walked >= straight - 1e-6)


def test_beyond_the_limit_is_missing_not_zero(helsinki_network):
    net = helsinki_network
    sites = shapely.points(net.node_xy[:1])
    far = np.argmax(np.hypot(*(net.node_xy - net.node_xy[0]).T))
    homes = shapely.points(net.node_xy[[far, 0]])
    distance = Access(net, sites, ["x"], {"x": 50.0}).point_distances(homes)[:, 0]
    assert np.isnan(distance[0]) and distance[1] <= 50.0


def test_type_without_facilities_is_all_missing(helsinki_network):
    homes = random_points(helsinki_network, [(0.5, 0.5)])
    access = Access(helsinki_network, [], [], {"none": 1000.0})
    assert np.isnan(access.point_distances(homes)).all()


def test_nearest_facility_is_the_one_the_full_graph_search_reaches(helsinki_analysis):
    """The detour index's facility per point: from the contracted search's sources
    (solved, and per type when never solved, as in a tiled run) equals a bounded
    search with sources on the uncontracted graph."""
    from scipy.sparse.csgraph import dijkstra

    access = helsinki_analysis.access
    net = access.network
    snap = net.snap(helsinki_analysis.residences.geometry)
    on_net = np.flatnonzero(snap.snapped)
    edge, offset = snap.edge[on_net], snap.offset_m[on_net]
    expected = np.full((len(snap.edge), len(access.type_ids)), -1)
    for column, (type_id, limit) in enumerate(zip(access.type_ids, access.limits_m,
                                                  strict=True)):
        sources = access.sources(type_id)
        if not len(sources):
            continue
        distance, _, origin = dijkstra(access._graph, directed=False, indices=sources,
                                       min_only=True, limit=limit, return_predecessors=True)
        u, v = net.edge_u[edge], net.edge_v[edge]
        reached = np.where(distance[u] + offset <= distance[v] + net.edge_length_m[edge] - offset,
                           origin[u], origin[v])
        expected[on_net, column] = np.where(reached >= net.n_nodes, reached - net.n_nodes, -1)
    assert (access.nearest_facilities(snap) == expected).all()
    unsolved = Access(net, helsinki_analysis.facilities.geometry,
                      helsinki_analysis.facilities["type_id"],
                      dict(zip(access.type_ids, access.limits_m, strict=True)))
    assert (unsolved.nearest_facilities(snap) == expected).all()


def test_facility_snap_of_repeated_points_is_the_snap_of_each(helsinki_network):
    """A facility of several types is one point per type: snapped once, shared."""
    net = helsinki_network
    points = random_points(net, [(0.2, 0.3), (0.7, 0.1), (0.2, 0.3), (0.5, 0.9), (0.7, 0.1)])
    access = Access(net, points, ["a", "b", "c", "a", "c"], {"a": 900.0, "b": 900.0, "c": 900.0})
    expected = net.snap(points)
    for field in dataclasses.fields(expected):
        assert np.array_equal(getattr(access.facility_snap, field.name),
                              getattr(expected, field.name), equal_nan=True)


def test_node_matrix_fills_only_the_columns_asked_for():
    from planner.access import _node_matrix

    matrix = _node_matrix(4, 3, np.inf, columns=np.array([1]))
    assert np.isinf(matrix[:, 1]).all() and matrix.flags.f_contiguous
    full = _node_matrix(4, 3, -1, dtype=np.int32)
    assert (full == -1).all()
