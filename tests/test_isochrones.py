"""Service areas: cut points on synthetic networks, properties on the real Helsinki one."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import CRS

from planner import isochrones, reach_cells, settings
from planner.access import Access
from planner.isochrones import reachable_segments, service_areas
from planner.network import WalkNetwork

METHODS = ("partition", "buffer")


def line_network(n_nodes: int = 11, step: float = 100.0) -> WalkNetwork:
    """Nodes 0 .. n-1 on the x axis, ``step`` metres apart (UTM 50N)."""
    xy = np.column_stack([500_000 + step * np.arange(n_nodes), np.full(n_nodes, 4_400_000.0)])
    return WalkNetwork(node_ids=np.arange(n_nodes), node_xy=xy,
                       edge_u=np.arange(n_nodes - 1), edge_v=np.arange(1, n_nodes),
                       edge_length_m=np.full(n_nodes - 1, step), crs=CRS.from_epsg(32650))


def grid_network(n: int = 6, step: float = 100.0) -> WalkNetwork:
    """An ``n × n`` street lattice."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    xy = np.column_stack([500_000 + step * i.ravel(), 4_400_000 + step * j.ravel()])
    index = np.arange(n * n).reshape(n, n)
    u = np.concatenate([index[:-1, :].ravel(), index[:, :-1].ravel()])
    v = np.concatenate([index[1:, :].ravel(), index[:, 1:].ravel()])
    return WalkNetwork(node_ids=np.arange(n * n), node_xy=xy, edge_u=u, edge_v=v,
                       edge_length_m=np.full(len(u), step), crs=CRS.from_epsg(32650))


def solved(network: WalkNetwork, points: np.ndarray, threshold: float) -> Access:
    return Access(network, shapely.points(points), ["t"] * len(points),
                  {"t": 2 * threshold}).solve()


# --------------------------------------------------------------------------- cut points


def test_a_facility_mid_edge_reaches_along_its_own_edge_first():
    net = line_network()
    # facility 10 m off the street, in the middle of edge 4 (x = 450 m)
    facility = np.array([[500_450.0, 4_400_010.0]])
    access = solved(net, facility, 250.0)
    segments = reachable_segments(
        net, access.node_distance_m[:, 0], 250.0,
        facility_edge=access.facility_snap.edge, facility_offset_m=access.facility_snap.offset_m,
        facility_access_m=access.facility_snap.access_m, facility_xy=facility)
    lines = shapely.union_all(shapely.linestrings(segments))
    street = shapely.intersection(lines, shapely.box(0, 4_399_999.999, 1e7, 4_400_000.001))
    # 250 m budget minus the 10 m access leg, either way along the street
    assert street.length == pytest.approx(2 * 240.0, abs=0.01)
    x_min, _, x_max, _ = street.bounds
    assert x_min == pytest.approx(500_210.0) and x_max == pytest.approx(500_690.0)
    # and the access leg itself
    assert lines.length == pytest.approx(2 * 240.0 + 10.0, abs=1e-6)


def test_partly_reachable_edges_are_cut_at_the_remaining_distance():
    net = grid_network()
    node = 2 * 6 + 2  # an inner node at (200, 200)
    facility = net.node_xy[[node]]
    access = solved(net, facility, 150.0)
    segments = reachable_segments(net, access.node_distance_m[:, 0], 150.0)
    lines = shapely.union_all(shapely.linestrings(segments))
    # 4 whole edges around the node, and the 12 edges beyond them cut 50 m from
    # their reached end (the 0.01 m zero-length guard of the facility's own leg aside)
    assert lines.length == pytest.approx(4 * 100.0 + 12 * 50.0, abs=0.2)
    assert not lines.contains(shapely.Point(net.node_xy[node] + [200.0, 0.0]))


