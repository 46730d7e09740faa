"""The fast paths of the network engine give what the plain ones give, bit for bit."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS

import planner.network as network_module
import planner.snapping as snapping_module
from planner.network import WalkNetwork, contract, grade_separated
from planner.snapping import EdgeSnapper


def _fields(snap) -> list[np.ndarray]:
    return [snap.edge, snap.offset_m, snap.access_m, snap.ground_preferred]


def _assert_same_arrays(first: list, second: list) -> None:
    for a, b in zip(first, second, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def _mixed_points(network: WalkNetwork, n_points: int = 3000) -> np.ndarray:
    """Random points around the network, some on nodes, some not points at all."""
    rng = np.random.default_rng(7)
    low, high = network.node_xy.min(axis=0) - 300, network.node_xy.max(axis=0) + 300
    xy = low + rng.random((n_points, 2)) * (high - low)
    geoms = shapely.points(xy)
    geoms[1::10] = shapely.points(network.node_xy[rng.integers(0, network.n_nodes,
                                                               len(geoms[1::10]))])
    geoms[::97] = shapely.buffer(geoms[::97], 12)
    geoms[5::199] = shapely.linestrings(np.stack([xy[5::199], xy[5::199] + 30], axis=1))
    geoms[7::503] = shapely.Point()
    return geoms


def test_blocks_do_not_change_the_snap(helsinki_network, monkeypatch):
    geoms = _mixed_points(helsinki_network)
    whole = _fields(helsinki_network.snap(geoms))
    monkeypatch.setattr(snapping_module, "BLOCK_POINTS", 7)
    fresh = WalkNetwork(**{key: getattr(helsinki_network, key) for key in (
        "node_ids", "node_xy", "edge_u", "edge_v", "edge_length_m", "crs",
        "edge_grade_separated")})
    _assert_same_arrays(whole, _fields(fresh.snap(geoms)))


def test_snap_is_the_nearest_edge_for_any_geometry(helsinki_network):
    geoms = _mixed_points(helsinki_network, 400)
    snap = helsinki_network.snap(geoms, max_distance_m=1e6, prefer_ground=False)
    lines = helsinki_network.edge_geometry
    empty = shapely.is_empty(geoms)
    assert not snap.snapped[empty].any() and snap.snapped[~empty].all()
    brute = np.array([shapely.distance(lines, geom).min() for geom in geoms[~empty]])
    np.testing.assert_allclose(snap.access_m[~empty], brute, atol=1e-6)


def test_a_snapped_network_pickles_and_an_old_pickle_snaps(helsinki_network):
    geoms = _mixed_points(helsinki_network, 500)
    before = _fields(helsinki_network.snap(geoms))
    copy = pickle.loads(pickle.dumps(helsinki_network))
    _assert_same_arrays(before, _fields(copy.snap(geoms)))
    del copy._snapper  # as a network pickled before the snapper existed
    _assert_same_arrays(before, _fields(copy.snap(geoms)))


def test_snapper_without_edges_or_points():
    snapper = EdgeSnapper(np.zeros((0, 2)), np.zeros(0, dtype=np.int64),
                          np.zeros(0, dtype=np.int64))
    edge, offset_m, access_m, moved = snapper.snap(shapely.points([[0.0, 0.0]]), 10.0, None,
                                                   np.zeros(0))
    assert edge.tolist() == [-1] and np.isnan(access_m).all() and not moved.any()


def _line(n_nodes: int) -> WalkNetwork:
    rng = np.random.default_rng(3)
    xy = np.column_stack([np.cumsum(1 + rng.random(n_nodes) * 40), rng.random(n_nodes)])
    u, v = np.arange(n_nodes - 1), np.arange(1, n_nodes)
    return WalkNetwork(node_ids=np.arange(n_nodes), node_xy=xy, edge_u=u, edge_v=v,
                       edge_length_m=np.hypot(*(xy[v] - xy[u]).T), crs=CRS.from_epsg(32650))


@pytest.mark.parametrize("steps", [1, 3])
def test_long_chains_are_measured_as_short_ones(helsinki_network, monkeypatch, steps):
    walked = contract(helsinki_network)
    monkeypatch.setattr(network_module, "CHAIN_WALK_STEPS", steps)
    searched = contract(helsinki_network)
    for key in walked.__dataclass_fields__:
        _assert_same_arrays([getattr(walked, key)], [getattr(searched, key)])


def test_a_chain_longer_than_the_walk_adds_its_lengths_in_order():
    line = _line(network_module.CHAIN_WALK_STEPS * 2 + 5)
    reduced = contract(line)
    assert reduced.n_terminals == 2 and len(reduced.chain_m) == 1
    assert reduced.terminals[reduced.chain_a[0]] == 0  # the chain starts at node 0
    sums = np.add.accumulate(line.edge_length_m)  # sequential, as a search adds them
    assert reduced.interior.tolist() == list(range(1, line.n_nodes - 1))
    assert reduced.offset_m.tobytes() == sums[:-1].tobytes()
    assert reduced.chain_m[0] == sums[-1]


@pytest.mark.parametrize("node_ids", [np.arange(10, 30), np.arange(20) * 10**9 + 7])
def test_positions_of_dense_and_sparse_ids(node_ids):
    rng = np.random.default_rng(1)
    node_ids = rng.permutation(node_ids)
    ids = np.concatenate([rng.choice(node_ids, 50), [-5, 0, 10**12, node_ids.max() + 1]])
    expected = pd.Index(node_ids).get_indexer(ids)
    assert network_module._positions(node_ids, ids).tolist() == expected.tolist()


def test_grade_separation_reads_only_the_tagged_edges():
    edges = pd.DataFrame({
        "bridge": [None, "yes", "no", None, None, None, None, None],
        "tunnel": [None, None, None, "building_passage", "yes", None, None, None],
        "layer": [None, None, None, None, None, "-1", "0", "x"]})
    assert grade_separated(edges).tolist() == [False, True, False, False, True, True,
                                               False, False]
    assert not grade_separated(edges.iloc[:1]).any()
    assert not grade_separated(pd.DataFrame({"highway": ["footway"]})).any()
