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
import shapely

from planner import opl, osm_reader, sources

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
    result = osm_reader._rings(ways, np.arange(len(ways.ids)))
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