@pytest.mark.parametrize("how", METHODS)
def test_service_area_of_one_facility_on_a_line(how):
    net = line_network()
    facility = np.array([[500_450.0, 4_400_000.0]])
    access = solved(net, facility, 250.0)
    area = service_areas(net, access, {"t": 250.0}, facility_points=shapely.points(facility),
                         how=how, width_m=30.0, tolerance_m=0.0).geometry.iloc[0]
    y = 4_400_000.0
    inside = [shapely.Point(500_450 + dx, y + dy) for dx in (-240, 0, 240) for dy in (-25, 25)]
    assert all(area.contains(point) for point in inside)
    # beyond the cut point: the buffer's round cap reaches 30 m further, the partition
    # stops within half a sample spacing of the cut
    slack = 30.0 if how == "buffer" else settings.isochrone_sample_spacing_m / 2
    assert not area.contains(shapely.Point(500_450 + 250 + slack + 2, y))
    assert not area.contains(shapely.Point(500_450 - 250 - slack - 2, y))
    assert not area.contains(shapely.Point(500_450, y + 32))


@pytest.mark.parametrize("how", METHODS)
def test_types_without_facilities_get_no_row(how):
    net = line_network()
    access = Access(net, shapely.points(np.array([[500_450.0, 4_400_000.0]])), ["a"],
                    {"a": 500.0, "b": 500.0}).solve()
    areas = service_areas(net, access, {"a": 250.0, "b": 250.0}, how=how)
    assert areas["type_id"].tolist() == ["a"] and areas.crs == net.crs
    assert areas.columns.tolist() == ["type_id", "threshold_m", "geometry"]


def test_large_networks_are_skipped(monkeypatch, caplog):
    net = grid_network()
    access = solved(net, net.node_xy[[7]], 150.0)
    monkeypatch.setattr(settings, "isochrone_max_edges", 10)
    areas = service_areas(net, access, {"t": 150.0}, how="partition")
    assert len(areas) == 0 and "skipped" in caplog.text
    # the streets within reach are drawn at any size
    assert len(service_areas(net, access, {"t": 150.0}, how="streets")) == 1


def test_streets_are_the_reachable_segments_joined():
    net = grid_network(8)
    facility = net.node_xy[[27]] + [[30.0, 10.0]]
    access = solved(net, facility, 260.0)
    segments = reachable_segments(
        net, access.node_distance_m[:, 0], 260.0, facility_edge=access.facility_snap.edge,
        facility_offset_m=access.facility_snap.offset_m,
        facility_access_m=access.facility_snap.access_m, facility_xy=facility)
    streets = service_areas(net, access, {"t": 260.0}, facility_points=shapely.points(facility),
                            how="streets").geometry.iloc[0]
    assert streets.geom_type == "MultiLineString"
    assert streets.length == pytest.approx(
        np.linalg.norm(segments[:, 0] - segments[:, 1], axis=1).sum(), rel=1e-9)
    # fewer lines than pieces: runs of whole edges are joined
    assert shapely.get_num_geometries(streets) < len(segments)
    assert shapely.equals(shapely.line_merge(streets),
                          shapely.line_merge(shapely.union_all(shapely.linestrings(segments))))


def test_covered_residences_stand_on_a_street_within_reach(helsinki_analysis):
    analysis = helsinki_analysis
    areas = isochrones.analysis_service_areas(analysis, how="streets").set_index("type_id")
    homes = analysis.residences
    snap = analysis.network.snap(homes.geometry)
    for type_id in list(areas.index)[:10]:
        covered = (homes[f"dist_{type_id}"] <= areas.loc[type_id, "threshold_m"]).to_numpy()
        distance = shapely.distance(areas.geometry[type_id], homes.geometry.to_numpy()[covered])
        assert np.all(distance <= snap.access_m[covered] + 1.0), type_id


# --------------------------------------------------------------------------- real network


@pytest.fixture(scope="module")
def helsinki_areas(helsinki_analysis):
    """Service areas of ten types with facilities, by both methods."""
    analysis = helsinki_analysis
    present = set(analysis.facilities["type_id"])
    chosen = {t.id: t.threshold_m for t in analysis.catalogue.types if t.id in present}
    chosen = dict(list(chosen.items())[:10])
    return {how: service_areas(analysis.network, analysis.access, chosen,
                               facility_points=analysis.facilities.geometry, how=how)
            for how in METHODS}


