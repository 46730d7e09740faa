"""The map: gap hexagons, encodings, a self-contained page, basemaps, `planner map`."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st

from planner import colours, gaps, maps, settings
from planner.catalogue import load_catalogue
from planner.cli.map import map_command
from planner.coords import wgs84_to_gcj02
from planner.errors import PlannerError
from planner.export import write_analysis
from planner.layers import analysis_layers
from planner.outputs import read_results


def shows(html: str, text: str) -> bool:
    """Whether ``text`` is in the page, as UTF-8 or as a JSON/JS escape."""
    return text in html or json.dumps(text)[1:-1] in html


def data_blocks(html: str) -> dict:
    """The JSON data blocks of a map page, by id."""
    return {match[1]: json.loads(match[2]) for match in re.finditer(
        r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, re.S)}


# --------------------------------------------------------------------------- building blocks


def test_colours():
    shown = colours.score_colours([0.0, 0.5, 1.0, np.nan, 2.0])
    assert shown.tolist() == ["#d73027", "#fee08b", "#1a9850", colours.NO_SCORE, "#1a9850"]
    assert colours.score_colour(None) == colours.NO_SCORE
    assert maps.score_colour is colours.score_colour  # still importable from planner.maps


def test_class_breaks_follow_the_values_on_the_map():
    # every hexagon misses 29-55 types: the classes split that range, not "≥ 21"
    values = np.random.default_rng(3).integers(29, 56, size=400)
    breaks = colours.class_breaks(values)
    assert breaks[0] == 29 and len(breaks) == 6 and breaks == sorted(set(breaks))
    shown = colours.cell_colours(values, breaks)
    assert len(set(shown)) == 6
    labels = colours.class_labels(breaks)
    assert labels[-1] == f"≥ {breaks[-1]}" and labels[0].startswith("29")
    # few distinct values: one class each
    assert colours.class_breaks([0, 0, 3, 3, 7]) == [0, 3, 7]
    assert colours.class_labels([0, 3, 7]) == ["0–2", "3–6", "≥ 7"]
    assert colours.class_breaks([]) == [0]


def test_hexagons_hold_their_points():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 2000, size=(500, 2)) + [400_000, 4_400_000]
    q, r = gaps.hexagon_index(xy, 150.0)
    cells = gaps.hexagons(q, r, 150.0)
    assert shapely.covers(cells, shapely.points(xy)).all()
    assert shapely.area(cells) == pytest.approx(np.sqrt(3) / 2 * 150.0 ** 2)


def test_gap_cells_count_types_no_resident_reaches():
    crs = "EPSG:32650"
    # two homes in one hexagon, one far away; types a (300 m) and b (500 m)
    homes = gpd.GeoDataFrame({
        "population": [10.0, 30.0, 5.0],
        "dist_a": [100.0, np.nan, np.nan],   # the first home reaches a
        "dist_b": [600.0, 700.0, 200.0],     # nobody in the first cell reaches b
    }, geometry=shapely.points([[500_000, 4_400_000], [500_010, 4_400_010],
                                [502_000, 4_400_000]]), crs=crs)
    cells = gaps.gap_cells(homes, {"a": 300.0, "b": 500.0, "c": 400.0}, cell_m=150.0)
    assert len(cells) == 2 and cells.crs == homes.crs
    first = cells[cells.contains(homes.geometry.iloc[0])].iloc[0]
    assert first["n_missing_types"] == 1 and first["missing_types"] == "b"
    assert first["population"] == 40.0 and first["n_residences"] == 2
    # types beyond reach per resident: 1 for the first home, 2 for the second
    assert first["mean_missing_types"] == pytest.approx((10 * 1 + 30 * 2) / 40, abs=0.01)
    second = cells[cells.contains(homes.geometry.iloc[2])].iloc[0]
    assert second["missing_types"] == "a" and second["cell_m"] == 150.0


def test_polygon_encoding_round_trips():
    square = shapely.box(116.3, 39.9, 116.31, 39.91)
    holed = shapely.Polygon(square.exterior.coords,
                            [shapely.box(116.302, 39.902, 116.304, 39.904).exterior.coords])
    multi = shapely.MultiPolygon([square, shapely.box(116.4, 39.9, 116.41, 39.91)])
    geoms = np.array([holed, multi, square], dtype=object)
    decoded = maps.decode_polygons(json.loads(json.dumps(maps.encode_polygons(geoms))))
    assert all(shapely.equals(decoded, geoms))
    assert len(maps.decode_polygons(maps.encode_polygons(np.array([], dtype=object)))) == 0


def test_tianditu_needs_a_key(monkeypatch):
    monkeypatch.delenv("TIANDITU_KEY", raising=False)
    with pytest.raises(PlannerError, match="TIANDITU_KEY"):
        maps.resolve_basemap("tianditu")
    assert maps.resolve_basemap("tianditu", "abc")["key"] == "abc"
    monkeypatch.setenv("TIANDITU_KEY", "xyz")
    assert maps.resolve_basemap("tianditu")["key"] == "xyz"
    with pytest.raises(PlannerError, match="unknown basemap"):
        maps.resolve_basemap("google")


# --------------------------------------------------------------------------- the demo map


@pytest.fixture(scope="module")
def demo_results(helsinki_analysis, tmp_path_factory):
    out = tmp_path_factory.mktemp("maps_demo")
    write_analysis(helsinki_analysis, out)
    return out


def test_results_gain_isochrones_and_gaps(demo_results, helsinki_analysis):
    layers = dict(pyogrio.list_layers(demo_results / "coverage.gpkg"))
    assert {"isochrones", "gaps"} <= set(layers)
    results = read_results(demo_results)
    areas, cells = results["isochrones"], results["gaps"]
    assert areas.crs.to_epsg() == 4326 and cells.crs.to_epsg() == 4326
    assert {"type_id", "threshold_m"} <= set(areas.columns)
    present = set(helsinki_analysis.facilities["type_id"])
    assert set(areas["type_id"]) == present & set(helsinki_analysis.catalogue.type_ids)
    assert {"cell_id", "population", "n_missing_types", "missing_types",
            "mean_missing_types"} <= set(cells.columns)
    # every residence sits in one hexagon, and the populations add up
    assert cells["population"].sum() == pytest.approx(
        results["residences"]["population"].sum(), abs=1.0)
    # no facility of these types in the demo area: a gap in every hexagon
    assert cells["missing_types"].str.contains("nursing_home").all()


def test_demo_map_is_self_contained_and_small(demo_results):
    html = (demo_results / "map.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+stylesheet", html)
    assert "cdn." not in html and "jquery" not in html.lower()
    assert "Leaflet 1.9.4" in html and "markercluster" in html.lower()
    # the service areas are the streets within reach of 34 types (1 MB of the page)
    assert len(html.encode()) < 1_500_000
    blocks = data_blocks(html)
    assert {"pl-data-communities", "pl-data-areas", "pl-data-residences",
            "pl-data-cells"} <= set(blocks)
    catalogue = load_catalogue()
    for scene in catalogue.scenes:
        assert f"pl-data-facilities-{scene.id}" in blocks
        assert shows(html, scene.en)


def test_map_is_deterministic_and_rerenders_from_the_results(demo_results, tmp_path):
    first = tmp_path / "a.html"
    second = tmp_path / "b.html"
    for path in (first, second):
        result = CliRunner().invoke(map_command, [str(demo_results), "--out", str(path)])
        assert result.exit_code == 0, result.output
        assert "map written to" in result.output
    assert first.read_bytes() == second.read_bytes()
    # the same data as the map write_analysis drew (simplification aside)
    original = data_blocks((demo_results / "map.html").read_text(encoding="utf-8"))
    again = data_blocks(first.read_text(encoding="utf-8"))
    assert again["pl-data-residences"]["gaps"] == original["pl-data-residences"]["gaps"]
    assert again["pl-data-facilities-health"] == original["pl-data-facilities-health"]


def test_map_command_languages_and_errors(demo_results, tmp_path, monkeypatch):
    out = tmp_path / "zh.html"
    result = CliRunner().invoke(map_command, [str(demo_results), "--lang", "zh",
                                              "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert shows(html, "邻里生活") and shows(html, "社区综合得分")
    monkeypatch.delenv("TIANDITU_KEY", raising=False)
    result = CliRunner().invoke(map_command, [str(demo_results), "--basemap", "tianditu",
                                              "--out", str(tmp_path / "t.html")])
    assert result.exit_code == 2 and "TIANDITU_KEY" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "t.html").exists()
    result = CliRunner().invoke(map_command, [str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "coverage.gpkg" in result.output
    result = CliRunner().invoke(map_command, [str(demo_results), "--basemap", "tianditu",
                                              "--tianditu-key", "k123",
                                              "--out", str(tmp_path / "t.html")])
    assert result.exit_code == 0 and "tk=k123" in (tmp_path / "t.html").read_text()


# --------------------------------------------------------------------------- Beijing, Amap


def test_amap_overlays_are_shifted_to_gcj02(beijing_analysis):
    layers = analysis_layers(beijing_analysis)
    plain = maps.build_map(layers, beijing_analysis.catalogue).get_root().render()
    shifted = maps.build_map(layers, beijing_analysis.catalogue,
                             basemap="amap").get_root().render()
    assert "autonavi" in shifted and shows(shifted, "邻里生活")  # Chinese names: Chinese labels
    facilities = layers["facilities"].to_crs(4326)
    for html, datum in ((plain, "wgs84"), (shifted, "gcj02")):
        block = data_blocks(html)["pl-data-facilities-neighbourhood"]
        first = facilities[facilities["facility_id"] == block["id"][0]].geometry.iloc[0]
        lon, lat = (first.x, first.y) if datum == "wgs84" else map(
            float, wgs84_to_gcj02(first.x, first.y))
        # rounded to settings.map_point_digits = 5 (about a metre)
        assert block["x"][0] == pytest.approx(lon, abs=6e-6)
        assert block["y"][0] == pytest.approx(lat, abs=6e-6)
    # polygons too: the shift is some hundreds of metres
    before = maps.decode_polygons(data_blocks(plain)["pl-data-communities"]["e"])
    after = maps.decode_polygons(data_blocks(shifted)["pl-data-communities"]["e"])
    expected = maps.transform_geometries(before, "wgs84", "gcj02")
    assert np.allclose(shapely.get_coordinates(after), shapely.get_coordinates(expected),
                       atol=2e-5)
    offset = shapely.get_coordinates(after)[0] - shapely.get_coordinates(before)[0]
    assert 100 < np.hypot(offset[0] * 85_000, offset[1] * 111_000) < 1000


def test_city_scale_maps_leave_out_the_residence_layer(helsinki_analysis, monkeypatch):
    layers = analysis_layers(helsinki_analysis, isochrones=False)
    full = maps.build_map(layers, helsinki_analysis.catalogue, lang="en")
    monkeypatch.setattr(settings, "map_max_residences", 10)
    capped = maps.build_map(layers, helsinki_analysis.catalogue, lang="en")
    full_html, capped_html = full.get_root().render(), capped.get_root().render()
    assert len(capped_html) < len(full_html)
    assert '"x": []' in capped_html.replace('"x":[]', '"x": []')


def test_no_data_types_and_candidates_on_the_map(helsinki_analysis):
    layers = analysis_layers(helsinki_analysis, isochrones=False)
    summary = helsinki_analysis.summary.copy()
    no_data = "kindergarten"
    summary["facilities_in_area"] = np.where(summary["type_id"] == no_data, 0, 3)
    communities = layers["communities"].assign(score_data=0.5, n_types_data=30,
                                               detour_index=1.31)
    candidates = gpd.GeoDataFrame(
        {"rank": [2, 1], "type_id": ["pharmacy", no_data], "site_id": ["g1", "g2"],
         "label": ["学院路 · 网格 002_003", ""], "community_id": ["a", "b"],
         "added_population": [120.0, 80.0], "added_by_type": ['{"pharmacy": 120}', None],
         "kind": ["generated", "generated"]},
        geometry=shapely.points([[24.94, 60.17], [24.95, 60.165]]), crs=4326)
    html = maps.build_map({**layers, "communities": communities, "summary": summary,
                           "candidates": candidates},
                          helsinki_analysis.catalogue, lang="zh").get_root().render()
    blocks = data_blocks(html)
    config = blocks["pl-data-config"]
    index = [t["id"] for t in config["types"]].index(no_data)
    assert config["hasData"][index] is False and sum(config["hasData"]) == len(
        config["hasData"]) - 1
    assert shows(html, "无数据")
    # hexagon counts leave out the type without data
    cells = blocks["pl-data-cells"]["p"]
    assert max(cells["n"]) < layers["gaps"]["n_missing_types"].max()
    assert blocks["pl-data-communities"]["p"]["detour"][0] == 1.31
    sites = blocks["pl-data-candidates"]
    assert sorted(sites["rank"]) == [1, 2]
    first = sites["rank"].index(2)
    assert sites["label"][first] == "学院路 · 网格 002_003"
    assert sites["gains"][first][0][1] == 120 and sites["label"][1 - first] == "g2"
    # without the column, every type has data
    plain = data_blocks(maps.build_map(layers, helsinki_analysis.catalogue).get_root().render())
    assert all(plain["pl-data-config"]["hasData"])


def test_run_record_carries_the_quality_entry(helsinki_analysis, tmp_path):
    from planner.outputs import run_record

    before = getattr(helsinki_analysis, "quality", None)
    helsinki_analysis.quality = {"checked": True}
    try:
        assert run_record(helsinki_analysis)["quality"] == {"checked": True}
    finally:
        helsinki_analysis.quality = before


def test_two_runs_write_the_same_bytes(helsinki_analysis, tmp_path):
    """Every output file is byte-identical between runs, run.json's timings aside."""
    folders = [write_analysis(helsinki_analysis, tmp_path / name, lang="en")
               for name in ("first", "second")]
    names = sorted(path.name for path in folders[0].iterdir())
    assert names == sorted(path.name for path in folders[1].iterdir())
    assert {"coverage.gpkg", "map.html", "report.html", "summary.csv"} <= set(names)
    for name in names:
        first, second = ((folder / name).read_bytes() for folder in folders)
        if name == "run.json":
            first, second = (json.loads(text) for text in (first, second))
            for record in (first, second):
                record.pop("timings_s")
        assert first == second, name


