"""End to end: the output contract, the real Beijing extract, the online path."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest

from planner.export import write_analysis
from planner.outputs import read_results
from planner.pipeline import analyze

SUMMARY_COLUMNS = ["community_id", "scene_id", "type_id", "threshold_m", "population",
                   "covered_population", "coverage"]


@pytest.fixture(scope="module")
def demo_out(helsinki_analysis, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    write_analysis(helsinki_analysis, out)
    return out


def test_output_layout_is_the_contract(demo_out, helsinki_analysis):
    assert {p.name for p in demo_out.iterdir()} >= {"coverage.gpkg", "summary.csv", "map.html",
                                                    "run.json"}
    layers = dict(pyogrio.list_layers(demo_out / "coverage.gpkg"))
    assert set(layers) >= {"facilities", "residences", "communities", "walk_edges"}
    results = read_results(demo_out)
    type_ids = helsinki_analysis.catalogue.type_ids
    scene_ids = helsinki_analysis.catalogue.scene_ids
    for name in ("facilities", "residences", "communities", "walk_edges"):
        assert results[name].crs.to_epsg() == 4326
    assert {"facility_id", "type_id", "scene_id", "name", "match"} <= set(results["facilities"])
    assert set(results["facilities"]["match"]) <= {"tag", "name", "list"}
    residences = results["residences"]
    assert {"residence_id", "community_id", "population"} <= set(residences)
    assert all(f"dist_{t}" in residences for t in type_ids)
    communities = results["communities"]
    assert all(f"cov_{t}" in communities for t in type_ids)
    assert all(f"score_{s}" in communities for s in scene_ids) and "score" in communities
    assert {"u", "v", "length_m"} <= set(results["walk_edges"])
    summary = results["summary"]
    assert list(summary.columns[:7]) == SUMMARY_COLUMNS
    assert len(summary) == len(communities) * len(type_ids)
    assert summary["coverage"].dropna().between(0, 1).all()
    record = json.loads((demo_out / "run.json").read_text(encoding="utf-8"))
    assert {"inputs", "parameters", "catalogue", "versions", "timings_s"} <= set(record)
    assert all(len(entry["sha256"]) == 64 for entry in record["inputs"])
    assert {"network", "access", "coverage", "write", "map"} <= set(record["timings_s"])


def test_coverage_is_recomputable_from_residence_distances(demo_out, helsinki_analysis):
    results = read_results(demo_out)
    residences, summary = results["residences"], results["summary"]
    thresholds = helsinki_analysis.catalogue.thresholds_m()
    for type_id in helsinki_analysis.catalogue.type_ids[:10]:
        covered = residences[f"dist_{type_id}"].fillna(np.inf) <= thresholds[type_id]
        expected = (residences["population"] * covered).groupby(residences["community_id"]).sum()
        rows = summary[summary["type_id"] == type_id].set_index("community_id")
        np.testing.assert_allclose(rows.loc[expected.index, "covered_population"],
                                   expected.to_numpy(), atol=0.1)


def test_demo_shows_no_data_apart_from_real_gaps(helsinki_analysis):
    """The Helsinki extract has no kindergarten: that is no data, not a gap."""
    analysis = helsinki_analysis
    communities = analysis.communities
    assert communities["population"].gt(0).all()
    assert "kindergarten" not in set(analysis.facilities["type_id"])
    assert (communities["cov_kindergarten"] == 0).all()
    assert not communities["missing_types"].str.contains("kindergarten").any()
    status = analysis.type_status
    assert not status.loc["kindergarten", "has_data"]
    assert (communities["no_data_types"] == (~status["has_data"]).sum()).all()
    # missing_types lists only types with data that nobody in the community reaches
    for row in communities.itertuples():
        for type_id in filter(None, row.missing_types.split(",")):
            assert status.loc[type_id, "has_data"] and getattr(row, f"cov_{type_id}") == 0


def test_beijing_extract(beijing_analysis, tmp_path):
    analysis = beijing_analysis
    assert analysis.facilities["scene_id"].nunique() >= 5
    out = write_analysis(analysis, tmp_path / "bj")
    facilities = gpd.read_file(out / "coverage.gpkg", layer="facilities")
    names = set(facilities["name"].dropna())
    assert any("\u4e00" <= ch <= "\u9fff" for name in names for ch in name)
    assert {"中国邮政", "瑞幸咖啡"} & names or any("邮" in name for name in names)
    summary = pd.read_csv(out / "summary.csv")
    assert summary["population"].gt(0).any()
    assert (analysis.communities["community_source"] == "grid").all()


def test_online_place_is_downloaded_through_osmnx(monkeypatch, beijing_osm):
    import osmnx as ox

    calls = []

    def graph_from_place(query, **kwargs):
        calls.append(("graph", query, kwargs))
        return ox.graph_from_xml(beijing_osm, bidirectional=True, simplify=False,
                                 retain_all=True)

    def features_from_place(query, tags):
        calls.append(("features", query, tags))
        return ox.features_from_xml(beijing_osm, tags=tags)

    monkeypatch.setattr(ox, "graph_from_place", graph_from_place)
    monkeypatch.setattr(ox, "features_from_place", features_from_place)
    analysis = analyze(place="海淀区, 北京市")
    assert [call[0] for call in calls] == ["graph", "features"]
    assert calls[0][2]["network_type"] == "walk" and calls[0][2]["simplify"] is False
    assert analysis.area.name == "海淀区, 北京市"
    assert len(analysis.facilities) > 0 and len(analysis.residences) > 0


def test_online_failure_is_one_clear_error(monkeypatch):
    import osmnx as ox

    from planner.errors import PlannerError

    def offline(*args, **kwargs):
        raise ConnectionError("Max retries exceeded with url: /api/interpreter")

    monkeypatch.setattr(ox, "graph_from_bbox", offline)
    with pytest.raises(PlannerError, match="download .* failed: ConnectionError"):
        analyze(bbox=(116.34, 39.95, 116.36, 39.96))


def test_population_layer_overrides_the_estimate(helsinki_area, tmp_path):
    from tests.conftest import DEMO_COMMUNITIES

    zones = gpd.read_file(DEMO_COMMUNITIES)
    zones["population"] = np.arange(1, len(zones) + 1) * 1000
    path = tmp_path / "population.gpkg"
    zones[["population", "geometry"]].to_file(path, layer="pop")
    analysis = analyze(helsinki_area, communities=DEMO_COMMUNITIES, population=path)
    totals = analysis.communities.set_index("name")["population"]
    np.testing.assert_allclose(totals.loc[zones["name"]].to_numpy(),
                               zones["population"].to_numpy(), rtol=1e-3)


def test_communities_in_another_crs_are_reprojected(helsinki_area, helsinki_analysis, tmp_path):
    from tests.conftest import DEMO_COMMUNITIES

    path = tmp_path / "communities_3067.shp"
    gpd.read_file(DEMO_COMMUNITIES).to_crs(3067).to_file(path)
    analysis = analyze(helsinki_area, communities=path)
    np.testing.assert_allclose(analysis.communities["score"].to_numpy(),
                               helsinki_analysis.communities["score"].to_numpy(), atol=1e-3)


GOLDEN = Path(__file__).parent / "data" / "golden"


@pytest.mark.parametrize(("fixture", "golden"), [("helsinki_analysis", "demo_summary.csv"),
                                                 ("beijing_analysis",
                                                  "beijing-haidian-bupt_summary.csv")])
def test_summary_equals_the_stored_copy(request, fixture, golden, tmp_path):
    """Speed work must not move a figure: summary.csv equals the stored copy, value for value.

    Regenerate a copy only for an intentional change of behaviour, and say so
    in the change.
    """
    analysis = request.getfixturevalue(fixture)
    analysis.summary.to_csv(tmp_path / golden, index=False, encoding="utf-8")
    assert (tmp_path / golden).read_bytes() == (GOLDEN / golden).read_bytes()


def test_cached_area_equals_a_fresh_read(monkeypatch, tmp_path, beijing_osm):
    """With settings.cache_dir a second load comes from the cache, equal to the first."""
    from planner import settings
    from planner.catalogue import load_catalogue
    from planner.sources import load_area

    keys = load_catalogue().feature_keys()
    fresh = load_area(beijing_osm, feature_keys=keys)
    monkeypatch.setattr(settings, "cache_dir", str(tmp_path / "cache"))
    first = load_area(beijing_osm, feature_keys=keys)
    assert len(list((tmp_path / "cache").glob("area-*.pickle"))) == 1
    copy = tmp_path / "copy.osm"
    copy.write_bytes(Path(beijing_osm).read_bytes())
    again = load_area(copy, feature_keys=keys)  # the same content under another name
    assert len(list((tmp_path / "cache").glob("area-*.pickle"))) == 1
    assert again.name == "copy" and again.sources == [copy]
    for area in (first, again):
        assert area.crs == fresh.crs
        pd.testing.assert_frame_equal(area.nodes, fresh.nodes)
        pd.testing.assert_frame_equal(area.edges, fresh.edges)
        pd.testing.assert_frame_equal(area.features, fresh.features)
    next(iter((tmp_path / "cache").glob("area-*.pickle"))).write_bytes(b"not a pickle")
    pd.testing.assert_frame_equal(load_area(beijing_osm, feature_keys=keys).features,
                                  fresh.features)


@pytest.mark.parametrize("layer", ["facilities", "residences", "communities"])
def test_demo_attribute_tables_equal_the_stored_copy(helsinki_analysis, layer, tmp_path):
    """The GeoPackage's attribute tables of the demo, value for value (regenerate as above)."""
    from planner.layers import analysis_layers

    table = analysis_layers(helsinki_analysis, isochrones=False)[layer]
    name = f"demo_{layer}.csv"
    table.drop(columns=table.geometry.name).to_csv(tmp_path / name, index=False,
                                                   encoding="utf-8", float_format="%.6g")
    assert (tmp_path / name).read_bytes() == (GOLDEN / name).read_bytes()


@pytest.mark.parametrize("name", ["shanghai-baoshan-shu", "shenzhen-longgang-mapmatching"])
def test_chinese_summaries_equal_the_stored_copy(name, tmp_path):
    """The other Chinese extracts, when they are beside the checkout (regenerate as above)."""
    from planner.pipeline import analyze
    from tests.conftest import shared_extract

    summary = analyze(shared_extract(name)).summary
    summary.to_csv(tmp_path / "summary.csv", index=False, encoding="utf-8")
    assert (tmp_path / "summary.csv").read_bytes() == (GOLDEN / f"{name}_summary.csv").read_bytes()
