"""Catalogue loading, validation messages and classification."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, Polygon

from planner.catalogue import TagRule, classify, load_catalogue
from planner.catalogue_model import TagTable, any_rule
from planner.errors import PlannerError

MINIMAL = """
[catalogue]
version = "t1"
[[scenes]]
id = "health"
zh = "健康医疗"
en = "Health"
[[types]]
id = "pharmacy"
scene = "health"
zh = "药店"
en = "Pharmacy"
level = "5min"
threshold_m = 300
tags = ["amenity=pharmacy", "healthcare=pharmacy & !amenity"]
names = ["药店", "药房"]
exclude_names = ["宠物"]
source = "test"
verified = false
[[types]]
id = "elderly_day_care"
scene = "health"
zh = "日间照料中心"
en = "Elderly day care"
level = "5min"
threshold_m = 300
tags = ["amenity=social_facility & social_facility=day_care|outreach & social_facility:for=senior"]
names = ["日间照料", "托老所"]
source = "test"
verified = false
"""


def write(tmp_path, text):
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_catalogue_has_the_eight_scenes():
    cat = load_catalogue()
    assert cat.scene_ids == ["neighbourhood", "public_service", "health", "culture", "learning",
                             "innovation", "safety", "urban_safety"]
    assert [scene.zh for scene in cat.scenes] == ["邻里生活", "公共服务", "健康医疗", "文化休闲",
                                                  "全民学习", "创新创业", "平安法治", "城市安全"]
    assert len(cat.types) >= 30
    assert {t.scene for t in cat.types} == set(cat.scene_ids)
    assert not all(t.verified for t in cat.types)  # unverified figures stay flagged


@pytest.mark.parametrize(("text", "rule"), [
    ("a=b", [("a", "=", ("b",))]),
    ("a=b|c & !d", [("a", "=", ("b", "c")), ("d", "absent", ())]),
    ("a=* & b!=x & isced:level~^1", [("a", "*", ()), ("b", "!=", ("x",)),
                                     ("isced:level", "~", ("^1",))]),
])
def test_rule_syntax(text, rule):
    parsed = TagRule.parse(text)
    assert [(c.key, c.op, c.values) for c in parsed.conditions] == rule


def features(rows):
    frame = gpd.GeoDataFrame(rows, geometry=[row.pop("geometry") for row in rows], crs=32650)
    frame["osm_type"] = "node"
    frame["osm_id"] = range(1, len(frame) + 1)
    return frame


def test_classify_by_tag_and_by_name(tmp_path):
    cat = load_catalogue(write(tmp_path, MINIMAL))
    found = classify(features([
        {"amenity": "pharmacy", "name": "Apteekki", "geometry": Point(0, 0)},
        {"amenity": None, "name": "同仁堂大药房", "geometry": Polygon([(0, 0), (1, 0), (1, 1)])},
        {"amenity": None, "name": "宠物药店", "geometry": Point(1, 1)},  # excluded name
        {"amenity": "social_facility", "social_facility": "day_care",
         "social_facility:for": "senior", "name": None, "geometry": Point(2, 2)},
        {"amenity": None, "name": "XX托老所药房", "geometry": Point(3, 3)},  # two types
        {"amenity": None, "name": "药店路", "geometry": LineString([(0, 0), (5, 5)])},  # a road
    ]), cat)
    pairs = sorted(zip(found["facility_id"], found["type_id"], found["match"], strict=True))
    assert pairs == [("n1", "pharmacy", "tag"), ("n2", "pharmacy", "name"),
                     ("n4", "elderly_day_care", "tag"), ("n5", "elderly_day_care", "name"),
                     ("n5", "pharmacy", "name")]
    assert set(found.geometry.geom_type) == {"Point"}
    assert "同仁堂大药房" in set(found["name"])


@pytest.mark.parametrize(("change", "message"), [
    (("threshold_m = 300", "threshold_m = -5"), "types[0] (pharmacy): field 'threshold_m'"),
    (('level = "5min"', 'level = "7min"'), "types[0] (pharmacy): field 'level'"),
    (('scene = "health"', 'scene = "wellness"'), "types[0] (pharmacy): field 'scene'"),
    (('"amenity=pharmacy",', '"amenity==pharmacy",'), "types[0] (pharmacy): field 'tags'"),
    (('names = ["药店", "药房"]', 'names = ["药店("]'), "types[0] (pharmacy): field 'names'"),
    (('id = "pharmacy"', 'id = "Pharmacy Shop"'), "types[0] (Pharmacy Shop): field 'id'"),
    (("verified = false\n[[types]]", "verified = 3\n[[types]]"), "field 'verified'"),
    (('zh = "药店"', "zh = 5"), "types[0] (pharmacy): field 'zh'"),
])
def test_malformed_catalogue_names_file_entry_and_field(tmp_path, change, message):
    path = write(tmp_path, MINIMAL.replace(*change, 1))
    with pytest.raises(PlannerError) as error:
        load_catalogue(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_not_toml_is_reported(tmp_path):
    path = write(tmp_path, "[[types]\nid=")
    with pytest.raises(PlannerError, match="not valid TOML"):
        load_catalogue(path)


@pytest.mark.parametrize("text", ["sport=soccer|multi", "sport!=soccer", "sport=*", "!sport",
                                  "sport~soc|^multi", "layer~^-?1$", "sport=soccer & !layer"])
def test_rules_on_distinct_values_equal_a_row_by_row_reading(text):
    """Rules test each distinct tag value once (TagTable); the answer is the row-by-row one."""
    import re

    rows = pd.DataFrame({"sport": ["soccer", None, "multi;soccer", "tennis", "soccer", None],
                         "layer": [None, "1", "-1", 1, None, "x"]}, dtype=object)
    expected = []
    for row in rows.to_dict("records"):
        holds = True
        for condition in TagRule.parse(text).conditions:
            value = row.get(condition.key)
            value = None if pd.isna(value) else value
            if condition.op == "~":
                holds &= value is not None and re.search(condition.values[0],
                                                         str(value)) is not None
            else:
                holds &= {"=": value in condition.values, "!=": value not in condition.values,
                          "*": value is not None, "absent": value is None}[condition.op]
        expected.append(holds)
    rule = TagRule.parse(text)
    assert rule.evaluate(rows).tolist() == expected
    assert any_rule([rule], TagTable(rows)).tolist() == expected