def test_city_scale_outputs_hold_service_cells_not_streets(helsinki_analysis, monkeypatch,
                                                           tmp_path):
    """Above the size limits the heavy layers wait for full=True; the map draws squares."""
    monkeypatch.setattr(settings, "max_isochrone_coordinates", 0)
    monkeypatch.setattr(settings, "max_default_walk_edges", 0)
    layers = analysis_layers(helsinki_analysis)
    assert "service_cells" in layers
    assert "isochrones" not in layers and "walk_edges" not in layers
    full = analysis_layers(helsinki_analysis, full=True)
    assert {"service_cells", "isochrones", "walk_edges"} <= set(full)
    out = write_analysis(helsinki_analysis, tmp_path / "city", lang="en")
    written = {name for name, _ in pyogrio.list_layers(out / "coverage.gpkg")}
    assert "service_cells" in written and "walk_edges" not in written
    results = read_results(out)
    html = maps.build_map(results, helsinki_analysis.catalogue, lang="en").get_root().render()
    areas = data_blocks(html)["pl-data-areas"]
    drawn = [column for column in results["service_cells"] if column.startswith("reach_")]
    assert len(areas["p"]["t"]) == len(drawn) and areas["g"]["m"] == settings.service_cell_m


def test_city_scale_maps_count_facilities_per_square(helsinki_analysis, monkeypatch):
    """Above map_max_facility_markers, one marker per (square, scene) with its counts."""
    layers = analysis_layers(helsinki_analysis, isochrones=False)
    catalogue = helsinki_analysis.catalogue
    plain = data_blocks(maps.build_map(layers, catalogue, lang="en").get_root().render())
    monkeypatch.setattr(settings, "map_max_facility_markers", 10)
    html = maps.build_map(layers, catalogue, lang="en").get_root().render()
    assert html == maps.build_map(layers, catalogue, lang="en").get_root().render()
    blocks = data_blocks(html)
    n_types = len(blocks["pl-data-config"]["types"])
    total = 0
    for scene in catalogue.scenes:
        markers = plain[f"pl-data-facilities-{scene.id}"]
        squares = blocks[f"pl-data-facilities-{scene.id}"]
        assert "id" not in squares and squares["g"]["m"] == settings.map_facility_cell_m
        # a facility of several types of the scene once; its types each counted
        assert sum(squares["n"]) == len(markers["id"])
        assert len(squares["g"]["c"]) == 2 * len(squares["n"]) == 2 * len(squares["t"])
        pairs = [pair for row in squares["t"] for pair in zip(row[::2], row[1::2],
                                                               strict=True)]
        assert sum(count for _, count in pairs) == sum(len(set(t)) for t in markers["t"])
        assert all(0 <= t < n_types for t, _ in pairs)
        # each facility lies in (or on the edge of) its square
        ij = np.cumsum(np.asarray(squares["g"]["c"], dtype=int).reshape(-1, 2), axis=0)
        if len(markers["x"]):
            lon = (ij[:, 0] + 0.5) * squares["g"]["dx"]
            lat = (ij[:, 1] + 0.5) * squares["g"]["dy"]
            near = np.hypot((lon[:, None] - np.asarray(markers["x"])[None, :]) / squares["g"]["dx"],
                            (lat[:, None] - np.asarray(markers["y"])[None, :]) / squares["g"]["dy"])
            assert (near.min(axis=0) <= 0.75).all()
        total += sum(squares["n"])
    assert total > 10
    assert "planner.facilities(" in html and shows(html, "facilities in this {m} m square")


