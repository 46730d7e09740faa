"""Facility lists: coordinates, category mapping, merging with OSM."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from planner.catalogue import load_catalogue
from planner.coords import transform
from planner.errors import PlannerError
from planner.facility_lists import (
    merge_with_osm,
    name_conflicts,
    read_facility_list,
    similar_names,
)

KNOWN_WGS84 = [(116.3513, 39.9601), (111.2865, 30.6920), (121.3891, 31.3170),
               (114.2436, 22.7206)]


def haversine_m(lon1, lat1, lon2, lat2):
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin(
        (lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_list_in_chinese_datum_lands_on_the_wgs84_points(tmp_path, datum):
    lon, lat = np.array(KNOWN_WGS84).T
    shifted_lon, shifted_lat = transform(lon, lat, "wgs84", datum)
    assert haversine_m(lon, lat, shifted_lon, shifted_lat).min() > 50  # the offset is real
    path = tmp_path / "list.csv"
    pd.DataFrame({"名称": ["社区卫生服务站"] * 4, "经度": shifted_lon, "纬度": shifted_lat}
                 ).to_csv(path, index=False)
    found = read_facility_list(path, load_catalogue(), crs_name=datum)
    error = haversine_m(found.geometry.x.to_numpy(), found.geometry.y.to_numpy(), lon, lat)
    assert error.max() < 2.0


def test_category_mapping_order(tmp_path):
    path = tmp_path / "amap.csv"
    pd.DataFrame({
        "name": ["阳光诊所", "幸福里日间照料中心", "某某公司", "红星幼儿园", "无名"],
        "typecode": ["090300", "", "170000", "141204|141200", ""],
        "category": ["医疗保健服务", "养老服务;日间照料", "公司企业", "科教文化服务", ""],
        "lon": [116.35] * 5, "lat": [39.96] * 5,
        "type_id": [None, None, None, None, "police_post"],
    }).to_csv(path, index=False)
    found = read_facility_list(path, load_catalogue())
    got = dict(zip(found["name"].fillna("无名"), zip(found["type_id"], found["list_rule"],
                                                   strict=True), strict=True))
    assert got["阳光诊所"] == ("community_health_station", "code")
    assert got["幸福里日间照料中心"] == ("elderly_day_care", "category")
    assert got["红星幼儿园"] == ("kindergarten", "code")
    assert got["无名"] == ("police_post", "type_id")
    assert "某某公司" not in got  # unmatched rows are left out, with a warning
    assert set(found["match"]) == {"list"}


def test_swapped_coordinates_are_refused(tmp_path):
    path = tmp_path / "swapped.csv"
    pd.DataFrame({"name": ["a", "b"], "lon": [39.96, 39.97], "lat": [116.35, 116.36]}
                 ).to_csv(path, index=False)
    with pytest.raises(PlannerError, match="swapped"):
        read_facility_list(path, load_catalogue())


def test_unknown_type_id_names_the_row(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"name": ["a"], "lon": [116.3], "lat": [39.9], "type_id": ["spa"]}
                 ).to_csv(path, index=False)
    with pytest.raises(PlannerError, match="unknown type_id 'spa' in row 1"):
        read_facility_list(path, load_catalogue())


def facilities(rows, prefix):
    geometry = [Point(row["xy"]) for row in rows]
    table = pd.DataFrame([{k: v for k, v in row.items() if k != "xy"} for row in rows])
    table["facility_id"] = [f"{prefix}{index}" for index in range(len(rows))]
    table["match"] = "list" if prefix == "L" else "tag"
    return gpd.GeoDataFrame(table, geometry=geometry, crs=32650)


def test_merge_rule():
    osm = facilities([
        {"type_id": "pharmacy", "name": "同仁堂药店", "xy": (0, 0)},        # merges (similar)
        {"type_id": "pharmacy", "name": "海王星辰", "xy": (10, 0)},         # other name: kept
        {"type_id": "kindergarten", "name": None, "xy": (5, 5)},           # unnamed: merges
        {"type_id": "pharmacy", "name": "同仁堂药店", "xy": (500, 0)},      # too far: kept
        {"type_id": "bank", "name": "同仁堂药店", "xy": (1, 1)},            # other type: kept
    ], "n")
    lists = facilities([
        {"type_id": "pharmacy", "name": "同仁堂药店(学院路店)", "xy": (20, 0)},
        {"type_id": "kindergarten", "name": "北邮幼儿园", "xy": (0, 30)},
    ], "L")
    merged = merge_with_osm(osm, lists)
    assert sorted(merged["facility_id"]) == ["L0", "L1", "n1", "n3", "n4"]
    absorbed = merged.set_index("facility_id")["merged_osm_id"]
    assert absorbed["L0"] == "n0" and absorbed["L1"] == "n2"


def test_similar_names():
    assert similar_names("同仁堂药店（学院路店）", "同仁堂 药店")
    assert similar_names("北京邮电大学 图书馆", "北京邮电大学图书馆(西土城)")
    assert not similar_names("海王星辰", "同仁堂药店")
    assert not similar_names(None, "x")


def test_name_conflicts_lists_names_matching_several_types():
    table = pd.DataFrame({"facility_id": ["a", "a", "b", "c"],
                          "type_id": ["pharmacy", "elderly_day_care", "bank", "bank"],
                          "name": ["托老所药房", "托老所药房", "x", "y"],
                          "match": ["name", "name", "tag", "name"]})
    conflicts = name_conflicts(table)
    assert conflicts.to_dict("records") == [{"facility_id": "a", "name": "托老所药房",
                                             "type_ids": "elderly_day_care,pharmacy",
                                             "n_types": 2}]


def test_list_rows_outside_the_area_are_reported(helsinki_area, tmp_path, caplog):
    from planner.pipeline import analyze

    path = tmp_path / "list.csv"
    pd.DataFrame({"name": ["北邮幼儿园", "Kamppi kindergarten"], "lon": [116.35, 24.9405],
                  "lat": [39.96, 60.1690], "type_id": ["kindergarten", "kindergarten"]}
                 ).to_csv(path, index=False)
    with caplog.at_level("WARNING"):
        analysis = analyze(helsinki_area, facility_lists=[path])
    assert "1 list facilities lie outside the area" in caplog.text and "L1-0" in caplog.text
    listed = analysis.facilities[analysis.facilities["match"] == "list"]
    assert listed.set_index("facility_id")["on_network"].to_dict() == {"L1-0": False,
                                                                       "L1-1": True}


# ----------------------------------------------------------------------------- encodings

CHINESE_LIST = ("名称,经度,纬度,类别\n社区卫生服务站,116.3513,39.9601,医疗保健服务\n"
                "北邮幼儿园,116.3520,39.9610,幼儿园\n")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "cp936"])
def test_list_saved_by_chinese_excel_keeps_its_chinese_names(tmp_path, encoding):
    path = tmp_path / "清单.csv"
    path.write_bytes(CHINESE_LIST.encode(encoding))
    found = read_facility_list(path, load_catalogue())
    assert set(found["name"]) == {"社区卫生服务站", "北邮幼儿园"}
    assert set(found["source"]) == {"清单.csv"}


def test_gb18030_only_characters_and_explicit_encoding(tmp_path):
    path = tmp_path / "list.csv"
    text = "名称,经度,纬度\n㐀社区卫生服务站€,116.35,39.96\n"  # 㐀 is outside GBK
    path.write_bytes(text.encode("gb18030"))
    assert read_facility_list(path, load_catalogue())["name"].iloc[0] == "㐀社区卫生服务站€"
    assert read_facility_list(path, load_catalogue(), encoding="gb18030")["name"].iloc[0] \
        == "㐀社区卫生服务站€"


def test_wrong_explicit_encoding_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(CHINESE_LIST.encode("gbk"))
    with pytest.raises(PlannerError, match=r"list\.csv: not valid utf-8 text") as caught:
        read_facility_list(path, load_catalogue(), encoding="utf-8")
    assert "\n" not in str(caught.value)
    with pytest.raises(PlannerError, match="unknown encoding 'klingon'"):
        read_facility_list(path, load_catalogue(), encoding="klingon")


def test_tab_separated_txt_in_gbk(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(CHINESE_LIST.replace(",", "\t").encode("gbk"))
    found = read_facility_list(path, load_catalogue())
    assert "社区卫生服务站" in set(found["name"])


def test_errors_of_a_converted_list_name_the_original_file(tmp_path):
    path = tmp_path / "坐标.csv"
    path.write_bytes("名称,经度,纬度\n站,39.96,116.35\n站,39.97,116.36\n".encode("gbk"))
    with pytest.raises(PlannerError, match="swapped") as caught:
        read_facility_list(path, load_catalogue())
    assert caught.value.path == path


# ----------------------------------------------------------------------------- duplicate ids


def test_duplicate_ids_are_warned_and_merged(tmp_path, caplog):
    path = tmp_path / "dup.csv"
    pd.DataFrame({"id": ["A1", "A1", "B2", "C3", "C3", None, None],
                  "name": ["社区卫生服务站", "社区卫生服务站", "北邮幼儿园", "阳光药店", "阳光药店",
                           "北邮幼儿园", "北邮幼儿园"],
                  "type_id": [None, None, None, None, "bank", None, None],
                  "lon": [116.35] * 7, "lat": [39.96] * 7}).to_csv(path, index=False)
    with caplog.at_level("WARNING"):
        found = read_facility_list(path, load_catalogue())
    assert "dup.csv" in caplog.text and "A1, C3" in caplog.text and "B2" not in caplog.text
    per_facility = found.groupby("facility_id")["type_id"].apply(sorted).to_dict()
    assert per_facility["L1-0"] == ["community_health_station"]  # once, not twice
    assert "L1-1" not in per_facility and "L1-4" not in per_facility
    assert per_facility["L1-3"] == ["bank", "pharmacy"]  # the rows' types are united
    assert "L1-5" in per_facility and "L1-6" in per_facility  # rows without an id stay apart
    assert not found.duplicated(["facility_id", "type_id"]).any()


def test_duplicate_ids_warning_in_chinese(tmp_path, caplog, monkeypatch):
    from planner import settings

    monkeypatch.setattr(settings, "lang", "zh")
    path = tmp_path / "dup.csv"
    pd.DataFrame({"编号": [7, 7], "name": ["社区卫生服务站"] * 2, "lon": [116.35] * 2,
                  "lat": [39.96] * 2}).to_csv(path, index=False)
    with caplog.at_level("WARNING"):
        found = read_facility_list(path, load_catalogue())
    assert "编号在多行出现" in caplog.text and len(found) == 1
