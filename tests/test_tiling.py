"""A tiled run gives the same distances as the untiled run."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from planner.network import build_network
from planner.pipeline import analyze
from planner.tiling import subset_network, tile_bounds, tiled_point_distances
from tests.conftest import DEMO_COMMUNITIES


def test_subset_keeps_lengths_and_ids(helsinki_network):
    net = helsinki_network
    edges = np.arange(0, net.n_edges, 3)
    sub = subset_network(net, edges)
    assert sub.n_edges == len(edges)
    np.testing.assert_array_equal(sub.node_ids[sub.edge_u], net.node_ids[net.edge_u[edges]])
    np.testing.assert_allclose(sub.edge_length_m, net.edge_length_m[edges])


def test_tile_bounds_cover_every_point():
    xy = np.array([[0.0, 0.0], [950.0, 10.0], [120.0, 730.0], [960.0, 20.0]])
    tile, bounds = tile_bounds(xy, 500.0)
    assert len(bounds) == 3 and tile[1] == tile[3]
    for index, point in enumerate(xy):
        xmin, ymin, xmax, ymax = bounds[tile[index]]
        assert xmin <= point[0] < xmax and ymin <= point[1] < ymax


@pytest.mark.parametrize("tile_m", [150.0, 400.0])
def test_tiled_distances_equal_untiled(helsinki_analysis, tile_m):
    analysis = helsinki_analysis
    access = analysis.access
    facilities = analysis.facilities
    points = analysis.residences.geometry
    whole = access.point_distances(points)
    tiled = tiled_point_distances(analysis.network, facilities.geometry,
                                  facilities["type_id"], dict(zip(access.type_ids,
                                                                  access.limits_m,
                                                                  strict=True)),
                                  points, tile_m)
    np.testing.assert_allclose(tiled, whole, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert np.isfinite(whole).sum() > 1000  # a real comparison, not NaN against NaN


def test_tiled_analysis_equals_untiled(helsinki_area, helsinki_analysis):
    tiled = analyze(helsinki_area, communities=DEMO_COMMUNITIES, tile_m=300.0)
    np.testing.assert_allclose(tiled.residence_distances(),
                               helsinki_analysis.residence_distances(), equal_nan=True)
    assert tiled.summary.equals(helsinki_analysis.summary)


def test_random_points_tiled_equal_untiled(helsinki_area):
    net = build_network(helsinki_area)
    rng = np.random.default_rng(3)
    low, high = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    sites = shapely.points(rng.uniform(low, high, size=(40, 2)))
    homes = shapely.points(rng.uniform(low, high, size=(400, 2)))
    types = np.where(np.arange(40) % 2 == 0, "a", "b")
    limits = {"a": 300.0, "b": 900.0}
    from planner.access import Access

    whole = Access(net, sites, types, limits).point_distances(homes)
    tiled = tiled_point_distances(net, sites, types, limits, homes, 250.0)
    np.testing.assert_allclose(tiled, whole, equal_nan=True)