def test_array_json_matches_json_text():
    """The encodings written straight from arrays are the text json_text writes."""
    import pandas as pd

    from planner import map_data

    values, lengths = [5, -1, 30, 7], [2, 0, 1, 1]
    assert map_data.json_int_lists(values, lengths) == map_data.json_text([[5, -1], [], [30], [7]])
    assert map_data.json_int_lists([], []) == "[]"
    assert map_data.json_object({"a": "[1]", "é": '"x"'}) == map_data.json_text(
        {"a": [1], "é": "x"})
    flags = np.array([[True] + [False] * 8 + [True], [False] * 10])
    assert map_data.bitmask(flags) == ["8040", "0000"]
    matrix = map_data.missing_matrix(pd.Series(["a,c", None, "", "b,zz"]), ["a", "b", "c"])
    assert matrix.tolist() == [[True, False, True], [False] * 3, [False] * 3,
                               [False, True, False]]


def test_ring_centres_are_those_of_geos():
    """Centroids and interior points from the rings give shapely's numbers, bit for bit."""
    from planner.map_encoding import ring_centroids, ring_interior_points

    rng = np.random.default_rng(3)
    centre = rng.uniform([100, 20], [120, 45], size=(4000, 1, 2))
    angle = np.linspace(0, 2 * np.pi, 7)[None, :] + rng.uniform(0, 1, (4000, 1))
    size = rng.uniform(1e-4, 2e-3, (4000, 1))
    hexagons = centre + np.stack([np.cos(angle), np.sin(angle)], axis=2) * size[..., None]
    hexagons[:, -1] = hexagons[:, 0]
    squares = hexagons[:, [0, 2, 3, 5, 0]]  # convex quadrilaterals of either orientation
    squares[::2] = squares[::2, ::-1]
    degenerate = np.repeat(centre, 5, axis=1)  # no area: GEOS' own rules
    concave = np.array([[[0, 0], [4, 0], [4, 4], [2, 1], [0, 4], [0, 0]]], dtype=float)
    for rings in (hexagons, squares, degenerate, concave):
        polygons = shapely.polygons(rings)
        assert np.array_equal(ring_centroids(rings), shapely.get_coordinates(
            shapely.centroid(polygons)), equal_nan=True)
        assert np.array_equal(ring_interior_points(rings), shapely.get_coordinates(
            shapely.point_on_surface(polygons)), equal_nan=True)


