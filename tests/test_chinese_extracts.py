"""The real Chinese extracts in ../shared: analysis, a GCJ-02 list, Chinese outputs."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
from click.testing import CliRunner

from planner.cli import main
from tests.conftest import ROOT, shared_extract

SAMPLE_LIST = ROOT / "data" / "beijing_bupt_facilities_gcj02.csv"


@pytest.mark.parametrize("name", ["shanghai-baoshan-shu", "shenzhen-longgang-mapmatching"])
def test_other_extracts_run_end_to_end(name):
    from planner.pipeline import analyze

    analysis = analyze(shared_extract(name))
    assert analysis.network.n_nodes > 100 and len(analysis.residences) > 0
    assert analysis.facilities["scene_id"].nunique() >= 3
    assert analysis.communities["score"].notna().any()


def test_beijing_in_chinese_with_a_gcj02_list(tmp_path):
    source = shared_extract("beijing-haidian-bupt")
    out = tmp_path / "bupt"
    result = CliRunner().invoke(main, [
        "analyze", str(source), "--facilities", str(SAMPLE_LIST), "--facilities-crs", "gcj02",
        "--lang", "zh", "--basemap", "amap", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "设施清单 13" in result.output and "各社区场景得分" in result.output
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["counts"]["facilities_by_match"]["list"] == 13
    assert record["parameters"]["facilities_crs"] == "gcj02"
    facilities = gpd.read_file(out / "coverage.gpkg", layer="facilities")
    listed = facilities[facilities["match"] == "list"]
    assert set(listed["scene_id"]) >= {"innovation", "safety", "urban_safety"}
    assert listed["name"].str.contains("示例").all()
    report = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in report and "平安法治" in report and "缺失" in report
    page = (out / "map.html").read_text(encoding="utf-8")
    assert "邻里生活" in page and "autonavi" in page  # Chinese labels, Amap tiles
