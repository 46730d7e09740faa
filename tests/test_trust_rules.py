"""Issue 14: school levels and names, homes, data status, walk rules, snapping, one truth."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS

from planner import settings
from planner.catalogue import classify_features, load_catalogue
from planner.coverage import residences_from_buildings
from planner.errors import PlannerError
from planner.network import build_network
from planner.sources import Area, walkable_mask

CAT = load_catalogue()
METRIC = CRS.from_epsg(32650)


def features(rows: list[dict]) -> gpd.GeoDataFrame:
    """Point or polygon features with the columns the classifier reads."""
    records = [{"osm_type": row.pop("osm_type", "node"), "osm_id": index,
                "geometry": row.pop("geometry", shapely.Point(index * 10.0, 0)), **row}
               for index, row in enumerate(rows)]
    frame = gpd.GeoDataFrame(records, geometry="geometry", crs=METRIC)
    for key in [*CAT.feature_keys(), "name", "name:zh", "official_name", "name:en", "place",
                "boundary", "building:levels", "height"]:
        if key not in frame.columns:
            frame[key] = None
    return frame


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize(("name", "tags", "expected"), [
    ("清华附小", {"amenity": "school"}, {"primary_school"}),
    ("北邮附小", {"amenity": "school"}, {"primary_school"}),
    ("中关村中学", {"amenity": "school"}, {"middle_school"}),
    ("北京石油学院附属中学", {"amenity": "school"}, {"middle_school"}),
    ("北邮附中", {"amenity": "school"}, {"middle_school"}),
    ("北京四中", {}, {"middle_school"}),
    ("某某九年一贯制学校", {"amenity": "school"}, {"primary_school", "middle_school"}),
    ("某某实验学校", {"amenity": "school"}, {"primary_school", "middle_school"}),
    ("某某完全中学", {"amenity": "school"}, {"middle_school"}),
    ("某某学校", {"amenity": "school"}, {"primary_school", "middle_school"}),
    ("清华大学洁华幼儿园", {"amenity": "school"}, {"kindergarten"}),
    ("清华大学洁华幼儿园", {"amenity": "kindergarten"}, {"kindergarten"}),
    ("原幼儿园停车场", {"amenity": "parking"}, set()),
    ("原幼儿园停车场", {}, set()),
    ("0803-633规划幼儿园", {}, set()),
    ("0803-633规划幼儿园", {"amenity": "kindergarten"}, set()),
    ("拟建小学", {}, set()),
    ("北大附小站", {}, set()),
    ("某某幼儿园(中关村路)", {}, {"kindergarten"}),
    ("草原小学", {}, {"primary_school"}),
    ("贵溪市人民政府", {"amenity": "townhall"}, set()),
    ("中关村街道办事处", {"amenity": "townhall"}, {"subdistrict_office"}),
    ("清华学堂", {}, set()),
    ("人民医院站", {"highway": "bus_stop"}, {"bus_stop"}),
    ("某某小学", {"amenity": "school", "isced:level": "2"}, {"middle_school", "primary_school"}),
])
def test_names_decide_and_mentions_do_not_count(name, tags, expected):
    result = classify_features(features([{"name": name, **tags}]), CAT)
    assert set(result.facilities["type_id"]) == expected


def test_every_name_decision_is_listed_with_its_reason():
    rows = [{"name": "清华附小", "amenity": "school"}, {"name": "原幼儿园停车场",
            "amenity": "parking"}, {"name": "贵溪市人民政府", "amenity": "townhall"},
            {"name": "0803-633规划幼儿园"}, {"name": "幼儿园停车场", "amenity": "parking"}]
    decisions = classify_features(features(rows), CAT).decisions.set_index("facility_id")
    assert decisions.loc["n0", "reason"] == "name_decides"
    assert decisions.loc["n0", "dropped_type_ids"] == "middle_school"
    assert decisions.loc["n0", "type_ids"] == "primary_school"
    assert decisions.loc["n1", "reason"] == "mention"
    assert decisions.loc["n2", "reason"] == "name_excludes"
    assert decisions.loc["n3", "reason"] == "mention"
    assert decisions.loc["n4", "reason"] == "mention"  # …停车场 suffix (also a car park)


def write_catalogue(tmp_path, transform):
    text = (CAT.path).read_text(encoding="utf-8")
    path = tmp_path / "catalogue.toml"
    path.write_text(transform(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(("transform", "fragment"), [
    (lambda t: t.replace('names = ["菜市场", "农贸市场", "菜场"]', 'names = ["菜市场", ""]'),
     "types[0] (food_market): field 'names' holds an empty string"),
    (lambda t: t.replace("threshold_m = 500\n", "threshold_m = inf\n", 1),
     "types[0] (food_market): field 'threshold_m' must be a finite positive number"),
    (lambda t: t.replace('exclusive_with = ["middle_school"]', 'exclusive_with = ["nope"]'),
     "field 'exclusive_with' names an unknown"),
    (lambda t: t.replace('mention_prefixes = ["^原"', 'mention_prefixes = ["", "^原"'),
     "[name_rules]: field 'mention_prefixes' holds an empty string"),
    (lambda t: t.replace('housing_names = ["宿舍"', 'housing_names = ["(宿舍"'),
     "[residences]: field 'housing_names': bad pattern"),
])
def test_catalogue_validation_names_file_entry_and_field(tmp_path, transform, fragment):
    path = write_catalogue(tmp_path, transform)
    with pytest.raises(PlannerError) as caught:
        load_catalogue(path)
    assert fragment in str(caught.value) and str(path) in str(caught.value)


# ----------------------------------------------------------------------------- homes


def square(x: float, y: float, side: float = 20.0):
    return shapely.box(x, y, x + side, y + side)


def test_non_homes_are_not_residences_and_quality_says_why():
    campus = {"amenity": "university", "osm_type": "way", "geometry": square(0, 0, 500)}
    rows = [campus,
            {"building": "yes", "name": "美术学院", "osm_type": "way", "geometry": square(600, 0)},
            {"building": "yes", "name": "工字厅", "osm_type": "way", "geometry": square(650, 0)},
            {"building": "yes", "osm_type": "way", "geometry": square(100, 100)},  # on campus
            {"building": "yes", "name": "学生5号宿舍", "osm_type": "way",
             "geometry": square(200, 200)},
            {"building": "dormitory", "osm_type": "way", "geometry": square(300, 300)},
            {"building": "house", "name": "学生发展中心", "osm_type": "way",
             "geometry": square(700, 0)},
            {"building": "yes", "osm_type": "way", "geometry": square(800, 0)},
            {"building": "yes", "amenity": "library", "osm_type": "way",
             "geometry": square(900, 0)}]
    quality: dict = {}
    homes = residences_from_buildings(features(rows), rules=CAT.residences, quality=quality)
    assert sorted(homes["residence_id"]) == ["rw4", "rw5", "rw7"]
    assert quality["excluded_non_homes"] == {
        "buildings": 5, "by_reason": {"non_home_tags": 1, "non_home_names": 3, "precinct": 1}}
    assert set(homes["storeys_source"]) == {"default"}
    assert list(homes["building"]) == ["yes", "dormitory", "yes"]


def test_bupt_campus_buildings_are_not_homes(beijing_analysis):
    analysis = beijing_analysis
    ids = analysis.residences["residence_id"].str[2:].astype("int64")
    buildings = analysis.area.features
    homes = buildings[(buildings["osm_type"] == "way") & buildings["osm_id"].isin(ids)]
    names = homes["name"].dropna()
    # what remains named is housing: 公寓, 宿舍, 家属楼 and numbered 号楼 tagged as apartments
    assert names.str.contains("公寓|宿舍|家属|号楼").all(), sorted(names)
    assert not names.str.contains("学院|中学|中心|食堂|图书馆|教学").any()
    record = analysis.quality["residences"]
    assert record["excluded_non_homes"]["buildings"] > 0
    assert record["default_storeys"]["residences"] <= record["residences"]


# ----------------------------------------------------------------------------- data status


def test_summary_facilities_in_area_equals_the_facilities_layer(beijing_analysis):
    analysis = beijing_analysis
    per_type = analysis.facilities.groupby("type_id")["facility_id"].nunique()
    summary = analysis.summary.drop_duplicates("type_id").set_index("type_id")
    expected = per_type.reindex(summary.index).fillna(0).astype(int)
    assert (summary["facilities_in_area"] == expected).all()
    status = analysis.type_status
    assert list(status.index) == analysis.catalogue.type_ids
    assert (status["has_data"] == (status["facilities_in_area"] > 0)).all()
    communities = analysis.communities
    n_data = int(status["has_data"].sum())
    assert (communities["n_types_data"] == n_data).all()
    assert (communities["n_types"] == len(status)).all()
    assert (communities["no_data_types"] == len(status) - n_data).all()
    assert (communities["score_data"] >= communities["score"]).all()


def test_few_types_warn_once_in_chinese(beijing_osm, caplog, monkeypatch):
    from planner.pipeline import analyze

    monkeypatch.setattr(settings, "lang", "zh")
    with caplog.at_level(logging.WARNING, logger="planner.pipeline"):
        analysis = analyze(beijing_osm)
    warned = [r.getMessage() for r in caplog.records if "--facilities" in r.getMessage()]
    assert len(warned) == 1 and "数据源只含" in warned[0] and "街道办事处" in warned[0]
    assert warned[0] in analysis.quality["warnings"]
    assert analysis.communities["name"].str.startswith("网格").all()


# ----------------------------------------------------------------------------- one truth


def test_coverage_equals_what_the_published_distances_give(beijing_analysis):
    analysis = beijing_analysis
    residences = analysis.residences
    for type_id in analysis.catalogue.type_ids:
        threshold = analysis.catalogue.type(type_id).threshold_m
        published = residences[f"dist_{type_id}"].to_numpy(float)
        assert np.array_equal(published[~np.isnan(published)],
                              np.round(published[~np.isnan(published)], 1))
        covered = residences["population"].where(published <= threshold, 0.0)
        per_community = covered.groupby(residences["community_id"]).sum()
        table = analysis.communities.set_index("community_id")
        share = (per_community / table["population"].reindex(per_community.index)).round(4)
        np.testing.assert_allclose(share.to_numpy(), table.loc[share.index, f"cov_{type_id}"],
                                   atol=1e-4)


# ----------------------------------------------------------------------------- walk rules


def ways(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("tags", "china", "strict", "osmnx"), [
    ({"highway": "cycleway"}, True, False, False),
    ({"highway": "cycleway", "foot": "no"}, False, False, False),
    ({"highway": "trunk"}, False, False, True),
    ({"highway": "trunk", "sidewalk": "both"}, True, False, True),
    ({"highway": "trunk", "foot": "yes"}, True, True, True),
    ({"highway": "service", "access": "private"}, True, False, False),
    ({"highway": "footway", "access": "private"}, True, False, False),
    ({"highway": "primary", "access": "no"}, False, False, True),
    ({"highway": "motorway"}, False, False, False),
    ({"highway": "residential"}, True, True, True),
])
def test_walk_profiles(tags, china, strict, osmnx):
    frame = ways([tags])
    assert walkable_mask(frame, "china")[0] == china
    assert walkable_mask(frame, "strict")[0] == strict
    assert walkable_mask(frame, "osmnx")[0] == osmnx


def test_unknown_walk_profile_is_a_planner_error():
    with pytest.raises(PlannerError, match="walk profile"):
        walkable_mask(ways([{"highway": "footway"}]), "sidewalks")


# ----------------------------------------------------------------------------- network


def line_area(segments: list[tuple], extra: list[tuple] = ()) -> Area:
    """An area from ``(u, v, tags)`` segments over nodes at given coordinates."""
    nodes = pd.DataFrame({"x": [0.0, 400.0, 0.0, 400.0, 5000.0, 5100.0],
                          "y": [0.0, 0.0, 100.0, 100.0, 5000.0, 5000.0]},
                         index=pd.Index([1, 2, 3, 4, 5, 6], name="node_id"))
    edges = pd.DataFrame([{"u": u, "v": v, "highway": "footway", "name": None, **tags}
                          for u, v, tags in [*segments, *extra]])
    return Area("t", METRIC, nodes, edges, features([{"name": "x"}]).iloc[:0])


def test_points_beside_a_viaduct_snap_to_the_street_below():
    area = line_area([(1, 2, {}), (3, 4, {"bridge": "viaduct", "layer": "1"}), (1, 3, {}),
                      (2, 4, {})])
    network = build_network(area)
    assert network.edge_grade_separated.sum() == 1
    point = shapely.points([[200.0, 70.0]])  # 30 m from the deck, 70 m from the street
    snap = network.snap(point)
    assert not network.edge_grade_separated[snap.edge[0]]
    assert snap.ground_preferred[0] and snap.access_m[0] == pytest.approx(70.0)
    assert network.edge_grade_separated[network.snap(point, prefer_ground=False).edge[0]]
    far = shapely.points([[200.0, 101.0]])  # 1 m from the deck: the street is too far
    assert network.edge_grade_separated[network.snap(far).edge[0]]


def test_dropped_fragments_are_reported():
    area = line_area([(1, 2, {}), (2, 4, {}), (4, 3, {}), (5, 6, {})])
    network = build_network(area)
    assert network.fragments["n_dropped_fragments"] == 1
    assert network.fragments["dropped_km"] == pytest.approx(0.1)
    assert network.fragments["dropped_at_extract_edge_km"] == pytest.approx(0.1)


def test_detour_and_compounds_in_the_communities_layer(helsinki_analysis):
    communities = helsinki_analysis.communities
    assert {"detour_index", "compounds_without_paths", "score_data", "n_types",
            "n_types_data", "no_data_types"} <= set(communities.columns)
    detour = communities["detour_index"].dropna()
    assert len(detour) and (detour >= 1.0).all() and (detour < 5).all()
    record = helsinki_analysis.quality["network"]
    assert record["walk_profile"] == settings.walk_profile
    assert record["dropped_km"] >= record["dropped_at_extract_edge_km"] >= 0
    assert "compound_without_paths" in helsinki_analysis.residences.columns


@pytest.mark.parametrize(("name", "expected"), [
    ("城南消防救援站", {"fire_station"}), ("废品回收站", {"recycling_point"}),
    ("街道就业服务站", {"employment_service"}), ("人民调解站", {"legal_mediation"}),
    ("医院站", set()), ("幼儿园站", set()),
])
def test_a_station_is_a_facility_unless_it_is_named_after_a_place(name, expected):
    """消防救援站, 回收站, 服务站 name the facility; 医院站 is a stop named after one."""
    result = classify_features(features([{"name": name}]), CAT)
    assert set(result.facilities["type_id"]) == expected


def test_tower_names_do_not_overrule_a_housing_tag():
    """XX大厦 or XX公馆 tagged as apartments is a home; an untagged XX大厦 is not."""
    rows = [{"building": "apartments", "name": "阳光大厦", "osm_type": "way",
             "geometry": square(0, 0)},
            {"building": "residential", "name": "江景公馆", "osm_type": "way",
             "geometry": square(100, 0)},
            {"building": "yes", "name": "金融大厦", "osm_type": "way", "geometry": square(200, 0)}]
    homes = residences_from_buildings(features(rows), rules=CAT.residences, quality={})
    assert sorted(homes["residence_id"]) == ["rw0", "rw1"]
