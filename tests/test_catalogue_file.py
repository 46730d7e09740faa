"""Schema checks for the packaged catalogue file ``planner/catalogue.toml``.

Self-contained on purpose (stdlib ``tomllib`` and ``re`` plus pytest): it checks the
file as data, independently of the loader in ``planner.catalogue``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

CATALOGUE_PATH = Path(__file__).resolve().parents[1] / "planner" / "catalogue.toml"

SCENES = [
    ("neighbourhood", "邻里生活"),
    ("public_service", "公共服务"),
    ("health", "健康医疗"),
    ("culture", "文化休闲"),
    ("learning", "全民学习"),
    ("innovation", "创新创业"),
    ("safety", "平安法治"),
    ("urban_safety", "城市安全"),
]
LEVELS = {"block", "5min", "10min", "15min"}
# Largest walking distance a level may use (15-min: upper bound of 800-1000 m).
LEVEL_MAX_M = {"block": 300, "5min": 300, "10min": 500, "15min": 1000}
TYPE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
REQUIRED_TYPE_KEYS = {"id", "scene", "zh", "en", "level", "threshold_m", "tags", "names",
                      "source", "verified"}
OPTIONAL_TYPE_KEYS = {"exclude_names", "name_excludes", "weak_tags", "name_decides",
                      "exclusive_with", "min_floor_area_m2", "note"}
CATALOGUE_KEYS = {"version", "name_zh", "name_en", "note"}
CJK = re.compile(r"[\u4e00-\u9fff]")

# ----------------------------------------------------------------------------- rule parser

_KEY = r"[A-Za-z_][A-Za-z0-9_:.\-]*"
_VALUE = r"[^|&\s!=~*][^|&\s]*"
_VALUES = rf"{_VALUE}(?:\|{_VALUE})*"
_CONDITIONS = [
    ("absent", re.compile(rf"^!(?P<key>{_KEY})$")),
    ("present", re.compile(rf"^(?P<key>{_KEY})=\*$")),
    ("not_in", re.compile(rf"^(?P<key>{_KEY})!=(?P<values>{_VALUES})$")),
    ("in", re.compile(rf"^(?P<key>{_KEY})=(?P<values>{_VALUES})$")),
    ("regex", re.compile(rf"^(?P<key>{_KEY})~(?P<pattern>\S.*)$")),
]


def parse_condition(text: str) -> tuple[str, str, object]:
    """``(op, key, argument)`` for one condition; raises ValueError when malformed."""
    for op, pattern in _CONDITIONS:
        match = pattern.match(text)
        if match is None:
            continue
        if op in ("absent", "present"):
            return op, match["key"], None
        if op == "regex":
            return op, match["key"], re.compile(match["pattern"])
        return op, match["key"], frozenset(match["values"].split("|"))
    raise ValueError(f"cannot parse condition {text!r}")


def parse_rule(rule: str) -> list[tuple[str, str, object]]:
    """Conditions of one rule; they are joined with exactly ``" & "``."""
    if not rule or rule != rule.strip():
        raise ValueError(f"empty rule or stray whitespace in {rule!r}")
    parts = rule.split(" & ")
    if rule.count("&") != len(parts) - 1:
        raise ValueError(f"'&' must only join conditions, as ' & ', in {rule!r}")
    return [parse_condition(part) for part in parts]


def rule_matches(rule: str, tags: dict[str, str]) -> bool:
    for op, key, argument in parse_rule(rule):
        value = tags.get(key)
        if op == "absent":
            ok = value is None
        elif op == "present":
            ok = value is not None
        elif op == "in":
            ok = value in argument
        elif op == "not_in":
            ok = value is None or value not in argument
        else:
            ok = value is not None and argument.search(value) is not None
        if not ok:
            return False
    return True


def name_matches(facility_type: dict, name: str) -> bool:
    if not any(re.search(keyword, name) for keyword in facility_type["names"]):
        return False
    excludes = facility_type.get("name_excludes", facility_type.get("exclude_names", []))
    return not any(re.search(keyword, name) for keyword in excludes)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def document() -> dict:
    with CATALOGUE_PATH.open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def types(document) -> list[dict]:
    return document["types"]


def _type(types: list[dict], type_id: str) -> dict:
    return next(t for t in types if t["id"] == type_id)


# ----------------------------------------------------------------------------- the parser itself


@pytest.mark.parametrize("rule", [
    "amenity=school",
    "amenity=school|kindergarten",
    "amenity=school & !isced:level",
    r"amenity=school & isced:level~(?:^|;)\s*1",
    "amenity=social_facility & social_facility=day_care|outreach & social_facility:for=senior",
    "leisure=garden & access!=private|no",
    "amenity=restaurant & social_facility=*",
])
def test_parser_accepts_valid_rules(rule):
    parse_rule(rule)


@pytest.mark.parametrize("rule", [
    "", "amenity", "amenity=", "=school", "amenity==school", "amenity=school&shop=x",
    "amenity=school &  shop=x", " amenity=school", "amenity=a||b", "amenity~(", "!",
    "amenity=school & ", "amenity=sch ool", "amenity!~x",
])
def test_parser_rejects_invalid_rules(rule):
    with pytest.raises((ValueError, re.error)):
        parse_rule(rule)


def test_rule_semantics():
    assert rule_matches("amenity=school & !isced:level", {"amenity": "school"})
    assert not rule_matches("amenity=school & !isced:level",
                            {"amenity": "school", "isced:level": "1"})
    assert rule_matches("access!=private|no", {})
    assert not rule_matches("access!=private|no", {"access": "no"})
    assert rule_matches(r"isced:level~(?:^|;)\s*2", {"isced:level": "1; 2"})
    assert not rule_matches(r"isced:level~(?:^|;)\s*2", {"isced:level": "1"})


# ----------------------------------------------------------------------------- file schema


def test_file_parses_and_has_top_level_tables(document):
    assert set(document) == {"catalogue", "scenes", "types", "category_map", "name_rules",
                             "residences"}


def test_catalogue_table(document):
    meta = document["catalogue"]
    assert set(meta) == CATALOGUE_KEYS
    assert meta["version"] == "2026.11.2"
    assert meta["name_zh"] == "十五分钟社区生活圈 八大服务场景 设施目录"
    assert meta["name_en"] == "15-minute community life circle: eight service scenes"
    assert isinstance(meta["note"], str) and meta["note"].strip()


def test_scenes_in_order_with_labels(document):
    scenes = document["scenes"]
    assert [(scene["id"], scene["zh"]) for scene in scenes] == SCENES
    for scene in scenes:
        assert set(scene) == {"id", "zh", "en"}
        assert isinstance(scene["en"], str) and scene["en"].strip()


def test_type_keys(types):
    assert types, "no facility types"
    for facility_type in types:
        keys = set(facility_type)
        assert REQUIRED_TYPE_KEYS <= keys, (facility_type.get("id"), REQUIRED_TYPE_KEYS - keys)
        assert keys <= REQUIRED_TYPE_KEYS | OPTIONAL_TYPE_KEYS, (
            facility_type["id"], keys - REQUIRED_TYPE_KEYS - OPTIONAL_TYPE_KEYS)


def test_type_ids_unique_and_snake_case(types):
    ids = [facility_type["id"] for facility_type in types]
    assert len(ids) == len(set(ids)), "duplicate type ids"
    for type_id in ids:
        assert isinstance(type_id, str) and TYPE_ID.match(type_id), type_id


def test_type_labels(types):
    for facility_type in types:
        assert isinstance(facility_type["zh"], str) and CJK.search(facility_type["zh"]), \
            facility_type["id"]
        assert isinstance(facility_type["en"], str) and facility_type["en"].strip(), \
            facility_type["id"]


def test_every_type_has_a_known_scene_and_every_scene_a_type(document, types):
    scene_ids = [scene["id"] for scene in document["scenes"]]
    for facility_type in types:
        assert facility_type["scene"] in scene_ids, facility_type["id"]
    used = {facility_type["scene"] for facility_type in types}
    assert set(scene_ids) <= used, set(scene_ids) - used


def test_levels_and_thresholds(types):
    for facility_type in types:
        level, threshold = facility_type["level"], facility_type["threshold_m"]
        assert level in LEVELS, facility_type["id"]
        assert isinstance(threshold, int) and not isinstance(threshold, bool), facility_type["id"]
        assert 0 < threshold <= LEVEL_MAX_M[level], (facility_type["id"], level, threshold)


def test_tag_rules_parse(types):
    for facility_type in types:
        rules = facility_type["tags"]
        assert isinstance(rules, list), facility_type["id"]
        for rule in rules:
            assert isinstance(rule, str), facility_type["id"]
            parse_rule(rule)


@pytest.mark.parametrize("field", ["names", "exclude_names", "name_excludes", "name_decides"])
def test_name_keywords_compile_and_are_not_trivial(types, field):
    for facility_type in types:
        if field not in facility_type:
            continue
        keywords = facility_type[field]
        assert isinstance(keywords, list), facility_type["id"]
        if field != "names":
            assert keywords, f"{facility_type['id']}: omit {field} when empty"
        assert len(keywords) == len(set(keywords)), facility_type["id"]
        for keyword in keywords:
            assert isinstance(keyword, str), facility_type["id"]
            assert len(keyword) >= 2, (facility_type["id"], keyword)
            re.compile(keyword)
        # The loader joins the keywords with "|" into one pattern.
        if keywords:
            re.compile("|".join(keywords))


def test_every_type_can_match_something(types):
    for facility_type in types:
        assert facility_type["tags"] or facility_type.get("weak_tags") or facility_type["names"], \
            facility_type["id"]


def test_min_floor_area(types):
    for facility_type in types:
        if "min_floor_area_m2" in facility_type:
            area = facility_type["min_floor_area_m2"]
            assert isinstance(area, int | float) and not isinstance(area, bool), \
                facility_type["id"]
            assert area > 0, facility_type["id"]


def test_source_and_verified(types):
    for facility_type in types:
        source = facility_type["source"]
        assert isinstance(source, str) and source.strip(), facility_type["id"]
        assert re.search(r"\[[VSR]\]|suggest", source), (
            f"{facility_type['id']}: source must keep a [V]/[S]/[R] mark or say 'suggested'")
        assert isinstance(facility_type["verified"], bool), facility_type["id"]
        if facility_type["verified"]:
            assert "[V]" in source, f"{facility_type['id']}: verified needs a [V] source"
        if "note" in facility_type:
            assert isinstance(facility_type["note"], str) and facility_type["note"].strip()


# ----------------------------------------------------------------------------- content


@pytest.mark.parametrize("tags", [
    {"amenity": value} for value in (
        "school", "kindergarten", "library", "pharmacy", "clinic", "doctors", "hospital",
        "dentist", "police", "fire_station", "townhall", "community_centre", "arts_centre",
        "cinema", "theatre", "bank", "atm", "post_office", "marketplace", "toilets",
        "recycling", "coworking_space", "social_facility")
] + [{"shop": "supermarket"}, {"shop": "convenience"}] + [
    {"leisure": value} for value in (
        "park", "playground", "pitch", "sports_centre", "fitness_centre", "fitness_station")
] + [
    {"tourism": "museum"}, {"office": "employment_agency"},
    {"emergency": "defibrillator"}, {"emergency": "assembly_point"},
    {"emergency": "fire_hydrant"}, {"highway": "bus_stop"}, {"public_transport": "platform"},
] + [{"railway": value} for value in ("tram_stop", "station", "halt", "subway_entrance")],
    ids=lambda tags: "=".join(next(iter(tags.items()))))
def test_common_osm_tags_are_covered(types, tags):
    matched = [t["id"] for t in types if any(rule_matches(rule, tags)
                                             for rule in [*t["tags"], *t.get("weak_tags", [])])]
    assert matched, f"no facility type matches {tags}"


def test_bare_government_office_is_not_a_facility(types):
    tags = {"office": "government"}
    matched = [t["id"] for t in types if any(rule_matches(rule, tags) for rule in t["tags"])]
    assert matched == []


def test_pharmacy_appears_once(types):
    matched = [t["id"] for t in types if any(rule_matches(rule, {"amenity": "pharmacy"})
                                             for rule in t["tags"])]
    assert matched == ["pharmacy"]


@pytest.mark.parametrize(("type_id", "name", "expected"), [
    ("outpatient_hospital", "宜昌市中心人民医院", True),
    ("outpatient_hospital", "爱心动物医院", False),
    ("outpatient_hospital", "萌宠宠物医院", False),
    ("post_office", "中国邮政", True),
    ("post_office", "中国邮政储蓄银行", False),
    ("bank", "中国邮政储蓄银行", True),
    ("middle_school", "宜昌市第五中学", True),
    ("middle_school", "华中师范大学第一附属中学", True),
    ("middle_school", "三峡大学中学教育研究中心", False),
    ("primary_school", "夷陵区实验小学", True),
    ("kindergarten", "阳光幼儿园", True),
    ("gym", "西陵区全民健身中心", False),
    ("sports_centre", "西陵区全民健身中心", True),
    ("pocket_park", "万达广场", False),
    ("elderly_day_care", "社区老年人日间照料中心", True),
    ("elderly_day_care", "福寿颐养院", False),
    ("nursing_home", "福寿颐养院", True),
])
def test_name_keywords_examples(types, type_id, name, expected):
    assert name_matches(_type(types, type_id), name) is expected