@pytest.mark.parametrize("how", METHODS)
def test_every_covered_residence_lies_within_its_access_leg_of_the_area(
        helsinki_analysis, helsinki_areas, how):
    analysis = helsinki_analysis
    areas = helsinki_areas[how].set_index("type_id")
    homes = analysis.residences
    snap = analysis.network.snap(homes.geometry)
    checked = 0
    for type_id in areas.index:
        threshold = analysis.catalogue.type(type_id).threshold_m
        covered = (homes[f"dist_{type_id}"] <= threshold).to_numpy()
        distance = shapely.distance(areas.geometry[type_id], homes.geometry.to_numpy()[covered])
        # buffer: the foot on the street is inside (1 m simplification); partition:
        # within half a sample spacing of it, well inside the buffer + access leg
        slack = 1.0 if how == "buffer" else settings.isochrone_sample_spacing_m
        assert np.all(distance <= snap.access_m[covered] + slack), type_id
        assert np.all(distance <= snap.access_m[covered] + settings.isochrone_buffer_m), type_id
        checked += covered.sum()
    assert checked > 100


@pytest.mark.parametrize("how", METHODS)
def test_places_beyond_the_threshold_as_the_crow_flies_are_outside(
        helsinki_analysis, helsinki_areas, how):
    analysis = helsinki_analysis
    areas = helsinki_areas[how].set_index("type_id")
    nodes = shapely.points(analysis.network.node_xy)
    checked = 0
    for type_id in areas.index:
        threshold = analysis.catalogue.type(type_id).threshold_m
        facilities = analysis.facilities.geometry[analysis.facilities["type_id"] == type_id]
        crow = shapely.distance(nodes[:, None], facilities.to_numpy()[None, :]).min(axis=1)
        # walking is never shorter than the straight line
        far = crow > threshold + settings.isochrone_buffer_m + settings.isochrone_sample_spacing_m
        assert not shapely.intersects(areas.geometry[type_id], nodes[far]).any(), type_id
        checked += far.sum()
    assert checked > 500


@pytest.mark.parametrize("how", METHODS)
def test_one_facility_at_the_edge_of_the_network_is_no_disc(helsinki_network, how):
    net = helsinki_network
    corner = np.argmin(net.node_xy[:, 1])  # the southernmost node
    point = shapely.points(net.node_xy[[corner]] + [[3.0, 3.0]])
    access = Access(net, point, ["t"], {"t": 1200.0}).solve()
    area = service_areas(net, access, {"t": 600.0}, facility_points=point,
                         how=how).geometry.iloc[0]
    assert area.contains(point[0])
    assert area.area < 0.9 * area.convex_hull.area
    assert area.area < 0.35 * np.pi * 600.0 ** 2


def test_the_two_methods_agree_on_a_lattice():
    net = grid_network(8)
    facility = net.node_xy[[27]] + [[30.0, 0.0]]
    access = solved(net, facility, 220.0)
    areas = [service_areas(net, access, {"t": 220.0}, facility_points=shapely.points(facility),
                           how=how, width_m=20.0).geometry.iloc[0] for how in METHODS]
    # they differ only at cut ends (round cap against a straight cut)
    assert areas[0].symmetric_difference(areas[1]).area < 0.12 * areas[1].area


def test_service_cells_hold_the_streets_within_reach(helsinki_analysis):
    """Every square a type's streets cross (sampled) is flagged, and no other one."""
    from planner.isochrones import analysis_service_areas
    from planner.reach_cells import analysis_service_cells

    cells = analysis_service_cells(helsinki_analysis, cell_m=100.0)
    areas = analysis_service_areas(helsinki_analysis).set_index("type_id")
    assert len(cells) and cells["cell_id"].is_unique
    assert cells.attrs["street_coordinates"] > 0
    for type_id in areas.index[:5]:
        street = areas.loc[type_id, "geometry"]
        # vertices of the drawn streets lie in flagged squares (the drawing simplifies
        # by 1 m, so test points a little inside the squares' edges only)
        xy = shapely.get_coordinates(street)
        ij = np.floor(xy / 100.0).astype(int)
        inner = np.all(np.abs(xy / 100.0 - np.round(xy / 100.0)) > 0.02, axis=1)
        flagged = set(cells.loc[cells[f"reach_{type_id}"] == 1, "cell_id"])
        keys = {f"{i}_{j}" for i, j in ij[inner]}
        assert keys <= flagged, type_id
        # and the flagged squares do touch the type's streets
        touched = shapely.intersects(cells.loc[cells[f"reach_{type_id}"] == 1].geometry
                                     .to_numpy(), shapely.buffer(street, 2.0))
        assert touched.mean() > 0.97, type_id