def test_polygon_rings_only_of_one_ring_polygons():
    from planner.map_encoding import polygon_rings

    square = shapely.box(500_000, 3_000_000, 500_100, 3_000_100)
    frame = gpd.GeoDataFrame(geometry=[square, square], crs="EPSG:32650")
    rings = polygon_rings(frame)
    assert rings.shape == (2, 5, 2)
    assert np.array_equal(rings.reshape(-1, 2), shapely.get_coordinates(
        frame.to_crs(4326).geometry.to_numpy()))
    holed = square.difference(shapely.box(500_040, 3_000_040, 500_060, 3_000_060))
    for other in ([square, holed], [square, shapely.Point(500_000, 3_000_000)],
                  [square, shapely.box(500_000, 3_000_000, 500_050, 3_000_050).union(
                      shapely.box(500_050, 3_000_000, 500_100, 3_000_020))]):
        assert polygon_rings(gpd.GeoDataFrame(geometry=other, crs="EPSG:32650")) is None


@settings_hypothesis(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.just(""), st.text(max_size=6),
                          st.sampled_from(["社区卫生服务站", "Lidl", "幼儿园 A", "Café"])),
                max_size=30))
def test_detect_lang_on_a_column_as_on_a_list(names):
    """A column of strings is searched at once; a list name by name: the same language."""
    from planner.i18n import detect_lang

    column = pd.Series(names, dtype="str")
    assert detect_lang(column) == detect_lang(list(column))
    assert detect_lang(column.astype(object)) == detect_lang(column)
