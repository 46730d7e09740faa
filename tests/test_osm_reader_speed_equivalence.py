"""The fast paths of the OSM reader give what the plain ones give.

The columnar OPL parser (pyarrow's CSV reader over translated text), the ring
orientation done before the polygons are built, and the sorted-id node lookup
of :func:`planner.sources._finish` each have a simpler equivalent; these tests
hold them to it on small hand-made inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from planner import opl, osm_reader, osm_rings, sources

WANTED = ["name", "highway", "building", "amenity", "addr:street"]

NODES = [
    "n1 Tamenity=cafe,name=Caf%e9%%20%Nord x24.9 y60.1",
    "n2 T x y",
    "n-3 Tname=%4e2d%%5173%%2c%x,addr%3a%street=A x-0.5 y1.25",
]
WAYS = [
    "w10 Thighway=footway,name=Long%20%Path Nn1x24.9y60.1,n2xy,n-3x-0.5y1.25",
    "w11 T Nn1x24.9y60.1",
    "w12 Tbuilding=yes Nn4x0y0,n5x1y0,n6x1y1,n7x0y1,n4x0y0",
]


def _parse(lines: list[str]):
    return opl.read_opl(("\n".join(lines) + "\n").encode(), WANTED)


def _same_objects(first, second) -> None:
    assert np.array_equal(first.ids, second.ids)
    assert np.array_equal(first.xy, second.xy, equal_nan=True)
    assert sorted(first.tags) == sorted(second.tags)
    for key in first.tags:
        assert list(first.tags[key]) == list(second.tags[key])
        assert np.array_equal(first.present[key], second.present[key])
    for name in ("refs", "way", "valid", "n_refs"):
        one, other = getattr(first, name), getattr(second, name)
        assert (one is None and other is None) or np.array_equal(one, other)


def test_opl_columns_decode_escapes_and_unknown_locations():
    nodes, ways = _parse(NODES + WAYS)
    assert list(nodes.ids) == [1, 2, -3]
    assert list(nodes.tag("name")) == ["Café Nord", None, "中关,x"]
    assert list(nodes.tag("addr:street")) == [None, None, "A"]
    assert np.isnan(nodes.xy[1]).all()
    assert nodes.xy[2].tolist() == [-0.5, 1.25]
    assert list(ways.ids) == [10, 11, 12]
    assert list(ways.tag("name")) == ["Long Path", None, None]
    assert list(ways.refs) == [1, 2, -3, 1, 4, 5, 6, 7, 4]
    assert list(ways.way) == [0, 0, 0, 1, 2, 2, 2, 2, 2]
    assert list(ways.n_refs) == [3, 1, 5]
    assert list(ways.valid) == [True, False, True, True, True, True, True, True, True]
    assert ways.has("building").tolist() == [False, False, True]


def test_interleaved_opl_parses_like_grouped():
    grouped = _parse(NODES + WAYS)
    interleaved = _parse([WAYS[0], NODES[0], WAYS[1], NODES[1], NODES[2], WAYS[2]])
    for first, second in zip(grouped, interleaved, strict=True):
        _same_objects(first, second)


def test_only_nodes_or_only_ways():
    nodes, ways = _parse(NODES)
    assert len(nodes.ids) == 3 and len(ways.ids) == 0 and len(ways.refs) == 0
    nodes, ways = _parse(WAYS)
    assert len(nodes.ids) == 0 and list(ways.ids) == [10, 11, 12]


def test_rings_are_oriented_as_orient_polygons_does():
    lines = [
        "w1 Tbuilding=yes Nn1x0y0,n2x1y0,n3x1y1,n4x0y1,n1x0y0",  # counter-clockwise
        "w2 Tbuilding=yes Nn1x0y0,n4x0y1,n3x1y1,n2x1y0,n1x0y0",  # clockwise
        "w3 Tbuilding=yes Nn1x0y0,n3x1y1,n2x1y0,n4x0y1,n1x0y0",  # a bow tie (invalid)
        "w4 Tbuilding=yes Nn5x2y2,n6x3y2,n5x2y2",  # too few nodes
        "w5 Tbuilding=yes Nn5x2y2,n8x2y5,n9x5y5,n6x3y2",  # closed over the gap
    ]
    _, ways = _parse(lines)
    result = osm_rings.ring_polygons(ways, np.arange(len(ways.ids)))
    assert result[3] is None
    expected = []
    for index in (0, 1, 2, 4):
        rows = ways.way == index
        coords = ways.xy[rows]
        if not np.array_equal(coords[0], coords[-1]):
            coords = np.vstack([coords, coords[:1]])
        polygon = shapely.Polygon(coords)
        if not polygon.is_valid:
            polygon = shapely.buffer(polygon, 0)
        expected.append(shapely.orient_polygons(polygon, exterior_cw=False))
    assert shapely.equals_identical(np.array(list(result[[0, 1, 2, 4]])),
                                    np.array(expected)).all()


def test_sorted_node_lookup_equals_hashing():
    rng = np.random.default_rng(0)
    for spread in (3, 10**9):  # dense ids (a lookup table) and sparse ones (binary search)
        ids = np.unique(rng.integers(1, 2_000 * spread, 2_000))
        nodes = pd.DataFrame({"lon": rng.random(len(ids)), "lat": rng.random(len(ids))},
                             index=pd.Index(ids, name="node_id"))
        ends = rng.choice(np.r_[ids, [0, ids[-1] + 1, 2 * ids[-1]]], (3_000, 2))
        edges = pd.DataFrame({"u": ends[:, 0], "v": ends[:, 1], "highway": "footway"})
        fast = sources._network_nodes(edges, nodes)
        shuffled = nodes.iloc[rng.permutation(len(nodes))]  # no longer sorted: hashing
        plain = sources._network_nodes(edges, shuffled)
        pd.testing.assert_frame_equal(fast[0], plain[0])
        pd.testing.assert_frame_equal(fast[1], plain[1])


def test_ways_listed_before_their_nodes_get_their_locations(tmp_path):
    """An unsorted file (ways first) reads like the sorted one: the locations are stored first."""
    node_lines = [f'<node id="{i + 1}" lat="{39.96 + 0.001 * (i // 4):.4f}" '
                  f'lon="{116.35 + 0.001 * (i % 4):.4f}" version="1"/>' for i in range(16)]
    way_lines = [f'<way id="{100 + row}" version="1">'
                 + "".join(f'<nd ref="{row * 4 + column + 1}"/>' for column in range(4))
                 + '<tag k="highway" v="residential"/></way>' for row in range(4)]

    def write(name: str, body: list[str]) -> Path:
        path = tmp_path / name
        path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n'
                        + "\n".join(body) + "\n</osm>\n", encoding="utf-8")
        return path

    keys = osm_reader.merge_keys([])
    nodes, edges, _ = osm_reader.read_osm(write("sorted.osm", node_lines + way_lines), keys)
    late_nodes, late_edges, _ = osm_reader.read_osm(
        write("unsorted.osm", way_lines + node_lines), keys)
    pd.testing.assert_frame_equal(nodes, late_nodes)
    pd.testing.assert_frame_equal(edges, late_edges)
    assert len(edges) == 12


def _ring_sample(rng: np.random.Generator) -> list[np.ndarray]:
    """Rings of every kind the convexity test meets: convex both ways, stars, bow ties,
    flat and repeated corners, random scribbles, OSM-sized footprints on a 1e-7° grid."""
    rings = []
    for n_vertices in (3, 4, 5, 6, 8, 12):
        for _ in range(60):
            angle = np.sort(rng.uniform(0, 2 * np.pi, n_vertices))
            points = np.column_stack([np.cos(angle), np.sin(angle)]) * rng.uniform(1e-5, 1)
            points += rng.uniform(-180, 180), rng.uniform(-85, 85)
            rings += [points, points[::-1], rng.permutation(points)]
            grid = np.round(points * 1e7) / 1e7  # OSM's resolution: near-flat turns
            rings += [grid, grid[::-1]]
    for step in (2, 3):  # pentagram and heptagram: one-way turns, twice round
        n_vertices = 2 * step + 1
        angle = 2 * np.pi * step * np.arange(n_vertices) / n_vertices
        rings += [np.column_stack([np.cos(angle), np.sin(angle)]) + [116.3, 39.9]]
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float) * 1e-4 + [116.3, 39.9]
    rings += [square, square[[0, 2, 1, 3]],  # a bow tie
              np.insert(square, 1, square[0], axis=0),  # a repeated corner
              np.insert(square, 1, (square[0] + square[1]) / 2, axis=0),  # a flat corner
              square[:3], np.array([[0, 0], [1, 1e-17], [2, 0]]) + [116.3, 39.9]]
    return rings


def test_convex_rings_agree_with_geos():
    """A ring the numpy test calls convex is valid for GEOS and turns as GEOS says."""
    rng = np.random.default_rng(1)
    rings = _ring_sample(rng)
    closed = [np.vstack([ring, ring[:1]]) for ring in rings]
    offsets = np.r_[0, np.cumsum([len(ring) for ring in closed])]
    convex, ccw = osm_rings.convex_rings(np.vstack(closed), offsets)
    polygons = shapely.polygons([shapely.linearrings(ring) for ring in closed])
    assert convex.sum() > len(rings) / 3  # the fast path is taken
    assert shapely.is_valid(polygons[convex]).all()
    assert np.array_equal(ccw[convex], shapely.is_ccw(shapely.get_exterior_ring(
        polygons[convex])))
    # stars, a bow tie, repeated and flat corners, a line: GEOS judges; squares and
    # triangles are convex
    assert list(convex[-8:]) == [False, False, True, False, False, False, True, False]


def test_features_made_in_the_metric_crs_equal_reprojected_ones():
    """Projecting the ring coordinates before the polygons are made gives what to_crs gives."""
    from planner import validate

    path = Path(__file__).parent / "data" / "osm" / "beijing-haidian-bupt" / "map.osm"
    keys = osm_reader.merge_keys(["amenity", "shop", "leisure"])
    reading = osm_reader.open_osm(path, keys)
    nodes = reading.nodes
    crs = validate.local_metric_crs((nodes["lon"].min(), nodes["lat"].min(),
                                     nodes["lon"].max(), nodes["lat"].max()))
    reprojected = reading.features().to_crs(crs)
    made = reading.features(crs)
    assert made.crs == reprojected.crs and len(made) > 100
    pd.testing.assert_frame_equal(pd.DataFrame(made.drop(columns="geometry")),
                                  pd.DataFrame(reprojected.drop(columns="geometry")))
    assert (shapely.to_wkb(made.geometry.to_numpy())
            == shapely.to_wkb(reprojected.geometry.to_numpy())).all()


def test_walk_rules_judged_per_distinct_tags_equal_rules_per_way():
    """Judging each distinct set of tags once gives the rules' answer way by way
    (every tag of the way table varies, so a rule reading another tag would show)."""
    from planner.walk_rules import WAY_TAGS, walkable_mask

    rng = np.random.default_rng(1)
    choices = {key: [None, "yes", "no", "private", "designated", "both", "separate"]
               for key in WAY_TAGS}
    choices["highway"] = [None, "footway", "trunk", "cycleway", "service", "motorway", "path"]
    choices["name"] = [None, *(f"Street {number}" for number in range(40))]
    n_ways = 3_000
    columns = {key: np.array(values, dtype=object)[rng.integers(0, len(values), n_ways)]
               for key, values in choices.items()}
    ways = osm_reader.Objects(
        ids=np.arange(n_ways), xy=np.zeros((0, 2)),
        tags={key: column for key, column in columns.items() if key != "sidewalk:left"},
        present={key: np.array([value is not None for value in column])
                 for key, column in columns.items() if key != "sidewalk:left"})
    network = rng.random(n_ways) < 0.8
    expected = np.zeros(n_ways, dtype=bool)
    table = pd.DataFrame({key: pd.Series(ways.tag(key), dtype=object) for key in WAY_TAGS})
    expected[network] = walkable_mask(table)[network]
    assert np.array_equal(osm_reader._walkable_ways(ways, network), expected)


def test_unique_ids_by_table_equal_sorting():
    rng = np.random.default_rng(2)
    for spread in (1, 10**9):  # dense ids (a table) and sparse ones (sorting)
        ids = rng.integers(-5, 5_000 * spread, 8_000)
        unique, first = osm_reader._unique_ids(ids)
        expected, expected_first = np.unique(ids, return_index=True)
        assert np.array_equal(unique, expected)
        assert np.array_equal(ids[first], ids[expected_first])
    assert osm_reader._unique_ids(np.empty(0, dtype=np.int64))[0].dtype == np.int64


@pytest.mark.parametrize(("lon", "lat"), [
    (116.35, 39.96), (121.4, 31.3), (114.25, 22.7), (-3.7, 40.4), (24.94, 60.17),
    (-151.0, -33.9), (119.97, 30.0), (120.03, 30.0), (117.0, 0.03), (117.0, -0.03),
    (-12.005, 50.0), (179.98, 10.0), (-179.98, -10.0), (10.0, 83.97), (10.0, -79.97)])
def test_the_utm_zone_is_what_proj_s_database_says(lon, lat):
    import pyproj
    from pyproj import CRS

    from planner.validate import local_metric_crs

    found = pyproj.database.query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=pyproj.aoi.AreaOfInterest(lon, lat, lon, lat))
    assert local_metric_crs((lon, lat, lon, lat)) == CRS.from_epsg(found[0].code)