# --------------------------------------------------------------------------- all types at once


def _cells_one_type_at_a_time(network, access, thresholds, facility_xy, cell_m):
    """The squares of :func:`service_cells` the plain way: one type, one sampling at a time."""
    from planner.isochrones import points_along, whole_edge_mask

    flagged = {}
    columns = {type_id: column for column, type_id in enumerate(access.type_ids)}
    snap = access.facility_snap
    for type_id, threshold in thresholds.items():
        mask = (access.facility_type == type_id) & snap.snapped
        if not mask.any():
            continue
        distance = access.node_distance_m[:, columns[type_id]]
        whole = np.flatnonzero(whole_edge_mask(network, distance, threshold))
        pieces = reachable_segments(
            network, distance, threshold, facility_edge=snap.edge[mask],
            facility_offset_m=snap.offset_m[mask], facility_access_m=snap.access_m[mask],
            facility_xy=facility_xy[mask], whole_edges=False)
        points = []
        for edge in whole:  # both ends and every half square between
            count = int(np.ceil(network.edge_length_m[edge] / (cell_m / 2))) + 1
            share = np.arange(count) / max(count - 1, 1)
            points.append(points_along(network, np.full(count, edge),
                                 share * network.edge_length_m[edge]))
        for start, end in pieces:
            count = int(np.ceil(np.hypot(*(end - start)) / (cell_m / 2))) + 1
            share = (np.arange(count) / max(count - 1, 1))[:, None]
            points.append(start + share * (end - start))
        ij = np.floor(np.concatenate(points) / cell_m).astype(int)
        flagged[type_id] = {f"{i}_{j}" for i, j in ij}
    return flagged


@pytest.mark.parametrize("cell_m", [100.0, 37.0])
def test_service_cells_equal_the_squares_of_each_type_on_its_own(helsinki_analysis, cell_m):
    from planner.reach_cells import analysis_street_reach, service_cells

    analysis = helsinki_analysis
    thresholds = analysis.catalogue.thresholds_m()
    points = analysis.facilities.geometry.to_numpy()
    cells = service_cells(analysis.network, analysis.access, thresholds,
                          facility_points=points, cell_m=cell_m)
    expected = _cells_one_type_at_a_time(analysis.network, analysis.access, thresholds,
                                         shapely.get_coordinates(points), cell_m)
    drawn = [column[len("reach_"):] for column in cells if column.startswith("reach_")]
    assert drawn == list(expected)
    for type_id, squares in expected.items():
        assert set(cells.loc[cells[f"reach_{type_id}"] == 1, "cell_id"]) == squares, type_id
    assert (cells["n_types"] > 0).all()
    assert (cells["n_types"] == cells[[f"reach_{t}" for t in drawn]].sum(axis=1)).all()
    # ordered by (i, j), each square once, the squares where they are
    ij = cells["cell_id"].str.split("_", expand=True).astype(int).to_numpy()
    assert (np.lexsort((ij[:, 1], ij[:, 0])) == np.arange(len(ij))).all()
    assert np.allclose(shapely.bounds(cells.geometry.to_numpy())[:, :2], ij * cell_m)
    if cell_m == 100.0:
        reach = analysis_street_reach(analysis)
        assert reach.street_coordinates == cells.attrs["street_coordinates"]


def test_service_cells_of_a_lattice_without_facilities_of_a_type():
    net = grid_network(8)
    facility = net.node_xy[[27]] + [[30.0, 5.0]]
    points = shapely.points(facility)
    access = Access(net, points, ["t"], {"t": 600.0, "none": 600.0}).solve()
    cells = reach_cells.service_cells(net, access, {"t": 250.0, "none": 300.0},
                                     facility_points=points, cell_m=50.0)
    assert [column for column in cells if column.startswith("reach_")] == ["reach_t"]
    expected = _cells_one_type_at_a_time(net, access, {"t": 250.0}, facility, 50.0)
    assert set(cells["cell_id"]) == expected["t"]
    # the access leg's own square (the facility stands 5 m off the street)
    assert f"{int(facility[0, 0] // 50)}_{int(facility[0, 1] // 50)}" in expected["t"]


def test_gap_cells_of_buildings_are_those_of_their_points_and_nan_is_beyond_reach():
    import geopandas as gpd

    from planner.gaps import gap_cells

    xy = np.array([[500_000.0, 4_400_000.0], [500_010.0, 4_400_020.0], [502_000.0, 4_401_000.0]])
    frame = gpd.GeoDataFrame({"population": [10.0, 0.0, 3.0],
                              "dist_a": [100.0, np.nan, 900.0], "dist_b": [np.nan, np.nan, 10.0]},
                             geometry=shapely.buffer(shapely.points(xy), 5.0),
                             crs="EPSG:32650")
    cells = gap_cells(frame, {"a": 500.0, "b": 500.0, "c": 500.0}, cell_m=250.0)
    points = gap_cells(frame.set_geometry(shapely.point_on_surface(frame.geometry.to_numpy())),
                       {"a": 500.0, "b": 500.0, "c": 500.0}, cell_m=250.0)
    assert cells.drop(columns="geometry").equals(points.drop(columns="geometry"))
    assert cells["missing_types"].tolist() == ["b", "a"]
    assert cells["n_residences"].tolist() == [2, 1]
    assert cells["mean_missing_types"].tolist() == [1.0, 1.0]
    empty = gap_cells(frame, {}, cell_m=250.0)
    assert empty["missing_types"].tolist() == ["", ""]
    assert empty["n_missing_types"].tolist() == [0, 0]


# --------------------------------------------------------------------------- drawn from the reach


def _wkb(frame) -> list[bytes]:
    return [shapely.to_wkb(geometry) for geometry in frame.geometry.to_numpy()]


def test_street_reach_bits_are_the_whole_edges_and_draw_the_same_streets(helsinki_analysis):
    from planner.isochrones import analysis_service_areas, street_areas, whole_edge_mask
    from planner.reach_cells import StreetReach

    analysis = helsinki_analysis
    points = analysis.facilities.geometry.to_numpy()
    reach = StreetReach(analysis.network, analysis.access, analysis.catalogue.thresholds_m(),
                        facility_points=points)
    bits = np.unpackbits(reach._whole_bits, axis=1, count=len(reach.drawn),
                         bitorder="little").astype(bool)
    columns = {type_id: column for column, type_id in enumerate(analysis.access.type_ids)}
    for index, (type_id, threshold) in enumerate(reach.drawn):
        distance = analysis.access.node_distance_m[:, columns[type_id]]
        assert np.array_equal(bits[:, index],
                              whole_edge_mask(analysis.network, distance, threshold)), type_id
    expected = analysis_service_areas(analysis, how="streets")
    from_bits = street_areas(analysis.network, analysis.access, reach.drawn,
                             facility_xy=shapely.get_coordinates(points),
                             whole_bits=reach._whole_bits)
    assert from_bits.drop(columns="geometry").equals(expected.drop(columns="geometry"))
    assert _wkb(from_bits) == _wkb(expected) and from_bits.crs == expected.crs
    # drawn once, a copy each call, and only while the settings still ask for it
    assert reach.streets() is None
    reach.draw_streets(analysis.access, points)
    first, second = reach.streets(), reach.streets()
    assert first is not second and _wkb(first) == _wkb(expected)
    first.loc[0, "type_id"] = "changed"
    assert reach.streets()["type_id"].tolist() == expected["type_id"].tolist()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "isochrone_simplify_m", 5.0)
        assert reach.streets() is None
        patch.setattr(settings, "isochrone_simplify_m", reach._streets_tolerance_m)
        patch.setattr(settings, "isochrone_method", "buffer")
        assert reach.streets() is None


def test_an_unreached_node_as_nan_cuts_as_one_at_infinity():
    net = line_network(11)
    access = solved(net, net.node_xy[[1]] + [[20.0, 0.0]], 150.0)
    distance = access.node_distance_m[:, 0]
    assert np.isinf(distance).any()
    with_nan = np.where(np.isinf(distance), np.nan, distance)
    for threshold in (90.0, 150.0, 250.0):
        assert np.array_equal(reachable_segments(net, distance, threshold),
                              reachable_segments(net, with_nan, threshold))
